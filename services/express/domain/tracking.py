"""A shipment's tracking: canonical statuses, the EMS code table and the one rule that moves a
shipment's status when a carrier event arrives.

Canonical statuses (contracts/events/express.py ``ShipmentStatus``), in order::

    created → picked_up → in_transit → out_for_delivery ⇄ failed_attempt → signed_for | returned

The rule (``advance``), which makes the result independent of the order callbacks arrive in:

- every event, however late, goes into the timeline, which is kept sorted by (event time,
  event_id); an event whose ``event_id`` is already there is a duplicate and changes nothing;
- the status is the event that is "furthest" by (rank, event time, tie-break) — so a late
  ``in_transit`` after ``out_for_delivery`` is recorded but does not move the status back;
- ``out_for_delivery`` and ``failed_attempt`` share a rank: the later of the two by event time
  wins, so an attempt that failed and a new delivery round alternate as they happened;
- ``signed_for`` and ``returned`` are final: once reached, nothing changes the status (express
  has already published it). A second, different final is kept in the timeline and reported as a
  conflict for a person to look at.

Hence any arrival order of the same events (with duplicates) ends in the same status and timeline,
except when the carrier sends two different finals (then the first to arrive stands).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

Status = Literal["created", "picked_up", "in_transit", "out_for_delivery", "failed_attempt", "signed_for", "returned"]

STATUSES: tuple[Status, ...] = (
    "created",
    "picked_up",
    "in_transit",
    "out_for_delivery",
    "failed_attempt",
    "signed_for",
    "returned",
)
# Rank: how far along a shipment is. Equal ranks are ordered by event time.
RANK: Mapping[Status, int] = {
    "created": 0,
    "picked_up": 1,
    "in_transit": 2,
    "out_for_delivery": 3,
    "failed_attempt": 3,
    "signed_for": 4,
    "returned": 4,
}
FINAL: frozenset[Status] = frozenset({"signed_for", "returned"})
# Same rank and the same event time (a scanner stamping to the second): the failure is taken to
# come after the round it ended. Deterministic either way; the event_id breaks any remaining tie.
_TIE: Mapping[Status, int] = {"out_for_delivery": 0, "failed_attempt": 1}


@dataclass(frozen=True)
class EmsCode:
    """One EMS tracking code: its canonical status and EMS's own words for it."""

    code: str
    status: Status
    text: str


# EMS codes → canonical status. The sandbox (services/express/sandbox_ems.py) sends exactly these;
# docs/adr/0017-express.md lists them. Real EMS feeds use more codes (e.g. separate 到达/离开 scans);
# an unknown code is refused (``UnknownCarrierCode``) rather than guessed.
EMS_CODES: Mapping[str, EmsCode] = {
    entry.code: entry
    for entry in (
        EmsCode("10", "picked_up", "收寄"),
        EmsCode("20", "in_transit", "运输中"),
        EmsCode("30", "out_for_delivery", "派送中"),
        EmsCode("40", "signed_for", "妥投"),
        EmsCode("50", "failed_attempt", "未妥投"),
        EmsCode("60", "returned", "退回"),
    )
}


class UnknownCarrierCode(ValueError):
    """A carrier status code the mapping does not know."""


def ems_status(code: str) -> Status:
    """The canonical status of EMS ``code`` ("40" → "signed_for"); ``UnknownCarrierCode`` otherwise."""
    entry = EMS_CODES.get(code)
    if entry is None:
        raise UnknownCarrierCode(f"unknown EMS code {code[:8]!r}")
    return entry.status


@dataclass(frozen=True)
class TrackingEvent:
    """One carrier event. ``at`` is the carrier's event time (timezone-aware), not arrival time."""

    event_id: str
    status: Status
    at: datetime
    code: str = ""
    text: str = ""
    signed_by: str | None = None

    def sort_key(self) -> tuple[datetime, str]:
        """Timeline order: event time, then event_id (so equal times still have one order)."""
        return (self.at, self.event_id)

    def precedence(self) -> tuple[int, datetime, int, str]:
        """How far along this event puts a shipment: rank, then time, then the tie-break."""
        return (RANK[self.status], self.at, _TIE.get(self.status, 0), self.event_id)


@dataclass(frozen=True)
class Tracking:
    """What express knows of a shipment's journey. ``current`` is the event that set ``status``
    (None while only created); ``timeline`` holds every distinct event by event time."""

    status: Status = "created"
    current: TrackingEvent | None = None
    timeline: tuple[TrackingEvent, ...] = ()

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def has(self, event_id: str) -> bool:
        """Whether an event with this id is already recorded."""
        return any(event.event_id == event_id for event in self.timeline)


Outcome = Literal["changed", "recorded", "duplicate", "conflict"]


@dataclass(frozen=True)
class Advanced:
    """The result of ``advance``: the new tracking and what happened —

    ``changed`` (status moved: publish it), ``recorded`` (timeline only: a late or backwards event),
    ``duplicate`` (event_id seen: nothing changed), ``conflict`` (a different final after a final:
    recorded, status kept; worth a warning)."""

    tracking: Tracking
    outcome: Outcome

    @property
    def changed(self) -> bool:
        return self.outcome == "changed"


def advance(current: Tracking, event: TrackingEvent) -> Advanced:
    """Apply one carrier event to ``current`` (see the module docstring for the rule).

    Raises ``ValueError`` for an event time without a timezone (times from different zones must
    compare correctly)."""
    if event.at.tzinfo is None or event.at.utcoffset() is None:
        raise ValueError("a tracking event's time must carry its timezone")
    if current.has(event.event_id):
        return Advanced(current, "duplicate")
    timeline = tuple(sorted((*current.timeline, event), key=TrackingEvent.sort_key))
    recorded = replace(current, timeline=timeline)
    if current.final:
        outcome: Outcome = "conflict" if event.status in FINAL and event.status != current.status else "recorded"
        return Advanced(recorded, outcome)
    if current.current is not None and event.precedence() <= current.current.precedence():
        return Advanced(recorded, "recorded")
    if current.current is None and event.status == "created":
        return Advanced(recorded, "recorded")
    return Advanced(replace(recorded, status=event.status, current=event), "changed")


def replay(events: Iterable[TrackingEvent], start: Tracking | None = None) -> Tracking:
    """``advance`` over ``events`` in the order given (what a run of callbacks does)."""
    tracking = start or Tracking()
    for event in events:
        tracking = advance(tracking, event).tracking
    return tracking
