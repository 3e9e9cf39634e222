"""Express's tables.

``shipments`` is one parcel: ``deliver`` carries a case's result to the applicant, ``collect``
brings the applicant's originals to the department (a pickup). ``UNIQUE (case_no, kind,
pickup_key)`` — ``pickup_key`` is the pickup id, or ``''`` for a delivery — makes a requested
shipment exist once however often (or under however many event ids) the request arrives. The
waybill is unique once the carrier assigned one. Lists are read by applicant and by department,
newest first.

``shipment_events`` is the tracking timeline as the carrier reported it: one row per carrier event
id (a duplicated callback finds its row), ``applied`` saying whether it moved the status.
``carrier_orders`` is the retry queue of orders not yet accepted by the carrier (one row per
shipment; deleted once the carrier answered for good). ``inbox``/``outbox``: kit's exactly-once
consumption and publishing.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.consumer import make_inbox_table
from kit.db import UtcDateTime
from kit.outbox import Outbox, make_outbox_table


class Base(AsyncAttrs, DeclarativeBase):
    """Express's own metadata: no other service's tables in its migrations."""


TS = UtcDateTime()
BigId = BigInteger().with_variant(Integer, "sqlite")


class Shipment(Base):
    """One parcel handed to the carrier."""

    __tablename__ = "shipments"
    __table_args__ = (
        UniqueConstraint("case_no", "kind", "pickup_key", name="uq_shipments_case_kind_pickup"),
        Index("ix_shipments_applicant_created", "applicant", "created_at"),
        Index("ix_shipments_department_created", "department", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # deliver | collect
    case_no: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(40))
    applicant: Mapped[str] = mapped_column(String(64))  # subject id of the case's applicant
    pickup_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pickup_key: Mapped[str] = mapped_column(String(64), default="")  # pickup_id or '' (NULLs are never equal)
    sender_name: Mapped[str] = mapped_column(String(100))
    sender_phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    sender_division_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    sender_address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    recipient_name: Mapped[str] = mapped_column(String(100))
    recipient_phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    recipient_division_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    recipient_address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    items: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of material names (collect)
    carrier: Mapped[str] = mapped_column(String(16))
    waybill: Mapped[str | None] = mapped_column(String(13), unique=True, nullable=True)  # UPU S10
    # created … returned (canonical, contracts/events/express.py), or refused (the carrier said no).
    status: Mapped[str] = mapped_column(String(20))
    status_at: Mapped[datetime] = mapped_column(TS)  # the carrier's time of the event that set it
    failure_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    due: Mapped[date | None] = mapped_column(Date, nullable=True)  # Art. 44 delivery deadline (deliver)
    expected_delivery: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class ShipmentEvent(Base):
    """One tracking event the carrier reported (the timeline)."""

    __tablename__ = "shipment_events"
    __table_args__ = (
        UniqueConstraint("shipment_id", "event_id", name="uq_shipment_events_event"),
        Index("ix_shipment_events_shipment_at", "shipment_id", "at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    shipment_id: Mapped[str] = mapped_column(ForeignKey("shipments.id"))
    event_id: Mapped[str] = mapped_column(String(64))  # the carrier's id; a duplicate reuses it
    at: Mapped[datetime] = mapped_column(TS)  # when it happened (the carrier's clock)
    status: Mapped[str] = mapped_column(String(20))  # canonical
    carrier_code: Mapped[str] = mapped_column(String(32))
    carrier_text: Mapped[str] = mapped_column(String(200))
    signed_by: Mapped[str | None] = mapped_column(String(50), nullable=True)  # stored masked
    received_at: Mapped[datetime] = mapped_column(TS)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)  # it set the status (placed by time)


class CarrierOrder(Base):
    """A shipment whose order the carrier has not accepted yet (the retry queue)."""

    __tablename__ = "carrier_orders"
    __table_args__ = (Index("ix_carrier_orders_next_attempt", "next_attempt_at"),)
    shipment_id: Mapped[str] = mapped_column(ForeignKey("shipments.id"), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TS)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)


outbox = Outbox(make_outbox_table(Base.metadata))
inbox = make_inbox_table(Base.metadata)
metadata = Base.metadata
