"""Department pushes: re-verified, judged, stored once, forwarded on the bus, answered with a
signed receipt; later settled by caseflow's or licence's answer (ADR 0019).

The gateway checked the signature already; exchange checks it again against its own table, so a
revoked partner or key is refused at once, whatever a gateway replica still has cached, and a
push that reached exchange some other way is refused too. The order of the checks: signature
(401: unknown or revoked partner, bad or stale signature), then the department (403
``wrong_department``), then the body (422 naming the field) — nothing is stored before all pass.

Idempotency: ``UNIQUE (department, event_id)``. A repeat of an event id with the same body is
answered 200 with the original receipt and ``duplicate: true``; with another body it is a 409
problem ``event-id-reused`` (the department's bug: two events under one id) naming the original.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.departments import WebhookPushSettledData
from contracts.events.exchange import (
    DepartmentCaseDecision,
    DepartmentCaseProgress,
    DepartmentLicenceIssued,
    PushSettledFields,
)
from kit.auth import Principal
from kit.errors import Problem
from kit.events import envelope, uuid7
from kit.pagination import PageQuery
from kit.signing import SignatureRejected, verify, verify_request
from services.exchange import deliveries, partners, scoped
from services.exchange.context import ExchangeContext
from services.exchange.domain import access
from services.exchange.domain.pushes import AnyPush, body_sha256, parse_push, receipt_payload
from services.exchange.models import InboundPush, PartnerKey, outbox

log = logging.getLogger("yiwang.exchange")

_EVENTS = {
    "case.progress": DepartmentCaseProgress,
    "case.decision": DepartmentCaseDecision,
    "licence.issued": DepartmentLicenceIssued,
}
# A key's last use is written at most this often (a write per push would be a hot row).
_LAST_USED_EVERY_SECONDS = 60


def signed_path(ctx: ExchangeContext, code: str) -> str:
    """The path the partner signed: the gateway's, not exchange's own."""
    return f"{ctx.settings.signed_path_prefix.rstrip('/')}/departments/{code}/events"


def _bad_signature(rejected: SignatureRejected) -> Problem:
    return Problem(401, "bad-signature", "Signature not accepted", rejected.detail, reason=rejected.reason)


async def _verify(
    session: AsyncSession, ctx: ExchangeContext, *, code: str, query: str, headers: Mapping[str, str], body: bytes
) -> tuple[str, str, str]:
    """``(partner_id, key_id, department)`` of a correctly signed push, or the refusal."""
    partner_id = headers.get("x-partner-id", "")
    found = await partners.active_secrets(session, ctx, partner_id=partner_id) if 0 < len(partner_id) <= 64 else None
    keys = found[1] if found else []
    path = signed_path(ctx, code)
    try:
        verify_request({partner_id: [s for _, s in keys]} if found else {}, method="POST", path=path, query=query,
                       headers=headers, body=body, now=ctx.current_time().timestamp(),
                       max_age=ctx.settings.signature_max_age_seconds)  # fmt: skip
    except SignatureRejected as rejected:
        log.warning("push refused: %s (partner %s)", rejected.reason, partner_id[:64])
        raise _bad_signature(rejected) from None
    assert found is not None
    path_query = path + ("?" + query if query else "")
    key_id = next(k for k, secret in keys if verify([secret], "POST", path_query, headers["x-timestamp"],
                                                      headers["x-nonce"], body, headers["x-signature"]))  # fmt: skip
    department = found[0]
    access.check("push.submit", access.partner_relation(department, code), ())
    return partner_id, key_id, department


def _json_time(value: datetime) -> str:
    """ISO 8601 in UTC as the answer's JSON writes it (``…Z``): the signed and the shown field agree."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _receipt(ctx: ExchangeContext, push: InboundPush, *, duplicate: bool) -> dict[str, Any]:
    payload = receipt_payload(
        receipt_id=push.id, department=push.department, partner=push.partner_id, event_id=push.event_id,
        type=push.type, received_at=_json_time(push.received_at), body_sha256=push.body_sha256, duplicate=duplicate,
    )  # fmt: skip
    return {**payload, "signature": ctx.signer.sign(payload)}


