"""A case's fees (网上缴费, docs/adr/0026-caseflow-counter-and-fees.md).

- At submission a matter with ``payment`` and fees owes the guide's items in fen (revision 1,
  ``caseflow.case.fees_due`` in the submission's own statement); where ``payment.assessed`` an officer
  of the department sets the amounts while unpaid (revision +1, the event again).
- The case waits where ``payment.due_before`` says: that step and every later one is refused with
  409 ``fees-unpaid`` and not offered, until payment's ``payment.order.paid`` (consumed once through
  the inbox, and idempotent by order besides) records the e-receipt; ``payment.order.refunded``
  records the refund.
- Supervision: assessed or paid items above the guide, not in it, or fees on a free matter are
  anomalies (raised once each); a paid fee not refunded 5 working days after an outcome the matter
  refunds on is ``fee_not_refunded``, raised by the supervision timer.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events import caseflow as contract
from contracts.events.payment import OrderPaid, OrderRefunded
from kit.auth import Principal
from kit.consumer import PoisonEvent
from kit.errors import Problem, field_problem
from kit.events import CloudEvent, envelope
from services.caseflow import calendars, steps
from services.caseflow.cases import instant
from services.caseflow.cases.access import authorize
from services.caseflow.cases.common import Context, base_fields, dumps, matter_of_case, record_anomaly
from services.caseflow.domain import fees as rules
from services.caseflow.domain.states import TERMINAL
from services.caseflow.models import Case, CaseEvent, CaseFees, SupervisionWarning

log = logging.getLogger("yiwang.caseflow.fees")

PAYMENT_PAID = "yiwang.payment.order.paid.v1"
PAYMENT_REFUNDED = "yiwang.payment.order.refunded.v1"


# ---- what is due, and what waits for it -------------------------------------------------------
def due_at_submission(matter: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The guide's items in fen when the matter takes payment; a guide amount that is no whole
    number of fen is the guide's fault: 409, nothing created (never a rounded charge)."""
    try:
        return rules.fees_due_at_submission(matter)
    except rules.FeeAmountInvalid as exc:
        raise Problem(409, "guide-fees-invalid", "The guide's fees are not valid amounts", str(exc),
                      rule="amount_yuan") from None  # fmt: skip


def _payment(matter: dict[str, Any]) -> dict[str, Any]:
    return rules.payment_of(matter) or {}


def _due_before(matter: dict[str, Any]) -> str:
    return _payment(matter).get("due_before") or "decision"


def _refund_on(matter: dict[str, Any]) -> list[str]:
    payment = rules.payment_of(matter)
    return list(payment.get("refund_on", rules.REFUND_OUTCOMES)) if payment else list(rules.REFUND_OUTCOMES)


def _waits(case: Case, matter: dict[str, Any], action: str) -> bool:
    if action == "accept" and matter.get("kind") == "instant":
        action = "approve"  # 即办件: accepting decides
    return rules.waits_for_payment(action, fees_status=case.fees_status, due_before=_due_before(matter))


def blocks(case: Case, matter: dict[str, Any], action: str) -> bool:
    """Whether ``action`` waits for the case's fees (so it is not offered)."""
    return _waits(case, matter, action)


def guard(case: Case, matter: dict[str, Any], action: str) -> None:
    """409 ``fees-unpaid`` when ``action`` waits for the case's fees."""
    if _waits(case, matter, action):
        raise Problem(409, "fees-unpaid", "Fees not paid",
                      f"{action} waits until the fees are paid (due before {_due_before(matter)})",
                      rule="due_before", state=case.state, due_before=_due_before(matter))  # fmt: skip


def fees_due_event(case: Case, row: CaseFees, actor: str, at: datetime) -> contract.CaseFeesDue:
    return contract.CaseFeesDue(
        **base_fields(case, actor, at), applicant=case.applicant,
        items=[contract.FeeItem(**item) for item in json.loads(row.items)], total_fen=row.total_fen,
        due_before=row.due_before, refund_on=json.loads(row.refund_on), revision=row.revision,
    )  # fmt: skip


def new_row(case: Case, matter: dict[str, Any], items: list[dict[str, Any]], at: datetime) -> CaseFees:
    """Revision 1 (``case_id`` is set once the case is inserted)."""
    return CaseFees(items=dumps(items), total_fen=sum(i["amount_fen"] for i in items), revision=1, status="due",
                    due_before=_due_before(matter), refund_on=dumps(_refund_on(matter)), updated_at=at)  # fmt: skip


async def fees_of(session: AsyncSession, case_id: int) -> CaseFees | None:
    return await session.get(CaseFees, case_id)


def fees_out(row: CaseFees | None) -> dict[str, Any] | None:
    """The fees as the case detail shows them (amounts in fen)."""
    if row is None:
        return None
    return {
        "items": json.loads(row.items), "total_fen": row.total_fen, "revision": row.revision, "status": row.status,
        "due_before": row.due_before, "order_id": row.order_id, "receipt_no": row.receipt_no,
        "paid_fen": row.paid_fen, "paid_at": row.paid_at.isoformat() if row.paid_at else None,
        "refunded_fen": row.refunded_fen, "refunded_at": row.refunded_at.isoformat() if row.refunded_at else None,
    }  # fmt: skip


