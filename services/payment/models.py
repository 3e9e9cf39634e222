"""Payment's tables.

``orders``: one per case (``UNIQUE case_no``), its items and amount from caseflow's fees_due (never
from a client), the revision they came from and the highest revision seen. ``payments``: one row
per attempt to pay an order (the gateway's ``out_trade_no`` is its id), ``UNIQUE (order_id,
idempotency_key)`` so a retried POST makes none twice, ``UNIQUE transaction_id`` once the gateway
reported one. ``notifications``: every verified notification once (``UNIQUE (provider,
notification_id)``: a duplicate finds its row); ``notification_nonces``: nonces of verified
notifications until they are too old to be accepted anyway (a replay is refused). ``refunds``: one
per payment refunded (``UNIQUE payment_id``: money is returned once), also the refund worker's
queue. ``receipts``: the e-receipt (电子票据) of a paid order; ``receipt_sequences``: the next
票据号码 per 票据代码. ``case_outcomes``: a case's end (withdrawn, rejected, denied) as soon as it
is known, so fees that arrive after it open a closed order. ``inbox``/``outbox``: kit's
exactly-once consumption and publishing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.consumer import make_inbox_table
from kit.db import UtcDateTime
from kit.outbox import Outbox, make_outbox_table


class Base(AsyncAttrs, DeclarativeBase):
    """Payment's own metadata."""


TS = UtcDateTime()
BigId = BigInteger().with_variant(Integer, "sqlite")


class Order(Base):
    """What one case's applicant owes (网上缴费)."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_payer_created", "payer", "created_at"),
        Index("ix_orders_department_created", "department", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(32), unique=True)
    matter_code: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(40))
    payer: Mapped[str] = mapped_column(String(64))  # subject id of the case's applicant
    items: Mapped[str] = mapped_column(Text)  # JSON [{"item", "amount_fen", "basis"}]
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    due_before: Mapped[str] = mapped_column(String(16))
    refund_on: Mapped[str] = mapped_column(String(100))  # JSON list of outcomes
    revision: Mapped[int] = mapped_column(Integer)  # the revision the items come from
    latest_revision: Mapped[int] = mapped_column(Integer)  # the highest revision seen
    # open → paid → refunding → refunded; open → closed (the case ended unpaid)
    status: Mapped[str] = mapped_column(String(16))
    paid_payment_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    receipt_no: Mapped[str | None] = mapped_column(String(18), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)  # withdrawn | rejected | denied
    refunded_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class Payment(Base):
    """One attempt to pay an order at the gateway (its out_trade_no is ``id``)."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("order_id", "idempotency_key", name="uq_payments_order_key"),
        Index("ix_payments_order", "order_id"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str] = mapped_column(String(32))
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # the order's amount when the attempt began
    prepay_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pay_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    # created → succeeded | failed (→ created again is not needed: a failed attempt may be paid again)
    status: Mapped[str] = mapped_column(String(16))
    # what a success meant: paid (the order), late (after the order was paid or closed), amount_mismatch
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    transaction_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    paid_amount_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class Notification(Base):
    """One verified notification from the gateway, as received."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("provider", "notification_id", name="uq_notifications_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    notification_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(64))  # out_trade_no or out_refund_no
    transaction_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amount_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))  # what it did: paid, late, amount_mismatch, failed, …
    received_at: Mapped[datetime] = mapped_column(TS)


class NotificationNonce(Base):
    """A verified notification's nonce, kept while a replay of it could still pass the clock check."""

    __tablename__ = "notification_nonces"
    __table_args__ = (Index("ix_notification_nonces_expires", "expires_at"),)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(TS)


class Refund(Base):
    """Money going back for one payment; also the refund worker's queue (``next_attempt_at``)."""

    __tablename__ = "refunds"
    __table_args__ = (Index("ix_refunds_status_next", "status", "next_attempt_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # out_refund_no
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), unique=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    # withdrawn | rejected | denied (the case's outcome), late or amount_mismatch (money not owed)
    reason: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16))  # pending → requested → succeeded | failed
    refund_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the gateway's
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TS)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    succeeded_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class Receipt(Base):
    """电子票据: issued once per paid order."""

    __tablename__ = "receipts"
    receipt_no: Mapped[str] = mapped_column(String(18), primary_key=True)  # 票据代码 + 票据号码
    code: Mapped[str] = mapped_column(String(8))
    number: Mapped[str] = mapped_column(String(10))
    check_code: Mapped[str] = mapped_column(String(6))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    case_no: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(40))
    payer: Mapped[str] = mapped_column(String(64))
    items: Mapped[str] = mapped_column(Text)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    transaction_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(TS)


class ReceiptSequence(Base):
    """The last 票据号码 handed out under one 票据代码."""

    __tablename__ = "receipt_sequences"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger)


class CaseOutcome(Base):
    """How a case ended for payment's purposes, first outcome wins."""

    __tablename__ = "case_outcomes"
    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(TS)


outbox = Outbox(make_outbox_table(Base.metadata))
inbox = make_inbox_table(Base.metadata)
metadata = Base.metadata