async def _existing(session: AsyncSession, department: str, event_id: str) -> InboundPush | None:
    return (await session.scalars(select(InboundPush).where(
        InboundPush.department == department, InboundPush.event_id == event_id))).one_or_none()  # fmt: skip


def _repeat(ctx: ExchangeContext, original: InboundPush, digest: str) -> dict[str, Any]:
    if original.body_sha256 != digest:
        raise Problem(409, "event-id-reused", "Event id reused",
                      "this event id was received before with another body; a new event needs a new id",
                      receipt_id=original.id, body_sha256=original.body_sha256)  # fmt: skip
    return _receipt(ctx, original, duplicate=True)


async def receive(
    session: AsyncSession, ctx: ExchangeContext, *, code: str, query: str, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    """One signed push (module doc): the receipt (contracts.departments.Receipt as a dict)."""
    if len(body) > ctx.settings.max_push_bytes:
        raise Problem(413, "body-too-large", "Request body too large", f"at most {ctx.settings.max_push_bytes} bytes")
    partner_id, key_id, department = await _verify(session, ctx, code=code, query=query, headers=headers, body=body)
    push = parse_push(body, max_depth=ctx.settings.json_max_depth)
    digest = body_sha256(body)
    now = ctx.current_time()
    row = InboundPush(
        id="rcp_" + uuid7().hex, department=department, partner_id=partner_id, key_id=key_id,
        event_id=push.event_id, type=push.type, occurred_at=push.occurred_at, received_at=now, body_sha256=digest,
        body=body.decode(), status="received", case_no=getattr(push.data, "case_no", None),
    )  # fmt: skip
    # The push row first, and only if its event id is new: a repeat (or a twin racing us) inserts
    # nothing and the transaction stays usable, on PostgreSQL as on SQLite.
    inserted = await session.scalar(_insert_new(session), {c: getattr(row, c) for c in _COLUMNS})
    if inserted is None:
        original = await _existing(session, department, push.event_id)
        if original is None:  # pragma: no cover - the constraint said it exists
            raise Problem(409, "conflict", "Conflict", "retry the push")
        return _repeat(ctx, original, digest)
    await _forward(session, row, push)
    await _touch_key(session, ctx, key_id, now)
    return _receipt(ctx, row, duplicate=False)


_COLUMNS = ("id", "department", "partner_id", "key_id", "event_id", "type", "occurred_at", "received_at",
            "body_sha256", "body", "status", "case_no")  # fmt: skip


_PUSHES = InboundPush.__table__
_INSERT_NEW = {
    name: insert(_PUSHES).on_conflict_do_nothing(index_elements=["department", "event_id"]).returning(_PUSHES.c.id)
    for name, insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))
}


def _insert_new(session: AsyncSession) -> Any:
    """``INSERT … ON CONFLICT (department, event_id) DO NOTHING RETURNING id`` in the session's
    dialect (built once per dialect: the push path builds no statement per request)."""
    return _INSERT_NEW[session.get_bind().dialect.name]


async def _forward(session: AsyncSession, row: InboundPush, push: AnyPush) -> None:
    event = _EVENTS[push.type](
        push_id=row.id, department=row.department, partner=row.partner_id, event_id=row.event_id,
        occurred_at=push.occurred_at, received_at=row.received_at, data=push.data,
    )  # fmt: skip
    await outbox.add(session, envelope(event, subject=row.id))


