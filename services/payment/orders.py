"""Orders from caseflow's events: opened and revised by ``fees_due``, closed or refunded when the
case ends (withdrawn, rejected, denied).

Every handler runs in the consumer's transaction with its inbox row (a redelivery changes
nothing). An order is locked by the first statement that touches it (``SELECT … FOR UPDATE`` on
PostgreSQL, a no-op UPDATE taking the write lock on SQLite), so a notification and an event for the
same order apply one after the other. Amounts come from the event alone.

- ``fees_due``: no order → one is opened (``open``), or ``closed`` when the case's end arrived
  first; a higher revision replaces an open order's items and amount; a paid, closed or refunded
  order keeps its items and only records the revision (caseflow's supervision sees the difference).
- ``withdrawn`` / ``rejected`` / ``denied``: recorded as the case's outcome; an open order closes; a
  paid order whose ``refund_on`` names the outcome becomes ``refunding`` and its payment is queued
  for the refund worker (refunds.py), which asks the gateway; the gateway's refund notification
  finishes it (``payment.order.refunded``, once).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.caseflow import CaseFeesDue
from services.payment.context import Context, new_id
from services.payment.domain import settlement
from services.payment.models import CaseOutcome, Order, Payment, Refund

log = logging.getLogger("yiwang.payment.orders")

REFUNDS_QUEUED = "payment.refunds_queued"  # session.info flag: wake the refund worker after commit


def _insert(session: AsyncSession):
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def locked_order(session: AsyncSession, *conditions: Any) -> Order | None:
    """The order matching ``conditions``, loaded and write-locked by this statement."""
    if session.get_bind().dialect.name == "postgresql":
        statement = select(Order).where(*conditions).with_for_update()
    else:
        statement = (update(Order).where(*conditions).values(updated_at=Order.updated_at).returning(Order)
                     .execution_options(synchronize_session=False))  # fmt: skip
    return (await session.scalars(statement)).one_or_none()


def _items(event: CaseFeesDue) -> str:
    return json.dumps([item.model_dump() for item in event.items], ensure_ascii=False)


async def on_fees_due(session: AsyncSession, ctx: Context, event: CaseFeesDue) -> None:
    now = ctx.current_time()
    amount = sum(item.amount_fen for item in event.items)
    if amount != event.total_fen:  # the items are what is charged; the total is only a cross-check
        log.warning("case %s: fees_due total %d differs from its items' sum %d (the items count)",
                    event.case_no, event.total_fen, amount)  # fmt: skip
    order = await locked_order(session, Order.case_no == event.case_no)
    if order is None:
        outcome = await session.get(CaseOutcome, event.case_no)
        values = dict(
            id=new_id("ord"), case_no=event.case_no, matter_code=event.matter_code, department=event.department,
            payer=event.applicant, items=_items(event), amount_fen=amount, due_before=event.due_before,
            refund_on=json.dumps(list(event.refund_on)), revision=event.revision, latest_revision=event.revision,
            status="closed" if outcome else "open", outcome=outcome.outcome if outcome else None,
            created_at=now, updated_at=now,
        )  # fmt: skip
        # ON CONFLICT: another event id for the same case that raced this one opened it already.
        result = await session.execute(_insert(session)(Order).values(**values).on_conflict_do_nothing())
        if getattr(result, "rowcount", 1) == 1:
            return
        order = await locked_order(session, Order.case_no == event.case_no)
        assert order is not None
    order.latest_revision = max(order.latest_revision, event.revision)
    if settlement.should_update(order_status=order.status, order_revision=order.revision, revision=event.revision):
        order.items, order.amount_fen, order.revision = _items(event), amount, event.revision
        order.due_before, order.refund_on = event.due_before, json.dumps(list(event.refund_on))
    elif event.revision > order.revision:
        log.warning("case %s: fees revision %d after the order was %s (kept revision %d)",
                    event.case_no, event.revision, order.status, order.revision)  # fmt: skip
    order.updated_at = now


async def queue_refund(session: AsyncSession, ctx: Context, order: Order, payment: Payment, *, reason: str) -> bool:
    """Queue ``payment``'s money to go back (once per payment: UNIQUE payment_id); whether queued now."""
    assert payment.paid_amount_fen is not None
    now = ctx.current_time()
    result = await session.execute(_insert(session)(Refund).values(
        id=new_id("rfd"), payment_id=payment.id, order_id=order.id, amount_fen=payment.paid_amount_fen,
        reason=reason, status="pending", attempts=0, next_attempt_at=now, created_at=now, updated_at=now,
    ).on_conflict_do_nothing())  # fmt: skip
    queued = getattr(result, "rowcount", 1) == 1
    if queued:
        session.info[REFUNDS_QUEUED] = True
    return queued


async def on_case_ended(session: AsyncSession, ctx: Context, *, case_no: str, outcome: str) -> None:
    now = ctx.current_time()
    await session.execute(
        _insert(session)(CaseOutcome).values(case_no=case_no, outcome=outcome, at=now).on_conflict_do_nothing()
    )
    order = await locked_order(session, Order.case_no == case_no)
    if order is None:
        return
    action = settlement.after_outcome(order_status=order.status, outcome=outcome,
                                      refund_on=json.loads(order.refund_on))  # fmt: skip
    if action == "close":
        order.status, order.outcome, order.updated_at = "closed", outcome, now
    elif action == "refund":
        payment = await session.get(Payment, order.paid_payment_id)
        assert payment is not None
        order.status, order.outcome, order.updated_at = "refunding", outcome, now
        await queue_refund(session, ctx, order, payment, reason=outcome)
        log.info("order %s (case %s): %s, refund of %d fen queued", order.id, case_no, outcome, payment.paid_amount_fen)
