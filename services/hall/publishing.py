"""Hall's events into the outbox, in the transaction of the change they report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import hall as contract
from kit.events import EventData, envelope
from services.hall.models import Booking, Ticket, outbox


async def publish(session: AsyncSession, event: EventData, subject: str) -> None:
    await outbox.add(session, envelope(event, subject=subject))


def booking_fields(booking: Booking, at: datetime) -> dict[str, Any]:
    return {"booking_id": booking.id, "hall_code": booking.hall_code, "matter_code": booking.matter_code,
            "starts_at": booking.starts_at, "case_no": booking.case_no, "at": at}  # fmt: skip


async def booking_event(session: AsyncSession, model: type[EventData], booking: Booking, at: datetime,
                        **extra: Any) -> None:  # fmt: skip
    await publish(session, model(**booking_fields(booking, at), **extra), booking.id)


async def ticket_event(session: AsyncSession, model: type[EventData], ticket: Ticket, officer: str, at: datetime,
                       **extra: Any) -> None:  # fmt: skip
    fields = {"ticket_id": ticket.id, "hall_code": ticket.hall_code, "number": ticket.display, "kind": ticket.kind,
              "matter_code": ticket.matter_code, "booking_id": ticket.booking_id,
              "window_code": ticket.window_code or "", "officer": officer, "at": at}  # fmt: skip
    await publish(session, model(**fields, **extra), ticket.id)


__all__ = ["booking_event", "contract", "ticket_event"]
