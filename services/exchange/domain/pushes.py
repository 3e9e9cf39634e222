"""A push's body, read and judged before anything is stored — pure.

The body is parsed once (kit.bodyguard's checks first: depth, unsafe text, integers past 64 bits),
then its ``type`` picks the model (contracts.departments.PUSH_MODELS) and the model names every
field that fails, as ``body.data.case_no`` with pydantic's error type as the rule. An unknown type
is ``body.type`` / ``unknown_type``. Nothing here touches the database.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ValidationError

from contracts.departments import PUSH_MODELS, CaseDecisionPush, CaseProgressPush, LicenceIssuedPush
from kit.bodyguard import load_json_body
from kit.errors import Problem, field_problem

AnyPush = CaseProgressPush | CaseDecisionPush | LicenceIssuedPush


def body_sha256(body: bytes) -> str:
    """Lower-case hex SHA-256 of the body as received (the receipt names it)."""
    return hashlib.sha256(body).hexdigest()


def _invalid(errors: list[dict[str, Any]]) -> Problem:
    first = errors[0]
    return Problem(422, "validation", "Request is not valid", f"{first['field']}: {first['message']}", errors=errors)


def parse_push(body: bytes, *, max_depth: int) -> AnyPush:
    """The push in ``body``, or a 4xx ``Problem`` naming the field and the rule."""
    value = load_json_body(body, max_depth)
    if not isinstance(value, dict):
        raise field_problem("body", "model_type", "the body must be a JSON object")
    kind = value.get("type")
    if kind is None:
        raise field_problem("body.type", "missing", "type is required")
    if not isinstance(kind, str) or kind not in PUSH_MODELS:
        known = ", ".join(sorted(PUSH_MODELS))
        raise field_problem("body.type", "unknown_type", f"unknown push type; one of {known}")
    try:
        push = PUSH_MODELS[kind].model_validate(value)
    except ValidationError as exc:
        raise _invalid([
            {"field": ".".join(["body", *(str(p) for p in e["loc"])]), "rule": str(e["type"]),
             "message": str(e["msg"])}
            for e in exc.errors(include_url=False, include_input=False)
        ]) from None  # fmt: skip
    return push  # type: ignore[return-value]


def receipt_payload(
    *,
    receipt_id: str,
    department: str,
    partner: str,
    event_id: str,
    type: str,
    received_at: str,
    body_sha256: str,
    duplicate: bool,
) -> dict[str, Any]:
    """What a receipt's signature covers: every field of contracts.departments.Receipt but the
    signature, as JSON values (``received_at`` in ISO 8601)."""
    return {
        "receipt_id": receipt_id, "department": department, "partner": partner, "event_id": event_id,
        "type": type, "received_at": received_at, "body_sha256": body_sha256, "duplicate": duplicate,
    }  # fmt: skip
