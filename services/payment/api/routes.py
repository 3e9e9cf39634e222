"""Payment's HTTP API: translation only; the rules live in the modules it calls."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from kit.deps import Caller, DbSession, from_app_state
from kit.errors import Problem
from kit.pagination import Pagination
from services.payment import notifications, payments, reading, receipts
from services.payment.context import Context
from services.payment.schemas import NotificationOut, OrderOut, OrderPage, OrderStatus, PaymentOut, ReceiptOut

router = APIRouter(responses={428: {"description": "Idempotency-Key required"}})
payment_context = from_app_state("payment", Context)
PaymentContext = Annotated[Context, Depends(payment_context)]

OrderId = Annotated[str, Path(pattern=r"^ord[0-9a-f]{24}$", description="an order id")]
IDEMPOTENCY_KEY = r"[\x21-\x7e]{1,100}"


@router.get("/orders", tags=["orders"], response_model=OrderPage)
async def list_orders(
    session: DbSession,
    caller: Caller,
    page: Pagination,
    case_no: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9-]{1,32}$")] = None,
    status: OrderStatus | None = None,
) -> dict[str, Any]:
    """Payer: own orders; officer: the department's; supervisor: all (payer masked)."""
    return await reading.list_orders(session, caller, page, case_no=case_no, status=status)


@router.get("/orders/{order_id}", tags=["orders"], response_model=OrderOut)
async def read_order(session: DbSession, caller: Caller, order_id: OrderId) -> dict[str, Any]:
    """One order with its payment attempts and refunds; others' orders are 404."""
    return await reading.read_one(session, caller, order_id)


@router.post("/orders/{order_id}/payments", tags=["orders"], status_code=201, response_model=PaymentOut)
async def pay_order(
    request: Request,
    response: Response,
    ctx: PaymentContext,
    caller: Caller,
    order_id: OrderId,
    idempotency_key: Annotated[str | None, Header(description="required: a retry returns the same attempt")] = None,
) -> dict[str, Any]:
    """Open a payment attempt at the gateway (201), or get back the one this key opened (200).
    The amount is the order's; nothing in the request sets it."""
    if idempotency_key is None:
        raise Problem(428, "idempotency-key-required", "Idempotency-Key required",
                      "send an Idempotency-Key header (e.g. a UUID) so that a retry opens no second payment",
                      header="Idempotency-Key")  # fmt: skip
    if not re.fullmatch(IDEMPOTENCY_KEY, idempotency_key):
        raise Problem(422, "validation", "Request is not valid", "Idempotency-Key: 1–100 visible ASCII characters",
                      errors=[{"field": "header.Idempotency-Key", "rule": "pattern",
                               "message": "1–100 visible ASCII characters"}])  # fmt: skip
    view, created = await payments.pay(request.app.state.sessionmaker, ctx, caller, order_id, idempotency_key)
    response.status_code = 201 if created else 200
    return view


@router.get("/receipts/{receipt_no}", tags=["receipts"], response_model=ReceiptOut)
async def read_receipt(
    session: DbSession, caller: Caller, ctx: PaymentContext,
    receipt_no: Annotated[str, Path(pattern=r"^[0-9]{18}$", description="票据代码 + 票据号码")],
) -> dict[str, Any]:  # fmt: skip
    """The e-receipt (电子票据): payer masked, items, amount, issuing department, check code."""
    return await receipts.read(session, ctx, caller, receipt_no)


@router.post("/notifications/{provider}", tags=["notifications"], response_model=NotificationOut)
async def notification(
    request: Request, session: DbSession, ctx: PaymentContext,
    provider: Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{1,31}$")],
) -> dict[str, Any]:  # fmt: skip
    """The payment gateway's signed notification (public at the gateway; payment verifies it)."""
    body = await request.body()
    verified = notifications.verify(ctx, provider, request.headers, body)  # before the body is even parsed
    notice = notifications.parse(body, ctx.settings.json_max_depth)
    applied = await notifications.receive(session, ctx, provider, verified, notice)
    return {"code": "SUCCESS", "outcome": applied.outcome, "duplicate": applied.duplicate}
