"""Request and response models of payment's HTTP API (the OpenAPI documents every answer)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

OrderStatus = Literal["open", "paid", "closed", "refunding", "refunded"]
_REF = r"^[A-Za-z0-9_-]{1,64}$"
_FEN = Field(default=None, ge=0, le=10**11)


# ---- the gateway's notification --------------------------------------------------------------
class NoticeAmount(BaseModel):
    model_config = ConfigDict(extra="ignore")
    total: int | None = _FEN
    refund: int | None = _FEN
    currency: Literal["CNY"] = "CNY"


class NoticeResource(BaseModel):
    """What the notification is about (WeChat Pay v3's decrypted ``resource``, here in clear)."""

    model_config = ConfigDict(extra="ignore")  # a gateway adding fields must not break payments
    out_trade_no: str | None = Field(default=None, pattern=_REF)
    transaction_id: str | None = Field(default=None, pattern=_REF)
    trade_state: str | None = Field(default=None, max_length=32)
    out_refund_no: str | None = Field(default=None, pattern=_REF)
    refund_id: str | None = Field(default=None, pattern=_REF)
    refund_status: str | None = Field(default=None, max_length=32)
    amount: NoticeAmount | None = None
    success_time: AwareDatetime | None = None


class NotificationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=r"^[\x21-\x7e]{1,64}$")
    create_time: AwareDatetime | None = None
    event_type: Literal["TRANSACTION.SUCCESS", "TRANSACTION.FAIL", "REFUND.SUCCESS", "REFUND.ABNORMAL",
                        "REFUND.CLOSED"]  # fmt: skip
    resource: NoticeResource


class NotificationOut(BaseModel):
    code: Literal["SUCCESS"] = "SUCCESS"
    outcome: str = Field(description="paid, late, amount_mismatch, failed, refunded, extra_refunded, refund_failed, "
                                     "duplicate, conflict")  # fmt: skip
    duplicate: bool


# ---- orders ----------------------------------------------------------------------------------
class ItemOut(BaseModel):
    item: str
    amount_fen: int
    basis: str | None = None


class PaymentOut(BaseModel):
    id: str = Field(description="the attempt's id, the gateway's out_trade_no")
    order_id: str
    provider: str
    amount_fen: int
    status: Literal["created", "succeeded", "failed", "refunded"]
    outcome: str | None = Field(description="paid, late or amount_mismatch once the gateway reported success")
    prepay_id: str | None
    pay_url: str | None = Field(description="the gateway's cashier: where the payer's client goes to pay")
    expires_at: datetime | None
    transaction_id: str | None
    paid_at: datetime | None
    created_at: datetime


class RefundOut(BaseModel):
    id: str
    payment_id: str
    amount_fen: int
    reason: str
    status: Literal["pending", "requested", "succeeded", "failed"]
    succeeded_at: datetime | None


class OrderOut(BaseModel):
    id: str
    case_no: str
    matter_code: str
    department: str
    payer: str = Field(description="the case's applicant (masked for a supervisor)")
    items: list[ItemOut]
    amount_fen: int
    due_before: str
    refund_on: list[str]
    revision: int
    latest_revision: int = Field(description="the highest fees revision caseflow sent (> revision: not applied)")
    status: OrderStatus
    outcome: str | None
    paid_at: datetime | None
    receipt_no: str | None
    refunded_at: datetime | None
    created_at: datetime
    updated_at: datetime
    payments: list[PaymentOut] | None = None
    refunds: list[RefundOut] | None = None


class OrderPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[OrderOut]


class ReceiptOut(BaseModel):
    receipt_no: str = Field(description="票据代码 (8) + 票据号码 (10)")
    code: str = Field(description="票据代码")
    number: str = Field(description="票据号码")
    check_code: str = Field(description="校验码")
    order_id: str
    case_no: str
    payer: str = Field(description="交款人, masked")
    department: str
    department_name: str
    items: list[ItemOut]
    amount_fen: int
    transaction_id: str
    issued_at: datetime
    order_status: OrderStatus