async def _anomalies(session: AsyncSession, case: Case, matter: dict[str, Any], items: list[dict[str, Any]], *,
                     what: str, at: datetime) -> list[str]:  # fmt: skip
    raised = []
    for anomaly in rules.anomalies(matter, items, what=what):
        await record_anomaly(session, case_id=case.id, case_no=case.case_no, department=case.department,
                             step=anomaly.step, detail=anomaly.detail, at=at)  # fmt: skip
        raised.append(anomaly.step)
    return raised


# ---- an officer's assessment ------------------------------------------------------------------
async def assess(session: AsyncSession, ctx: Context, principal: Principal, case_no: str, items: list[Any],
                 reason: str | None, version: int) -> tuple[Case, CaseFees]:  # fmt: skip
    """``POST /cases/{no}/fees``: the amounts of an assessed matter's items, while unpaid. Items the
    guide does not list are refused; an amount above the guide's is allowed and raised as an
    anomaly (the officer may have a reason; supervision sees it)."""
    case = (await authorize(session, principal, "case.assess_fees", case_no)).case
    if case.origin == "department":  # as transitions.refuse_if_mirrored (which imports this module)
        raise Problem(409, "mirrored-case", "Handled in the department's own system",
                      "the department's system handles this case's fees", rule="mirrored", state=case.state)  # fmt: skip
    if case.version != version:
        raise Problem(409, "version-conflict", "The case changed",
                      f"the case is at version {case.version}, not {version}", state=case.state,
                      version=case.version)  # fmt: skip
    matter = await matter_of_case(session, case)
    if not _payment(matter).get("assessed"):
        raise Problem(409, "fees-not-assessed", "Fees are the guide's",
                      "this matter's fees are the guide's amounts; officers do not assess them", rule="assessed")  # fmt: skip
    row = await fees_of(session, case.id)
    if row is None or row.status != "due" or case.state in TERMINAL:
        raise Problem(409, "fees-not-due", "Fees not open", "fees are assessed only while due and unpaid",
                      rule="unpaid", fees_status=row.status if row else None, state=case.state)  # fmt: skip
    guide = rules.guide_fees(matter)
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.item not in guide:
            raise field_problem(f"items.{index}.item", "known_fee_item",
                                f"not a fee item of this matter's guide: {item.item}")  # fmt: skip
        if item.item in seen:
            raise field_problem(f"items.{index}.item", "unique", f"listed twice: {item.item}")
        seen.add(item.item)
    now = ctx.current_time()
    assessed = [{"item": i.item, "amount_fen": i.amount_fen, "basis": i.basis} for i in items]
    with session.no_autoflush:
        row.items = dumps(assessed)
        row.total_fen = sum(i["amount_fen"] for i in assessed)
        row.revision += 1
        row.assessed_by = principal.subject
        row.updated_at = now
        if row.total_fen == 0:
            row.status = case.fees_status = "waived"  # nothing to pay: nothing waits
        case.updated_at = now
    detail = {"revision": row.revision, "items": assessed, "total_fen": row.total_fen, "reason": reason}
    step = steps.Step(
        steps.line(case, now, "assess_fees", principal.subject, case.state, case.state, dumps(detail)),
        events=[envelope(fees_due_event(case, row, principal.subject, now), subject=case.case_no)],
    )
    await steps.move(session, case, step)  # version-checked: a concurrent assessment or step → 409
    await _anomalies(session, case, matter, assessed, what="assessed", at=now)
    return case, row


# ---- payment's events -------------------------------------------------------------------------
async def on_fees_paid(session: AsyncSession, ctx: Context, case: Case, now: datetime) -> None:
    """Called once when a case's fees are recorded as paid, in the same transaction: a 秒批 verdict
    that waited only for this payment decides the case now (ADR 0027)."""
    await instant.decide_pending(session, ctx, case, now)


def _parse(model: Any, event: CloudEvent) -> Any:
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        raise PoisonEvent(f"not a {model.__name__}: {exc.error_count()} errors") from exc


async def _case(session: AsyncSession, case_no: str) -> Case | None:
    case = (await session.execute(select(Case).where(Case.case_no == case_no))).scalar_one_or_none()
    if case is None:
        log.warning("payment event for an unknown case %s", case_no)
    return case


