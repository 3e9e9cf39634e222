"""Reading orders: the caller's list and one order with its payments and refunds.

Every answer passes domain/access.py: the payer's side and the order's department read it; a
supervisor of another department reads it with the payer masked; anybody else gets 404.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import Problem
from kit.masking import mask_id_number
from kit.pagination import PageQuery
from services.payment.domain import access
from services.payment.models import Order, Payment, Refund


def payment_view(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id, "order_id": payment.order_id, "provider": payment.provider, "amount_fen": payment.amount_fen,
        "status": payment.status, "outcome": payment.outcome, "prepay_id": payment.prepay_id,
        "pay_url": payment.pay_url, "expires_at": payment.expires_at, "transaction_id": payment.transaction_id,
        "paid_at": payment.paid_at, "created_at": payment.created_at,
    }  # fmt: skip


def order_view(order: Order, *, masked: bool) -> dict[str, Any]:
    return {
        "id": order.id, "case_no": order.case_no, "matter_code": order.matter_code, "department": order.department,
        "payer": mask_id_number(order.payer) if masked else order.payer, "items": json.loads(order.items),
        "amount_fen": order.amount_fen, "due_before": order.due_before, "refund_on": json.loads(order.refund_on),
        "revision": order.revision, "latest_revision": order.latest_revision, "status": order.status,
        "outcome": order.outcome, "paid_at": order.paid_at, "receipt_no": order.receipt_no,
        "refunded_at": order.refunded_at, "created_at": order.created_at, "updated_at": order.updated_at,
    }  # fmt: skip


def relation_of(caller: Principal, order: Order) -> str:
    return access.order_relation(caller, payer=order.payer, department=order.department)


async def list_orders(session: AsyncSession, caller: Principal, page: PageQuery, *, case_no: str | None,
                      status: str | None) -> dict[str, Any]:  # fmt: skip
    scope, key = access.list_scope(caller)
    if scope == "none":
        raise Problem(403, "forbidden", "Not allowed", "no orders to list for this caller", rule="relation")
    conditions = []
    if scope == "payer":
        conditions.append(Order.payer == key)
    elif scope == "department":
        conditions.append(Order.department == key)
    if case_no:
        conditions.append(Order.case_no == case_no)
    if status:
        conditions.append(Order.status == status)
    total = (await session.execute(select(func.count()).select_from(Order).where(*conditions))).scalar_one()
    rows = (await session.execute(
        select(Order).where(*conditions).order_by(Order.created_at.desc(), Order.id.desc())
        .offset(page.offset).limit(page.limit)
    )).scalars()  # fmt: skip
    items = [order_view(order, masked=relation_of(caller, order) == access.SUPERVISOR_RELATION) for order in rows]
    return page.answer(total, items)


async def visible_order(session: AsyncSession, caller: Principal, order_id: str, action: str) -> Order:
    """The order, if the caller may take ``action`` on it (404 for who may not read it)."""
    order = await session.get(Order, order_id)
    if order is None:
        raise Problem(404, "not-found", "Not found", "no such order")
    access.check(action, relation_of(caller, order), caller.roles)
    return order


async def read_one(session: AsyncSession, caller: Principal, order_id: str) -> dict[str, Any]:
    order = await visible_order(session, caller, order_id, "order.read")
    view = order_view(order, masked=relation_of(caller, order) == access.SUPERVISOR_RELATION)
    payments = (await session.execute(
        select(Payment).where(Payment.order_id == order.id).order_by(Payment.created_at, Payment.id)
    )).scalars()  # fmt: skip
    view["payments"] = [payment_view(p) for p in payments]
    refunds = await session.execute(select(Refund).where(Refund.order_id == order.id).order_by(Refund.created_at))
    view["refunds"] = [
        {"id": r.id, "payment_id": r.payment_id, "amount_fen": r.amount_fen, "reason": r.reason, "status": r.status,
         "succeeded_at": r.succeeded_at}
        for r in refunds.scalars()
    ]  # fmt: skip
    return view
