"""Paying an order: one attempt per Idempotency-Key, opened at the gateway.

``POST /orders/{id}/payments`` (the payer's side only, domain/access.py):

1. the attempt for (order, Idempotency-Key) is found, or made (``payments`` row, status
   ``created``, amount = the order's amount now — never from the client) and committed, while the
   order is open (409 ``order-not-payable`` naming its status otherwise);
2. without a prepay yet, the gateway is asked to open the transaction (out_trade_no = the attempt's
   id: the gateway answers a retry with the same prepay) — outside any database transaction;
3. the prepay (``prepay_id``, ``pay_url``, ``expires_at``) is stored and returned: 201 for a new
   attempt, 200 for a retry. The gateway away → 503 problem (retry with the same key).

An order may have several attempts (a payer who opened the cashier twice); if two are paid, the
second is ``late`` and refunded (notifications.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.auth import Principal
from kit.errors import Problem
from services.payment.adapters.gateway import GatewayRefused, GatewayUnavailable, TransactionRequest
from services.payment.context import Context, new_id
from services.payment.models import Payment
from services.payment.reading import payment_view, visible_order

log = logging.getLogger("yiwang.payment.payments")


async def _attempt(session: AsyncSession, ctx: Context, caller: Principal, order_id: str,
                   key: str) -> tuple[Payment, bool, str]:  # fmt: skip
    order = await visible_order(session, caller, order_id, "order.pay")
    known = (await session.execute(
        select(Payment).where(Payment.order_id == order.id, Payment.idempotency_key == key)
    )).scalar_one_or_none()  # fmt: skip
    description = f"{order.case_no} 行政事业性收费"[:127]
    if known is not None:
        return known, False, description
    if order.status != "open":
        raise Problem(409, "order-not-payable", "Order not payable", f"the order is {order.status}",
                      errors=[{"field": "order.status", "rule": "open", "message": f"the order is {order.status}"}])  # fmt: skip
    if order.amount_fen <= 0:
        raise Problem(409, "order-not-payable", "Order not payable", "nothing to pay",
                      errors=[{"field": "order.amount_fen", "rule": "positive", "message": "nothing to pay"}])  # fmt: skip
    now = ctx.current_time()
    payment = Payment(id=new_id("pay"), order_id=order.id, idempotency_key=key, provider=ctx.settings.provider,
                      amount_fen=order.amount_fen, status="created", created_at=now, updated_at=now)  # fmt: skip
    session.add(payment)
    await session.flush()
    return payment, True, description


async def pay(sessionmaker: async_sessionmaker[AsyncSession], ctx: Context, caller: Principal, order_id: str,
              key: str) -> tuple[dict[str, Any], bool]:  # fmt: skip
    """The attempt's view and whether it is new (module doc)."""
    try:
        async with sessionmaker() as session, session.begin():
            payment, created, description = await _attempt(session, ctx, caller, order_id, key)
    except IntegrityError:  # the same key raced us: the other request made the attempt
        async with sessionmaker() as session, session.begin():
            payment, created, description = await _attempt(session, ctx, caller, order_id, key)
    if payment.prepay_id is None:
        request = TransactionRequest(out_trade_no=payment.id, description=description, amount_fen=payment.amount_fen,
                                     notify_url=ctx.settings.notify_url,
                                     expire_minutes=ctx.settings.transaction_expire_minutes)  # fmt: skip
        try:
            prepay = await ctx.gateway.create_transaction(request)
        except GatewayUnavailable as exc:
            log.warning("payment %s: gateway unavailable: %s", payment.id, exc)
            raise Problem(503, "gateway-unavailable", "Payment gateway unavailable",
                          "the payment gateway did not answer; retry with the same Idempotency-Key",
                          headers={"Retry-After": "5"}) from None  # fmt: skip
        except GatewayRefused as exc:
            raise Problem(
                502, "gateway-refused", "Payment gateway refused", exc.reason, rule=exc.rule or "gateway"
            ) from None
        async with sessionmaker() as session, session.begin():
            stored = await session.get(Payment, payment.id)
            assert stored is not None
            if stored.prepay_id is None:
                stored.prepay_id, stored.pay_url = prepay.prepay_id, prepay.pay_url
                stored.expires_at = prepay.expires_at or ctx.current_time() + timedelta(
                    minutes=ctx.settings.transaction_expire_minutes
                )
                stored.updated_at = ctx.current_time()
            payment = stored
    return payment_view(payment), created