def _charged(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """payment's items as charged, in the shape the anomalies read (a malformed amount counts as 0)."""
    out = []
    for item in items:
        amount = item.get("amount_fen")
        out.append({"item": str(item.get("item") or ""), "amount_fen": amount if isinstance(amount, int) else 0})
    return out


async def on_order_paid(session: AsyncSession, ctx: Context, event: CloudEvent) -> None:
    """``payment.order.paid``: the fees are paid — receipt on the case and its timeline, the case
    stops waiting, the paid items checked against the guide, then ``on_fees_paid``. The inbox drops
    a redelivered event; the same order announced again (another event id) changes nothing."""
    data: OrderPaid = _parse(OrderPaid, event)
    case = await _case(session, data.case_no)
    if case is None:
        return
    row = await fees_of(session, case.id)
    if row is not None and row.order_id is not None and row.status in {"paid", "refunded"}:
        if row.order_id != data.order_id:
            log.warning("case %s paid again by order %s (paid by %s)", case.case_no, data.order_id, row.order_id)
        return
    matter = await matter_of_case(session, case)
    now = ctx.current_time()
    charged = _charged(data.items)
    with session.no_autoflush:
        if row is None:  # nothing was due (a free matter, or no payment section): recorded as paid anyway
            row = CaseFees(case_id=case.id, items=dumps(charged), total_fen=data.amount_fen, revision=0,
                           due_before=_due_before(matter), refund_on=dumps(_refund_on(matter)), status="paid",
                           updated_at=now)  # fmt: skip
            session.add(row)
        row.status = case.fees_status = "paid"
        row.order_id, row.receipt_no = data.order_id, data.receipt_no
        row.paid_fen, row.paid_items, row.paid_at, row.updated_at = data.amount_fen, dumps(charged), data.paid_at, now
        case.updated_at = now
    detail = {"order_id": data.order_id, "receipt_no": data.receipt_no, "amount_fen": data.amount_fen,
              "provider": data.provider}  # fmt: skip
    if data.amount_fen != row.total_fen:
        detail["due_fen"] = row.total_fen
    await steps.move(session, case, steps.Step(steps.line(case, now, "fees_paid", "system", case.state, case.state,
                                                          dumps(detail))))  # fmt: skip
    await _anomalies(session, case, matter, charged, what="paid", at=now)
    await on_fees_paid(session, ctx, case, now)


async def on_order_refunded(session: AsyncSession, ctx: Context, event: CloudEvent) -> None:
    """``payment.order.refunded``: the fee went back (after withdrawal, rejection or denial). The
    order is kept too: its ``payment.order.paid`` applied after this one (another replica, a retry:
    ADR 0030) finds the fees settled by that order and changes nothing."""
    data: OrderRefunded = _parse(OrderRefunded, event)
    case = await _case(session, data.case_no)
    if case is None:
        return
    row = await fees_of(session, case.id)
    if row is None or row.status == "refunded":
        return
    now = ctx.current_time()
    with session.no_autoflush:
        row.status = case.fees_status = "refunded"
        row.order_id = row.order_id or data.order_id
        row.refunded_fen, row.refunded_at, row.updated_at = data.amount_fen, data.refunded_at, now
        case.updated_at = now
    detail = {"order_id": data.order_id, "amount_fen": data.amount_fen, "reason": data.reason}
    await steps.move(session, case, steps.Step(steps.line(case, now, "fees_refunded", "system", case.state,
                                                          case.state, dumps(detail))))  # fmt: skip


HANDLERS = {PAYMENT_PAID: on_order_paid, PAYMENT_REFUNDED: on_order_refunded}


# ---- supervision: paid, and not refunded ------------------------------------------------------
async def raise_unrefunded(sessionmaker: async_sessionmaker[AsyncSession], ctx: Context) -> int:
    """``fee_not_refunded``: a case withdrawn, rejected or denied — an outcome its matter refunds on —
    whose fees are still paid, not refunded, more than 5 working days after that outcome. Each case
    is claimed in its own transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and the ledger's
    UNIQUE (case, step, level) keeps the warning single whatever the replicas do."""
    raised_already = exists().where(SupervisionWarning.case_id == Case.id,
                                    SupervisionWarning.step == "fee_not_refunded")  # fmt: skip
    async with sessionmaker() as session:
        calendar = await calendars.load(session)
        rows = (
            await session.execute(
                select(Case.id, Case.state, CaseFees.refund_on)
                .join(CaseFees, CaseFees.case_id == Case.id)
                .where(CaseFees.status == "paid", Case.state.in_(rules.REFUND_OUTCOMES), ~raised_already)
            )
        ).all()
    today = ctx.today()
    raised = 0
    for case_id, state, refund_on in rows:
        if state not in json.loads(refund_on):
            continue
        async with sessionmaker() as session, session.begin():
            query = select(CaseFees).where(CaseFees.case_id == case_id, CaseFees.status == "paid")
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            if (await session.execute(query)).scalar_one_or_none() is None:
                continue  # refunded meanwhile, or another replica has it
            case = await session.get(Case, case_id)
            outcome_at = (
                await session.execute(
                    select(CaseEvent.at).where(CaseEvent.case_id == case_id, CaseEvent.to_state == state)
                    .order_by(CaseEvent.id.desc()).limit(1)
                )
            ).scalar_one_or_none()  # fmt: skip
            if case is None or outcome_at is None:
                continue
            outcome_day = outcome_at.astimezone(ZoneInfo(ctx.settings.timezone)).date()
            due, _ = calendar.add_workdays(outcome_day, rules.NOT_REFUNDED_AFTER_DAYS)
            if today <= due:
                continue
            raised += await record_anomaly(
                session, case_id=case.id, case_no=case.case_no, department=case.department, step="fee_not_refunded",
                detail=f"{state} on {outcome_day}, paid, not refunded by {due}", at=ctx.current_time(),
            )  # fmt: skip
    return raised
