"""Who a window calls next — pure.

A window serves a ticket when it is comprehensive (一窗受理: every matter) or lists the ticket's
matter. Among the tickets it serves, booked visitors whose slot has started come first (earliest
slot first, then by number): they were promised a time. Then everybody else in order of their
number — walk-ins, and booked visitors who checked in before their slot began.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class WaitingTicket:
    id: str
    number: int
    kind: str  # booking | walk_in
    matter_code: str
    slot_starts_at: datetime | None


def serves(comprehensive: bool, matters: Iterable[str], matter_code: str) -> bool:
    """Whether a window takes a matter."""
    return comprehensive or matter_code in set(matters)


def priority(ticket: WaitingTicket, now: datetime) -> tuple[int, float, int]:
    """Sort key: (0 booked-and-due / 1 the rest, slot start for the due ones, number)."""
    due = ticket.kind == "booking" and ticket.slot_starts_at is not None and ticket.slot_starts_at <= now
    if due:
        assert ticket.slot_starts_at is not None
        return (0, ticket.slot_starts_at.timestamp(), ticket.number)
    return (1, 0.0, ticket.number)


def call_order(tickets: Iterable[WaitingTicket], now: datetime) -> list[WaitingTicket]:
    """The tickets in the order a window calls them (filter by ``serves`` first)."""
    return sorted(tickets, key=lambda t: priority(t, now))