async def _touch_key(session: AsyncSession, ctx: ExchangeContext, key_id: str, now: datetime) -> None:
    """Note the key's use, at most once a minute per process and in the table (a write per push
    would make the key's row a hot one)."""
    cutoff = now - timedelta(seconds=_LAST_USED_EVERY_SECONDS)
    if ctx.keys_touched.get(key_id, cutoff) > cutoff:
        return
    ctx.keys_touched[key_id] = now
    await session.execute(update(PartnerKey).where(
        PartnerKey.id == key_id, or_(PartnerKey.last_used_at.is_(None), PartnerKey.last_used_at < cutoff)
    ).values(last_used_at=now))  # fmt: skip


# ---- settled outcomes ----------------------------------------------------------------------------
async def settle(session: AsyncSession, data: PushSettledFields) -> bool:
    """Record what caseflow or licence made of a push and queue the ``push.settled`` webhook to its
    department; false (and nothing done) for a push exchange does not know or a repeat."""
    push = await session.get(InboundPush, data.push_id)
    if push is None or push.department != data.department or push.event_id != data.event_id:
        log.warning("push.settled for unknown push %s (department %s): ignored", data.push_id[:40], data.department)
        return False
    if push.status != "received":
        return False  # settled already: the first answer stands
    problem = data.problem.model_dump(mode="json") if data.problem else None
    outcome = {"outcome": data.outcome, "problem": problem, "case_no": data.case_no, "licence_id": data.licence_id}
    await session.execute(update(InboundPush).where(InboundPush.id == push.id).values(
        status=data.outcome, outcome=json.dumps(outcome, ensure_ascii=False), settled_at=data.at,
        case_no=data.case_no or push.case_no, licence_id=data.licence_id,
    ))  # fmt: skip
    case_no = data.case_no or push.case_no
    webhook = WebhookPushSettledData(push_id=push.id, event_id=push.event_id, push_type=data.push_type,
                                     outcome=data.outcome, problem=problem, case_no=case_no,
                                     licence_id=data.licence_id)  # fmt: skip
    await deliveries.enqueue(
        session, department=push.department, type="push.settled", source_id=f"settled:{push.id}",
        ordering_key=f"case:{case_no}" if case_no else f"push:{push.id}", data=webhook.model_dump(mode="json"),
        at=data.at,
    )  # fmt: skip
    return True


# ---- reading (admins) ----------------------------------------------------------------------------
def push_view(push: InboundPush, *, with_body: bool = False) -> dict[str, Any]:
    """A push as admins read it (``with_body``: the body as received, parsed)."""
    view = {
        "receipt_id": push.id, "department": push.department, "partner": push.partner_id, "key_id": push.key_id,
        "event_id": push.event_id, "type": push.type, "occurred_at": push.occurred_at,
        "received_at": push.received_at, "body_sha256": push.body_sha256, "status": push.status,
        "outcome": json.loads(push.outcome) if push.outcome else None, "settled_at": push.settled_at,
        "case_no": push.case_no, "licence_id": push.licence_id,
    }  # fmt: skip
    if with_body:
        view["body"] = json.loads(push.body)
    return view


async def list_pushes(
    session: AsyncSession, caller: Principal, page: PageQuery, *, department: str | None, status: str | None,
    type: str | None, event_id: str | None,
) -> dict[str, Any]:  # fmt: skip
    """A department's pushes, newest first (a department's admin: its own; the platform's: any)."""
    total, rows = await scoped.department_page(
        session, caller, page, action="push.list", model=InboundPush, department=department,
        filters=[(InboundPush.status, status), (InboundPush.type, type), (InboundPush.event_id, event_id)],
        order_by=[InboundPush.received_at.desc(), InboundPush.id.desc()],
    )  # fmt: skip
    return page.answer(total, [push_view(p) for p in rows])


async def read_push(session: AsyncSession, caller: Principal, *, push_id: str) -> dict[str, Any]:
    """One push with its body (404 for who may not see its department's pushes)."""
    push = await scoped.visible(session, caller, InboundPush, push_id, "push.read")
    return push_view(push, with_body=True)
