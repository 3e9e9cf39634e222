"""The deadline clock of a case: the Administrative Licensing Law's limits (行政许可法) counted in
official working days, with the pauses and extensions the law allows.

Why a clock of its own: a case must always know its due date, *why* it is that day and which
rule produced it, and must recompute it whenever a pause or extension changes it (peers that
store lead times once and never recompute are what the supervisors complain about).

How days are counted (see also ``calendar``'s docstring; tests prove each line):

- The start day never counts: a limit of N working days from ``start`` ends on the N-th working
  day strictly after ``start``. A limit of 0 (an instant matter, 即办件) is due on ``start``.
- A pause (``Pause(start=A, end=B)``) stops the clock from A inclusive and runs it again from B
  inclusive, i.e. the working days in ``[A, B)`` are not counted and the deadline moves back by
  exactly that many working days. Consequences:
  * a pause that starts and ends on the same day removes nothing;
  * a pause that starts on the due day itself still moves the deadline (that day had not been
    used up yet);
  * days on or before the clock's ``start`` were never counted, so a pause reaching back before
    it removes only its days after ``start``;
  * overlapping pauses remove each working day once; the day is attributed to the pause that
    started first;
  * a pause that begins after the deadline has run out does not move it: an overdue case cannot
    be made punctual by suspending it afterwards.
- An open pause (``end=None``) that begins before the clock runs out makes the due date unknown
  (``due=None``): nobody can say when the expert review will end. One that begins after the
  deadline has run out leaves the (missed) due date standing, for the reason above.
- The extension (Art. 42) adds its working days to the limit; it is counted like the limit.
- ``remaining_workdays`` is ``workdays_between(today, due)``: 0 on the due day, 1 on the working
  day before. After the due day it is negative: minus the working days in ``(due, today]``, and
  at least -1, so that a weekend right after a Friday due date never reads as "0, due today".
- Warning levels (电子监察): "red" on any day after the due date, "yellow" while 0 <= remaining
  <= ``yellow_at``, "none" otherwise and while the clock is paused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from services.caseflow.domain.calendar import WorkdayCalendar

PRE_REVIEW_DAYS = 2  # 预审 within at most 2 working days
DEEMED_ACCEPTANCE_DAYS = 5  # Art. 32: the one correction notice within 5 working days of receipt
DELIVERY_DAYS = 10  # Art. 44: licence issued and delivered within 10 working days of the grant

# Art. 45: time for these is not counted; a correction (补正) pauses the clock until resubmission.
ART_45_REASONS = frozenset({"hearing", "tender", "auction", "testing", "inspection", "quarantine", "expert_review"})
PAUSE_REASONS = ART_45_REASONS | {"correction"}

# Art. 42 defaults: (decision limit, the one extension), in working days.
_LICENSING_LIMIT = (20, 10)
_JOINT_LICENSING_LIMIT = (45, 15)
_LICENSING_KINDS = frozenset({"licensing", "行政许可"})

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _show(day: date) -> str:
    return f"{day.isoformat()} ({_WEEKDAYS[day.weekday()]})"


@dataclass(frozen=True)
class Pause:
    """A period the clock stops: correction (补正), suspension (Art. 45 hearing/testing/expert review)."""

    start: date  # the clock stops from this day (inclusive)
    end: date | None  # and runs again from this day (exclusive); None = still paused
    reason: str  # "correction", "expert_review", "hearing", "testing", "inspection", ...

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"pause ends ({self.end}) before it starts ({self.start})")
        if not self.reason:
            raise ValueError("a pause needs a reason (the applicant is told it in writing)")

    def covers(self, day: date) -> bool:
        """Whether the clock is stopped on ``day`` by this pause: ``start <= day < end``."""
        return self.start <= day and (self.end is None or day < self.end)


@dataclass(frozen=True)
class Deadline:
    """A computed due date with everything needed to explain it to the applicant and the supervisor."""

    due: date | None  # None while a pause is open (the due date is unknown until it ends)
    limit_days: int  # working days allowed, including any extension
    provisional: bool  # some counted day lies in a year without official calendar data
    rule: str  # which rule produced it, e.g. "promised limit 3 working days", "Art. 42: 20 working days"
    paused_days: int  # working days not counted because of pauses
    explanation: list[str] = field(default_factory=list)  # start, each pause, extension, provisional years
    # The decision clock's limits as the pinned guide states them (None: the guide gives none / not a decision clock).
    statutory_days: int | None = None
    promised_days: int | None = None


def compute_deadline(
    calendar: WorkdayCalendar,
    *,
    start: date,
    limit_days: int,
    rule: str,
    pauses: Sequence[Pause] = (),
    extension_days: int = 0,
) -> Deadline:
    """The due date: ``start`` + (``limit_days`` + ``extension_days``) working days, pushed back by
    every working day inside a closed pause; unknown (``None``) while a pause that began before
    the clock ran out is still open. Recomputed from scratch each time, so pauses and extensions
    added later always show."""
    if limit_days < 0:
        raise ValueError(f"limit_days must be >= 0, got {limit_days}")
    if extension_days < 0:
        raise ValueError(f"extension_days must be >= 0, got {extension_days}")
    total = limit_days + extension_days
    ordered = sorted(pauses, key=lambda pause: (pause.start, pause.end or date.max))
    removed = [0] * len(ordered)
    explanation = [f"start {_show(start)}; counting begins the next day: {limit_days} working days ({rule})"]
    if extension_days:
        explanation.append(f"extension: +{extension_days} working days, {total} in all")

    day, counted, provisional = start, 0, False
    stopped_by: Pause | None = None
    while counted < total:
        day = date.fromordinal(day.toordinal() + 1)
        provisional = provisional or not calendar.is_known(day)
        stopped_by = next((pause for pause in ordered if pause.end is None and pause.covers(day)), None)
        if stopped_by is not None:
            break
        covering = next((index for index, pause in enumerate(ordered) if pause.covers(day)), None)
        if calendar.is_workday(day):
            if covering is None:
                counted += 1
            else:
                removed[covering] += 1
    due = None if stopped_by is not None else day

    for pause, days in zip(ordered, removed, strict=True):
        span = f"{pause.reason} pause from {_show(pause.start)}"
        if pause.end is None:
            if pause is stopped_by:
                explanation.append(
                    f"{span} still open: due date unknown until it ends ({counted} of {total} working days used)"
                )
            else:
                explanation.append(f"{span} still open, but the deadline had already run out; it does not move it")
            continue
        span += f" to {_show(pause.end)} (exclusive)"
        if due is not None and pause.start > due:
            explanation.append(f"{span} began after the deadline had run out; it does not move it")
        elif stopped_by is not None and pause.start > day:
            explanation.append(f"{span}: not yet reached while the clock is stopped")
        else:
            explanation.append(f"{span}: {days} working days not counted")

    years = calendar.provisional_years(start, day)
    if years:
        listed = ", ".join(str(year) for year in years)
        explanation.append(
            f"provisional: no official calendar for {listed} yet; Monday–Friday less the statutory holidays "
            "of 全国年节及纪念日放假办法 assumed"
        )
    if due is not None:
        explanation.append(f"due {_show(due)}")
    return Deadline(
        due=due,
        limit_days=total,
        provisional=provisional,
        rule=rule,
        paused_days=sum(removed),
        explanation=explanation,
    )


def remaining_workdays(calendar: WorkdayCalendar, deadline: Deadline, today: date) -> int:
    """Working days left until the due date: 0 on the due day, negative when overdue (at least -1
    on any day after it). Raises ``ValueError`` while the due date is unknown (paused)."""
    if deadline.due is None:
        raise ValueError("the clock is paused: the due date is unknown until the pause ends")
    count, _ = calendar.workdays_between(today, deadline.due)
    if today > deadline.due:
        return min(count, -1)
    return count


def warning_level(calendar: WorkdayCalendar, deadline: Deadline, today: date, *, yellow_at: int = 2) -> str:
    """The supervision warning (电子监察): "red" after the due date, "yellow" when at most
    ``yellow_at`` working days remain, "none" otherwise and while the clock is paused."""
    if deadline.due is None:
        return "none"
    if today > deadline.due:
        return "red"
    if remaining_workdays(calendar, deadline, today) <= yellow_at:
        return "yellow"
    return "none"


def statutory_limit(kind: str, *, joint: bool = False) -> tuple[int, int]:
    """Art. 42 defaults as (decision limit, the one extension) in working days: licensing (20, 10);
    joint, unified or centralised handling (parallel approval) (45, 15). Other kinds of matter
    have no default under this law, so asking for one is an error rather than a guess."""
    if kind not in _LICENSING_KINDS:
        raise ValueError(f"no Administrative Licensing Law default limit for matter kind {kind!r}")
    return _JOINT_LICENSING_LIMIT if joint else _LICENSING_LIMIT


def governing_limit(promised_days: int | None, statutory_days: int | None) -> tuple[int, str]:
    """The limit that governs a case and the rule text for it: the matter's promised limit (承诺时限)
    where it has one and it is shorter; the statutory limit otherwise (a promise longer than the
    law allows does not extend the law)."""
    for name, days in (("promised_days", promised_days), ("statutory_days", statutory_days)):
        if days is not None and days < 0:
            raise ValueError(f"{name} must be >= 0, got {days}")
    if promised_days is None and statutory_days is None:
        raise ValueError("a matter needs a promised or a statutory limit")
    if statutory_days is None:
        assert promised_days is not None  # narrowed by the check above
        return promised_days, f"promised limit {promised_days} working days"
    if promised_days is None:
        return statutory_days, f"statutory limit {statutory_days} working days"
    if promised_days < statutory_days:
        return promised_days, f"promised limit {promised_days} working days (statutory {statutory_days})"
    if promised_days > statutory_days:
        return statutory_days, f"statutory limit {statutory_days} working days (promised {promised_days} exceeds it)"
    return statutory_days, f"statutory limit {statutory_days} working days (promised the same)"


def deemed_acceptance_due(calendar: WorkdayCalendar, received: date) -> tuple[date, bool]:
    """Art. 32: the last day a correction notice may be given (receipt + 5 working days) and whether
    it is provisional. With no notice by then, the application counts as accepted as of ``received``."""
    return calendar.add_workdays(received, DEEMED_ACCEPTANCE_DAYS)


def is_deemed_accepted(calendar: WorkdayCalendar, received: date, today: date) -> bool:
    """Art. 32: whether, absent any notice, the application already counts as accepted (from the
    day of receipt) on ``today``, i.e. the last notice day has passed."""
    last_notice_day, _ = deemed_acceptance_due(calendar, received)
    return today > last_notice_day


def delivery_due(calendar: WorkdayCalendar, approved: date) -> tuple[date, bool]:
    """Art. 44: the licence is issued and delivered within 10 working days of the grant decision."""
    return calendar.add_workdays(approved, DELIVERY_DAYS)
