"""Events payment publishes (stream PAYMENT, subjects payment.>).

网上缴费: payment opens one order per case from ``caseflow.case.fees_due`` (amounts from the guide,
never from a client), takes the payment gateway's signed notifications, issues the e-receipt
(电子票据) and refunds after the outcomes the matter names. Caseflow consumes ``paid`` (the case
stops waiting) and ``refunded`` (supervision's "paid but not refunded" clears).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from kit.events import EventData


class OrderPaid(EventData):
    event_type: ClassVar[str] = "yiwang.payment.order.paid.v1"
    nats_subject: ClassVar[str] = "payment.order.paid"
    order_id: str
    case_no: str
    department: str
    payer: str = Field(description="subject id of the applicant who paid")
    amount_fen: int = Field(ge=0, description="what the gateway reports as paid, in fen")
    items: list[dict[str, int | str | None]] = Field(description="the order's items as charged: item, amount_fen")
    paid_at: datetime
    provider: str = Field(description="the payment gateway (sandbox, unionpay, …)")
    transaction_id: str = Field(description="the gateway's transaction id")
    receipt_no: str = Field(description="电子票据 number")


class OrderRefunded(EventData):
    event_type: ClassVar[str] = "yiwang.payment.order.refunded.v1"
    nats_subject: ClassVar[str] = "payment.order.refunded"
    order_id: str
    case_no: str
    department: str
    amount_fen: int = Field(ge=0)
    reason: str = Field(description="the case outcome that called for it: withdrawn | rejected | denied")
    refunded_at: datetime
