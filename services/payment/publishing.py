"""Payment's events into the outbox, in the transaction of the change they report."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import payment as contract
from kit.events import EventData, envelope
from services.payment.models import Order, Payment, outbox


async def publish(session: AsyncSession, event: EventData, subject: str) -> None:
    await outbox.add(session, envelope(event, subject=subject))


async def order_paid(session: AsyncSession, order: Order, payment: Payment, *, provider: str,
                     receipt_no: str, at: datetime) -> None:  # fmt: skip
    assert payment.transaction_id is not None and payment.paid_amount_fen is not None
    await publish(session, contract.OrderPaid(
        order_id=order.id, case_no=order.case_no, department=order.department, payer=order.payer,
        amount_fen=payment.paid_amount_fen, items=[{"item": i["item"], "amount_fen": i["amount_fen"]}
                                                   for i in json.loads(order.items)],
        paid_at=at, provider=provider, transaction_id=payment.transaction_id, receipt_no=receipt_no,
    ), order.case_no)  # fmt: skip


async def order_refunded(session: AsyncSession, order: Order, *, amount_fen: int, reason: str, at: datetime) -> None:
    await publish(session, contract.OrderRefunded(
        order_id=order.id, case_no=order.case_no, department=order.department, amount_fen=amount_fen,
        reason=reason, refunded_at=at,
    ), order.case_no)  # fmt: skip
