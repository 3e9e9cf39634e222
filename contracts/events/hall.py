"""Events hall publishes (stream HALL, subjects hall.>), ADR 0023.

Appointments (预约) at a government service hall and its queue (叫号). Deliberately minimal: no
phone, no ID number, no name travels on the bus — a booking is named by its id, its hall, its
matter, its time and, when it was made for one, the case whose originals are to be seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from kit.events import EventData


class _BookingFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    booking_id: str = Field(max_length=32)
    hall_code: str = Field(max_length=40)
    matter_code: str = Field(max_length=40)
    starts_at: datetime = Field(description="the slot's start")
    case_no: str | None = Field(default=None, max_length=32, description="the case whose originals are to be seen")
    at: datetime = Field(description="when it happened")


class BookingMade(_BookingFields, EventData):
    event_type: ClassVar[str] = "yiwang.hall.booking.made.v1"
    nats_subject: ClassVar[str] = "hall.booking.made"


class BookingMoved(_BookingFields, EventData):
    event_type: ClassVar[str] = "yiwang.hall.booking.moved.v1"
    nats_subject: ClassVar[str] = "hall.booking.moved"
    previous_starts_at: datetime


class BookingCancelled(_BookingFields, EventData):
    event_type: ClassVar[str] = "yiwang.hall.booking.cancelled.v1"
    nats_subject: ClassVar[str] = "hall.booking.cancelled"


class BookingCheckedIn(_BookingFields, EventData):
    event_type: ClassVar[str] = "yiwang.hall.booking.checked_in.v1"
    nats_subject: ClassVar[str] = "hall.booking.checked_in"
    ticket: str = Field(max_length=8, description="the queue number, e.g. A017")


class BookingNoShow(_BookingFields, EventData):
    """The slot ended without a check-in."""

    event_type: ClassVar[str] = "yiwang.hall.booking.no_show.v1"
    nats_subject: ClassVar[str] = "hall.booking.no_show"


class _TicketFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticket_id: str = Field(max_length=32)
    hall_code: str = Field(max_length=40)
    number: str = Field(max_length=8, description="as shown on the board, e.g. A017")
    kind: Literal["booking", "walk_in"]
    matter_code: str = Field(max_length=40)
    booking_id: str | None = Field(default=None, max_length=32)
    window_code: str = Field(max_length=8)
    officer: str = Field(max_length=64, description="officer:<login> who called or served")
    at: datetime


class TicketCalled(_TicketFields, EventData):
    event_type: ClassVar[str] = "yiwang.hall.ticket.called.v1"
    nats_subject: ClassVar[str] = "hall.ticket.called"


class TicketServed(_TicketFields, EventData):
    event_type: ClassVar[str] = "yiwang.hall.ticket.served.v1"
    nats_subject: ClassVar[str] = "hall.ticket.served"
    case_no: str | None = Field(default=None, max_length=32, description="the case the officer submitted, if any")
