"""Opening hours and slots — pure.

A hall opens in periods of its local day (``09:00-12:00``, ``13:30-17:00``, China time) on working
days (the platform calendar says which; never Mon–Fri by rule). Each period is cut into slots of
``slot_minutes`` from its start; a remainder shorter than a slot is no slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kit.errors import RuleViolation

_PERIOD = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class Period:
    start: time
    end: time  # exclusive; 24:00 is written as time.max's minute


def parse_period(text: str) -> Period:
    """``"09:00-12:00"`` → Period; RuleViolation for anything else or an empty/backwards period."""
    match = _PERIOD.match(text)
    if not match:
        raise RuleViolation("format", "a period is HH:MM-HH:MM, e.g. 09:00-12:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h2 == 24 and m2:
        raise RuleViolation("format", "24:00 is the latest end")
    start = time(h1, m1)
    end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
    if end <= start:
        raise RuleViolation("order", "a period ends after it starts")
    return Period(start, end)


def check_opening_hours(periods: list[str], slot_minutes: int) -> list[Period]:
    """The periods, sorted, not overlapping, each holding at least one slot."""
    parsed = sorted((parse_period(p) for p in periods), key=lambda p: p.start)
    for earlier, later in zip(parsed, parsed[1:], strict=False):
        if later.start < earlier.end:
            raise RuleViolation("overlap", "opening periods overlap")
    for period in parsed:
        if _minutes(period.end) - _minutes(period.start) < slot_minutes:
            raise RuleViolation("slot_length", "every period holds at least one slot")
    return parsed


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute


def slot_starts(day: date, periods: list[Period], slot_minutes: int, zone: ZoneInfo) -> list[datetime]:
    """Every slot start of ``day`` (aware, in ``zone``), in order. The caller asks the calendar
    whether ``day`` is a working day first."""
    starts: list[datetime] = []
    for period in periods:
        minute = _minutes(period.start)
        while minute + slot_minutes <= _minutes(period.end):
            starts.append(datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone))
            minute += slot_minutes
    return starts


def slot_at(moment: datetime, periods: list[Period], slot_minutes: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The slot that starts exactly at ``moment`` as (start, end) in UTC-comparable aware times;
    RuleViolation ``slot`` when no slot starts then."""
    local = moment.astimezone(zone)
    for start in slot_starts(local.date(), periods, slot_minutes, zone):
        if start == local:
            return start, start + timedelta(minutes=slot_minutes)
    raise RuleViolation("slot", "no slot of this hall starts at this time (opening hours and slot length)")


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The hall's day of an aware moment."""
    return moment.astimezone(zone).date()


def takes_walk_ins(moment: datetime, periods: list[Period], zone: ZoneInfo, *, early_minutes: int) -> bool:
    """Whether the machine gives walk-in numbers at ``moment`` (on a working day, which the caller
    checks): from ``early_minutes`` before the first period opens until the last one closes."""
    local = moment.astimezone(zone)
    minute = local.hour * 60 + local.minute
    return _minutes(periods[0].start) - early_minutes <= minute < _minutes(periods[-1].end)
