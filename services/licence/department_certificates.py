"""Certificates a department's own system issued (e.g. 不动产权证书), forwarded by exchange
(``exchange.department.licence_issued``): stored as THAT department's licence, or refused.

The issuer is the event's ``department`` (exchange verified the push's signature against the
partner's key), never anything in ``data``. The department must issue the type — the rule an
officer's direct issuance obeys (``access.issues_type``); the holder's code is checked as every
holder's is (kit.subject_ids); the printed fields are checked against the type's schema. The
licence keeps the number the department printed and gets its own GB/T 36904 identifier, so its QR
and the public verification work as for any licence.

Exactly once per push: the push id is taken first in ``department_pushes`` in the transaction that
stores the licence and writes the one ``licence.push.settled`` answer (outbox), so a redelivered
event (inbox) or the same push forwarded again under another event id stores nothing twice and is
answered once. A push that breaks a rule is answered ``refused`` with the problem naming the field
and the rule; it is never retried nor dead-lettered.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.exchange import DepartmentLicenceIssued, PushProblem
from contracts.events.licence import LicencePushSettled
from kit.consumer import PoisonEvent
from kit.errors import PROBLEM_BASE, Problem, RuleViolation
from kit.events import CloudEvent, envelope
from kit.text import text_problem
from services.licence import catalogue
from services.licence.context import Context
from services.licence.domain import access
from services.licence.domain.credential import check_licence_number
from services.licence.domain.errors import LicenceRuleError
from services.licence.domain.holders import code_type_for, validate_holder
from services.licence.issuance import Draft, check_data, insert_for, insert_licence
from services.licence.models import DepartmentPush, Issuer, Licence, outbox

log = logging.getLogger("yiwang.licence.department_certificates")

PUSH_TYPE = "licence.issued"


class Refused(Exception):
    """The push breaks a rule: it is answered ``refused`` with this problem."""

    def __init__(self, field: str, rule: str, detail: str, *, title: str = "Certificate refused") -> None:
        super().__init__(detail)
        self.problem = PushProblem(type=PROBLEM_BASE + "validation", title=title, detail=detail[:500],
                                   field=field[:200], rule=rule[:64])  # fmt: skip


def _push_fields(raw: Any) -> dict[str, Any]:
    """The push's own fields from an event whose ``data`` failed its model, to refuse it by them;
    PoisonEvent when even those are unusable (no push to answer: an operator looks at it)."""
    if not isinstance(raw, dict):
        raise PoisonEvent("data is not an object")
    fields = {name: raw.get(name) for name in ("push_id", "department", "event_id")}
    if not all(isinstance(value, str) and 0 < len(value) <= limit
               for value, limit in zip(fields.values(), (40, 40, 64), strict=True)):  # fmt: skip
        raise PoisonEvent("no push id, department and event id to answer")
    return fields


def _first_error(exc: ValidationError) -> Refused:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error.get("loc", ())) or "data"
    return Refused(field, str(error.get("type", "invalid")), f"{field}: {error.get('msg', 'invalid')}")


async def on_department_licence_issued(session: AsyncSession, ctx: Context, event: CloudEvent) -> None:
    """Handle one forwarded certificate push inside the consumer's transaction."""
    try:
        pushed = DepartmentLicenceIssued.model_validate(event.data)
    except ValidationError as exc:
        fields = _push_fields(event.data)
        if not await _take(session, ctx, **fields):
            return
        await _settle(session, ctx, **fields, case_no=None, refused=_first_error(exc))
        return
    fields = {"push_id": pushed.push_id, "department": pushed.department, "event_id": pushed.event_id}
    if not await _take(session, ctx, **fields):
        return  # this push was stored (or refused) and answered before
    case_no = pushed.data.case_no
    try:
        licence = await store(session, ctx, pushed)
    except Refused as refused:
        log.info("push %s of %s refused: %s %s", pushed.push_id, pushed.department, refused.problem.field,
                 refused.problem.rule)  # fmt: skip
        await _settle(session, ctx, **fields, case_no=case_no, refused=refused)
        return
    row = await session.get(DepartmentPush, pushed.push_id)
    assert row is not None  # taken above, in this transaction
    row.outcome, row.licence_id = "applied", licence.id
    await _settle(session, ctx, **fields, case_no=case_no, licence=licence)


