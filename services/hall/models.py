"""Hall's tables.

``halls`` and ``hall_windows``: a hall, its opening hours (JSON list of ``HH:MM-HH:MM`` in China
time), slot length and capacity, and its windows (comprehensive, or serving listed matters).
``slots`` exist once somebody books them: ``UNIQUE (hall_code, starts_at)``; ``booked`` only ever
moves by a conditional UPDATE (``booked < capacity``), so capacity holds under any concurrency.
``bookings``: ``UNIQUE (booker, idempotency_key)`` makes a retried request one booking; the
partial unique index on (visitor, starts_at) among active bookings keeps one person in one place
at a time; ``code_hash`` (HMAC of hall, day and code) is unique, so a check-in code finds exactly
one booking. ``tickets`` are the queue: ``UNIQUE (hall_code, day, number)``, numbers from
``ticket_sequences`` (one row per hall and day, incremented in place). ``outgoing_sms`` is the
queue of messages sent after commit, with retries; ``check_in_failures`` counts wrong codes.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import UtcDateTime
from kit.outbox import Outbox, make_outbox_table


class Base(AsyncAttrs, DeclarativeBase):
    """Hall's own metadata."""


TS = UtcDateTime()
BigId = BigInteger().with_variant(Integer, "sqlite")
ACTIVE = text("status = 'booked'")


class Hall(Base):
    __tablename__ = "halls"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    division_code: Mapped[str] = mapped_column(String(6))
    address: Mapped[str] = mapped_column(String(300))
    queue_prefix: Mapped[str] = mapped_column(String(2))  # "A" → A001, A002, …
    opening_hours: Mapped[str] = mapped_column(Text)  # JSON ["09:00-12:00", "13:30-17:00"]
    slot_minutes: Mapped[int] = mapped_column(Integer)
    slot_capacity: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class HallWindow(Base):
    __tablename__ = "hall_windows"
    __table_args__ = (UniqueConstraint("hall_code", "code", name="uq_hall_windows_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    hall_code: Mapped[str] = mapped_column(ForeignKey("halls.code"))
    code: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(100))
    comprehensive: Mapped[bool] = mapped_column(Boolean, default=False)  # 一窗受理: every matter
    matters: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of matter codes
    department: Mapped[str | None] = mapped_column(String(40), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Slot(Base):
    __tablename__ = "slots"
    __table_args__ = (UniqueConstraint("hall_code", "starts_at", name="uq_slots_hall_start"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    hall_code: Mapped[str] = mapped_column(ForeignKey("halls.code"))
    starts_at: Mapped[datetime] = mapped_column(TS)
    ends_at: Mapped[datetime] = mapped_column(TS)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("booker", "idempotency_key", name="uq_bookings_idempotency"),
        Index("ix_bookings_visitor_active", "visitor", "starts_at", unique=True,
              sqlite_where=ACTIVE, postgresql_where=ACTIVE),
        Index("ix_bookings_hall_start", "hall_code", "starts_at"),
        Index("ix_bookings_booker_created", "booker", "created_at"),
        Index("ix_bookings_status_end", "status", "ends_at"),
    )  # fmt: skip
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hall_code: Mapped[str] = mapped_column(ForeignKey("halls.code"))
    slot_id: Mapped[int] = mapped_column(ForeignKey("slots.id"))
    starts_at: Mapped[datetime] = mapped_column(TS)
    ends_at: Mapped[datetime] = mapped_column(TS)
    matter_code: Mapped[str] = mapped_column(String(40))
    booker: Mapped[str] = mapped_column(String(64))  # the token's subject (person, or enterprise)
    booked_by: Mapped[str] = mapped_column(String(64))  # the person who booked (the agent for an enterprise)
    visitor: Mapped[str] = mapped_column(String(18))  # the resident ID number of who comes
    mobile: Mapped[str] = mapped_column(String(11))
    case_no: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # booked → checked_in (→ a ticket), or cancelled, or no_show
    status: Mapped[str] = mapped_column(String(12))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ticket_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    checked_in_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class TicketSequence(Base):
    __tablename__ = "ticket_sequences"
    hall_code: Mapped[str] = mapped_column(ForeignKey("halls.code"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("hall_code", "day", "number", name="uq_tickets_hall_day_number"),
        Index("ix_tickets_queue", "hall_code", "day", "status"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hall_code: Mapped[str] = mapped_column(ForeignKey("halls.code"))
    day: Mapped[date] = mapped_column(Date)
    number: Mapped[int] = mapped_column(Integer)
    display: Mapped[str] = mapped_column(String(8))  # A017
    kind: Mapped[str] = mapped_column(String(10))  # booking | walk_in
    matter_code: Mapped[str] = mapped_column(String(40))
    booking_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    slot_starts_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    status: Mapped[str] = mapped_column(String(10))  # waiting → called → served | missed
    window_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    called_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    case_no: Mapped[str | None] = mapped_column(String(32), nullable=True)
    issued_by: Mapped[str] = mapped_column(String(64))  # officer:…, kiosk:<device>, or check-in
    issued_at: Mapped[datetime] = mapped_column(TS)
    called_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class OutgoingSms(Base):
    __tablename__ = "outgoing_sms"
    __table_args__ = (Index("ix_outgoing_sms_due", "sent_at", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    booking_id: Mapped[str] = mapped_column(String(32))
    mobile: Mapped[str] = mapped_column(String(11))
    text: Mapped[str] = mapped_column(Text)  # masked once sent: the code is not kept in clear
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TS)
    sent_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)  # gave up after sms_max_attempts
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)


class CheckInFailure(Base):
    __tablename__ = "check_in_failures"
    __table_args__ = (Index("ix_check_in_failures_source_at", "hall_code", "source", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    hall_code: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(100))  # the kiosk device, else the client address
    at: Mapped[datetime] = mapped_column(TS)


outbox = Outbox(make_outbox_table(Base.metadata))
metadata = Base.metadata
