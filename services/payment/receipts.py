"""电子票据: issued in the transaction that marks an order paid, read by its payer and department.

The number is handed out by ``receipt_sequences`` (one row per 票据代码): ``INSERT … ON CONFLICT DO
NOTHING`` makes the year's row exist, then ``UPDATE … SET last_number = last_number + 1 RETURNING``
takes the next number under the row's lock — no gaps, no number twice, also with replicas.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import Problem
from kit.masking import mask_id_number
from services.payment.context import Context
from services.payment.domain import access, receipts
from services.payment.models import Order, Receipt, ReceiptSequence
from services.payment.orders import _insert


async def _next_number(session: AsyncSession, code: str) -> str:
    await session.execute(_insert(session)(ReceiptSequence).values(code=code, last_number=0).on_conflict_do_nothing())
    taken = await session.execute(
        update(ReceiptSequence).where(ReceiptSequence.code == code)
        .values(last_number=ReceiptSequence.last_number + 1).returning(ReceiptSequence.last_number)
    )  # fmt: skip
    return receipts.receipt_number(int(taken.scalar_one()))


async def issue(session: AsyncSession, ctx: Context, order: Order, *, amount_fen: int, transaction_id: str,
                at: datetime) -> Receipt:  # fmt: skip
    code = receipts.receipt_code(ctx.settings.receipt_province_code, at)
    number = await _next_number(session, code)
    check = receipts.check_code(ctx.settings.receipt_secret(), code=code, number=number, amount_fen=amount_fen,
                                issued_at=at, payer=order.payer)  # fmt: skip
    receipt = Receipt(receipt_no=code + number, code=code, number=number, check_code=check, order_id=order.id,
                      case_no=order.case_no, department=order.department, payer=order.payer, items=order.items,
                      amount_fen=amount_fen, transaction_id=transaction_id, issued_at=at)  # fmt: skip
    session.add(receipt)
    return receipt


def _payer_masked(payer: str) -> str:
    return mask_id_number(payer)


async def read(session: AsyncSession, ctx: Context, caller: Principal, receipt_no: str) -> dict[str, Any]:
    receipt = await session.get(Receipt, receipt_no) if receipts.is_receipt_no(receipt_no) else None
    if receipt is None:
        raise Problem(404, "not-found", "Not found", "no such receipt")
    relation = access.order_relation(caller, payer=receipt.payer, department=receipt.department)
    access.check("receipt.read", relation, caller.roles)
    order = (await session.execute(select(Order).where(Order.id == receipt.order_id))).scalar_one()
    return {
        "receipt_no": receipt.receipt_no, "code": receipt.code, "number": receipt.number,
        "check_code": receipt.check_code, "order_id": receipt.order_id, "case_no": receipt.case_no,
        "payer": _payer_masked(receipt.payer),
        "department": receipt.department,
        "department_name": ctx.settings.departments.get(receipt.department, receipt.department),
        "items": [{"item": i["item"], "amount_fen": i["amount_fen"]} for i in json.loads(receipt.items)],
        "amount_fen": receipt.amount_fen, "transaction_id": receipt.transaction_id, "issued_at": receipt.issued_at,
        "order_status": order.status,
    }  # fmt: skip