async def store(session: AsyncSession, ctx: Context, pushed: DepartmentLicenceIssued) -> Licence:
    """Store the pushed certificate as the pushing department's licence; Refused naming the rule."""
    data = pushed.data
    info = await catalogue.type_info(session, data.licence_type)
    if info is None:
        raise Refused("data.licence_type", "unknown", f"no licence type {data.licence_type}")
    if not access.issues_type(pushed.department, issuers=info.issuers):
        raise Refused("data.licence_type", "not_issuer", f"{pushed.department} does not issue {info.name}",
                      title="Not an issuer of this type")  # fmt: skip
    issuer = await session.get(Issuer, pushed.department)
    assert issuer is not None  # the type's issuers are issuers (foreign key)
    if data.holder_kind not in info.holder_kinds:
        raise Refused("data.holder_kind", "holder_kind", f"{info.name} is not issued to a {data.holder_kind}")
    try:
        holder, code_type = validate_holder(data.holder, code_type_for(data.holder_kind))
    except RuleViolation as exc:
        raise Refused("data.holder", exc.rule, exc.message) from None
    try:
        check_licence_number(data.number)
    except LicenceRuleError as exc:
        raise Refused("data.number", exc.rule, f"data.number: {exc.message}") from None
    for name in ("number", "holder_name"):
        problem = text_problem(getattr(data, name), multiline=False)
        if problem is not None:  # printed on the licence: one line of plain text
            raise Refused(f"data.{name}", problem[0], f"data.{name}: {problem[1]}")
    try:
        check_data(info, data.data)
    except Problem as exc:
        first = (exc.errors or [{"field": "data", "rule": "invalid", "message": exc.detail or "invalid"}])[0]
        raise Refused(f"data.{first['field']}", first["rule"], f"data.{first['field']}: {first['message']}") from None
    if data.valid_until is not None and data.valid_until < data.issued_on:
        raise Refused("data.valid_until", "before_issued_on", "valid_until is before issued_on")
    # The same certificate pushed again as a new event: the department's number names it.
    twin = await session.execute(
        select(Licence.id)
        .where(Licence.issuer == issuer.department, Licence.type_code == info.code, Licence.number == data.number)
        .limit(1)  # fmt: skip
    )
    if twin.first() is not None:
        raise Refused("data.number", "duplicate", f"{info.name} {data.number} of {issuer.department} is stored already")
    draft = Draft(
        info=info, issuer=issuer, holder=holder, holder_code_type=code_type, holder_name=data.holder_name,
        data=data.data, issued_on=data.issued_on, valid_from=data.issued_on, valid_until=data.valid_until,
        source="department", case_no=data.case_no, issued_by=f"department:{pushed.partner}"[:80],
    )  # fmt: skip
    licence = await insert_licence(session, ctx, draft, number=data.number)
    if licence is None:
        raise Refused("data.case_no", "duplicate", f"case {data.case_no} already has its {info.name}")
    return licence


async def _take(session: AsyncSession, ctx: Context, *, push_id: str, department: str, event_id: str) -> bool:
    """Claim the push id (refused until it is applied); False when it was claimed before."""
    statement = (
        insert_for(session)(DepartmentPush)
        .values(
            push_id=push_id, department=department, event_id=event_id, outcome="refused", received_at=ctx.current_time()
        )  # fmt: skip
        .on_conflict_do_nothing()
    )
    result = await session.execute(statement)
    return getattr(result, "rowcount", 1) != 0


async def _settle(session: AsyncSession, ctx: Context, *, push_id: str, department: str, event_id: str,
                  case_no: str | None, licence: Licence | None = None, refused: Refused | None = None) -> None:  # fmt: skip
    """The one ``licence.push.settled`` answer, in the transaction that applied or refused the push."""
    if refused is not None:
        row = await session.get(DepartmentPush, push_id)
        if row is not None:
            row.rule = refused.problem.rule
    settled = LicencePushSettled(
        push_id=push_id, department=department, event_id=event_id, push_type=PUSH_TYPE,
        outcome="refused" if refused is not None else "applied",
        problem=refused.problem if refused is not None else None,
        case_no=case_no, licence_id=licence.identifier if licence is not None else None,
        at=ctx.current_time(),
    )  # fmt: skip
    await outbox.add(session, envelope(settled, subject=push_id))
