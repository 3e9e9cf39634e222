"""The gateway's asynchronous notifications: verified here, applied once, in ONE transaction.

``POST /notifications/{provider}`` is public at the gateway; payment checks everything itself:

1. the provider is the configured one (404 otherwise);
2. the signature (domain/signature.py): serial known, timestamp within
   ``PAYMENT_NOTIFICATION_MAX_AGE_SECONDS``, signature valid — else 401, nothing stored;
3. the body (422 naming the field);
4. in one transaction: the nonce is stored (seen before → 401 ``replay``, rolled back: nothing
   stored); a notification id seen before is a duplicate (200, nothing changes); the order is
   locked and the notification applied:

- ``TRANSACTION.SUCCESS``: the attempt gets the transaction id, amount and time; what it means for
  the order is domain/settlement.py's ``settle``: ``paid`` → the order is paid, the e-receipt
  issued and ``payment.order.paid`` published; ``late`` / ``amount_mismatch`` → recorded, the order
  unchanged, the money queued to go back (refunds.py). The same transaction again (under another
  notification id) is a duplicate.
- ``TRANSACTION.FAIL``: the attempt is ``failed``; the order stays payable.
- ``REFUND.SUCCESS``: the refund succeeded; for a case's refund the order is ``refunded`` and
  ``payment.order.refunded`` published (once: a refund succeeds once). ``REFUND.ABNORMAL`` /
  ``REFUND.CLOSED``: the refund ``failed``, logged for an operator (the order stays ``refunding``).

The answer is 200 ``{"code": "SUCCESS", "outcome", "duplicate"}`` — what the gateway needs to stop
retrying; a 4xx/5xx makes it send again later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.bodyguard import load_json_body
from kit.errors import Problem, field_problem
from kit.masking import mask_text
from services.payment import receipts
from services.payment.context import Context
from services.payment.domain import access, settlement, signature
from services.payment.models import Notification, NotificationNonce, Order, Payment, Refund
from services.payment.orders import _insert, locked_order, queue_refund
from services.payment.publishing import order_paid, order_refunded
from services.payment.schemas import NotificationIn

log = logging.getLogger("yiwang.payment.notifications")


@dataclass(frozen=True)
class Applied:
    outcome: str
    duplicate: bool = False


def verify(ctx: Context, provider: str, headers: Mapping[str, str], body: bytes) -> signature.Verified:
    """Steps 1 and 2 of the module doc; 404 or 401 problems."""
    if provider != ctx.settings.provider:
        raise Problem(404, "not-found", "Not found", "no such payment provider")
    verified: signature.Verified | None = None
    reason = ""
    try:
        verified = signature.verify(ctx.keys, headers, body, now=time.time(),
                                    max_age=ctx.settings.notification_max_age_seconds)  # fmt: skip
    except signature.NotificationRejected as rejected:
        log.warning("notification from %s refused: %s", provider, rejected.reason)
        reason = rejected.reason
    decision = access.decide("notification.receive", access.provider_relation(verified is not None), ())
    if not decision.allowed or verified is None:
        problem = decision.problem()
        problem.extra["reason"] = reason
        raise problem
    return verified


def parse(body: bytes, max_depth: int) -> NotificationIn:
    data = load_json_body(body, max_depth)
    try:
        return NotificationIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise field_problem(f"body.{name}", first.get("type", "invalid"), mask_text(str(first.get("msg")))) from None


def _required(value: Any, name: str) -> Any:
    if value is None:
        raise field_problem(f"body.resource.{name}", "missing", f"{name} is required for this event_type")
    return value


async def _remember_nonce(session: AsyncSession, ctx: Context, provider: str, nonce: str) -> None:
    now = ctx.current_time()
    await session.execute(delete(NotificationNonce).where(NotificationNonce.expires_at < now))
    expires = now + timedelta(seconds=2 * ctx.settings.notification_max_age_seconds)
    result = await session.execute(_insert(session)(NotificationNonce).values(
        provider=provider, nonce=nonce, expires_at=expires).on_conflict_do_nothing())  # fmt: skip
    if getattr(result, "rowcount", 1) == 0:
        log.warning("notification from %s refused: replayed nonce", provider)
        raise Problem(401, "unauthorized", "Not authenticated", "Pay-Nonce already used", rule="signature",
                      reason="replay")  # fmt: skip


async def receive(session: AsyncSession, ctx: Context, provider: str, verified: signature.Verified,
                  notice: NotificationIn) -> Applied:  # fmt: skip
    await _remember_nonce(session, ctx, provider, verified.nonce)
    seen = await session.scalar(select(Notification.id).where(Notification.provider == provider,
                                                             Notification.notification_id == notice.id))  # fmt: skip
    if seen is not None:
        return Applied("duplicate", duplicate=True)
    resource = notice.resource
    if notice.event_type.startswith("TRANSACTION."):
        applied, reference = await _transaction(session, ctx, provider, notice), resource.out_trade_no
    else:
        applied, reference = await _refund(session, ctx, notice), resource.out_refund_no
    if applied.duplicate:
        return applied
    try:
        session.add(Notification(
            provider=provider, notification_id=notice.id, event_type=notice.event_type, reference=reference,
            transaction_id=resource.transaction_id, amount_fen=resource.amount.total if resource.amount else None,
            outcome=applied.outcome, received_at=ctx.current_time(),
        ))  # fmt: skip
        await session.flush()
    except IntegrityError:  # the same notification raced past the lock (SQLite): it is a duplicate
        raise Problem(409, "conflict", "Conflict", "the same notification is being applied; retry") from None
    return applied


_Child = TypeVar("_Child", Payment, Refund)


async def _with_order(session: AsyncSession, model: type[_Child], key: str, what: str) -> tuple[_Child, Order]:
    """The payment attempt or refund ``key`` names, and its order: the order locked first, then
    the row read again under the lock (404 naming ``what`` when there is none)."""
    order_id = await session.scalar(select(model.order_id).where(model.id == key))
    if order_id is None:
        raise Problem(404, "not-found", "Not found", f"no {what}")
    order = await locked_order(session, Order.id == order_id)
    assert order is not None
    row = (await session.execute(
        select(model).where(model.id == key).execution_options(populate_existing=True)
    )).scalar_one()  # fmt: skip
    return row, order


async def _transaction(session: AsyncSession, ctx: Context, provider: str, notice: NotificationIn) -> Applied:
    resource = notice.resource
    payment, order = await _with_order(session, Payment, _required(resource.out_trade_no, "out_trade_no"),
                                       "payment with this out_trade_no")  # fmt: skip
    now = ctx.current_time()
    if notice.event_type == "TRANSACTION.FAIL":
        if payment.status == "created":
            payment.status, payment.updated_at = "failed", now
        return Applied("failed")
    transaction_id = _required(resource.transaction_id, "transaction_id")
    amount = _required(resource.amount and resource.amount.total, "amount.total")
    if resource.trade_state != "SUCCESS":
        raise field_problem("body.resource.trade_state", "success", "TRANSACTION.SUCCESS needs trade_state SUCCESS")
    if payment.transaction_id is not None:
        if payment.transaction_id == transaction_id:
            return Applied("duplicate", duplicate=True)  # the same payment, told again
        log.error("payment %s: a second transaction %s (recorded, not applied)", payment.id, transaction_id)
        return Applied("conflict")
    taken = await session.scalar(select(Payment.id).where(Payment.transaction_id == transaction_id))
    if taken is not None:  # the gateway reused a transaction id for another attempt: never settle twice
        log.error("payment %s: transaction %s already settled payment %s (recorded, not applied)",
                  payment.id, transaction_id, taken)  # fmt: skip
        return Applied("conflict")
    outcome = settlement.settle(order_status=order.status, order_amount=order.amount_fen,
                                attempt_amount=payment.amount_fen, reported_amount=amount)  # fmt: skip
    paid_at = resource.success_time or now
    payment.status, payment.outcome, payment.transaction_id = "succeeded", outcome, transaction_id
    payment.paid_amount_fen, payment.paid_at, payment.updated_at = amount, paid_at, now
    await session.flush()  # UNIQUE transaction_id: one transaction settles one attempt
    if outcome == "paid":
        receipt = await receipts.issue(session, ctx, order, amount_fen=amount, transaction_id=transaction_id,
                                       at=paid_at)  # fmt: skip
        order.status, order.paid_payment_id, order.paid_at = "paid", payment.id, paid_at
        order.receipt_no, order.updated_at = receipt.receipt_no, now
        await order_paid(session, order, payment, provider=provider, receipt_no=receipt.receipt_no, at=paid_at)
        log.info("order %s (case %s) paid: %d fen, receipt %s", order.id, order.case_no, amount, receipt.receipt_no)
    else:
        await queue_refund(session, ctx, order, payment, reason=outcome)
        log.warning("order %s (case %s): %s payment %s of %d fen (order %s, %d fen): refund queued",
                    order.id, order.case_no, outcome, payment.id, amount, order.status, order.amount_fen)  # fmt: skip
    return Applied(outcome)


async def _refund(session: AsyncSession, ctx: Context, notice: NotificationIn) -> Applied:
    resource = notice.resource
    out_refund_no = _required(resource.out_refund_no, "out_refund_no")
    refund, order = await _with_order(session, Refund, out_refund_no, "refund with this out_refund_no")
    now = ctx.current_time()
    if refund.status == "succeeded":
        return Applied("duplicate", duplicate=True)
    if notice.event_type != "REFUND.SUCCESS":
        refund.status, refund.last_error, refund.updated_at = "failed", notice.event_type, now
        log.error("refund %s (order %s, case %s): %s — an operator must see to it",
                  refund.id, order.id, order.case_no, notice.event_type)  # fmt: skip
        return Applied("refund_failed")
    refund.status, refund.succeeded_at, refund.updated_at = "succeeded", resource.success_time or now, now
    refund.refund_id = refund.refund_id or resource.refund_id
    payment = await session.get(Payment, refund.payment_id)
    assert payment is not None
    payment.status, payment.updated_at = "refunded", now
    if refund.reason in settlement.REFUND_OUTCOMES and order.status == "refunding":
        order.status, order.refunded_at, order.updated_at = "refunded", refund.succeeded_at, now
        await order_refunded(session, order, amount_fen=refund.amount_fen, reason=refund.reason,
                             at=refund.succeeded_at)  # fmt: skip
        log.info("order %s (case %s) refunded: %d fen (%s)", order.id, order.case_no, refund.amount_fen, refund.reason)
        return Applied("refunded")
    return Applied("extra_refunded")
