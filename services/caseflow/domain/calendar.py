"""The official working-day calendar (工作日) that every caseflow deadline is counted in.

Why not Monday–Friday: the Administrative Licensing Law counts its limits in working days
(Art. 82), and China's working days are set each year by the State Council: public holidays
fall on weekdays, and weekends around them become 调休 make-up working days. A limit counted
in Mon–Fri is wrong by up to a week around Spring Festival and National Day.

Sources, in order of precedence for one date:

1. the override table an administrator loads (date -> is_workday). It wins even in years the
   library knows, so a local holiday or a correction to the library can be applied without a
   release;
2. chinesecalendar, which knows the State Council notices for the years it ships with
   (1.11: 2004–2026) and raises ``NotImplementedError`` outside them;
3. otherwise Monday–Friday, reported as *provisional*. A deadline that runs into a year whose
   notice nobody has loaded yet is still computed (cases must never fail because it is
   December), but everyone can see that it may move when the notice is loaded.

A year counts as *known* when the library covers it or an administrator declared it complete
(``known_override_years``). Single override dates in an undeclared year are known themselves,
but do not make their year known: a partial table must not silently claim completeness.

How days are counted (the convention every function here and in ``clock`` follows):

- The start day never counts. The law counts "within N working days of" an event from the
  next day, so ``add_workdays(start, n)`` is the n-th working day strictly after ``start``,
  and ``add_workdays(start, 0)`` is ``start`` itself.
- ``workdays_between(start, end)`` counts the working days in the half-open interval
  ``(start, end]``, so ``workdays_between(d, add_workdays(d, n)[0]) == n``. It is signed: when
  ``end`` is before ``start`` it returns minus the working days in ``(end, start]``.
- *Provisional* means at least one date that was stepped over or counted (the dates in the
  half-open interval above) lies in no known year.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from functools import cache, lru_cache

import chinese_calendar

_ONE_DAY = timedelta(days=1)


def _as_date(day: date) -> date:
    """A ``datetime`` is a ``date`` subclass; strip the time so it compares and hashes as a day."""
    if isinstance(day, _dt.datetime):
        return day.date()
    if not isinstance(day, date):
        raise TypeError(f"expected a date, got {type(day).__name__}")
    return day


@cache
def library_knows_year(year: int) -> bool:
    """Whether the installed chinesecalendar has the State Council notice for ``year``.

    Probed rather than hard-coded, so upgrading the library extends the known years by itself.
    """
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@lru_cache(maxsize=8192)
def _library_workday(day: date) -> bool:
    """chinesecalendar's answer, remembered: deadlines step over the same few hundred days all day."""
    return chinese_calendar.is_workday(day)


class WorkdayCalendar:
    """Official working days: chinesecalendar's holidays and 调休 make-up workdays, plus an override
    table admins load (date -> is_workday) for years the library does not know yet. A date in a year
    neither knows falls back to Monday–Friday and is reported as provisional, never an error."""

    def __init__(self, overrides: Mapping[date, bool] | None = None, known_override_years: Iterable[int] = ()) -> None:
        self._overrides: dict[date, bool] = {
            _as_date(day): bool(is_workday) for day, is_workday in (overrides or {}).items()
        }
        self._known_override_years: frozenset[int] = frozenset(int(year) for year in known_override_years)

    @property
    def declared_years(self) -> frozenset[int]:
        """The years an administrator declared complete (loaded into the override table)."""
        return self._known_override_years

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is an official working day (override, then library, then Mon–Fri)."""
        day = _as_date(day)
        if day in self._overrides:
            return self._overrides[day]
        if library_knows_year(day.year):
            return _library_workday(day)
        return day.weekday() < 5

    def is_known(self, day: date) -> bool:
        """Whether official data (the library, a declared override year or an explicit override) covers ``day``."""
        day = _as_date(day)
        return day in self._overrides or day.year in self._known_override_years or library_knows_year(day.year)

    def add_workdays(self, start: date, days: int) -> tuple[date, bool]:
        """The ``days``-th working day after ``start`` (``start`` itself never counts) and whether
        any day stepped over lies in an unknown year."""
        start = _as_date(start)
        if days < 0:
            raise ValueError(f"days must be >= 0, got {days}")
        day, counted, provisional = start, 0, False
        while counted < days:
            day += _ONE_DAY
            provisional = provisional or not self.is_known(day)
            if self.is_workday(day):
                counted += 1
        return day, provisional

    def workdays_between(self, start: date, end: date) -> tuple[int, bool]:
        """Working days in ``(start, end]`` and whether any of those dates is in an unknown year;
        negative (minus the working days in ``(end, start]``) when ``end`` is before ``start``."""
        start, end = _as_date(start), _as_date(end)
        if end < start:
            count, provisional = self.workdays_between(end, start)
            return -count, provisional
        count, provisional, day = 0, False, start
        while day < end:
            day += _ONE_DAY
            provisional = provisional or not self.is_known(day)
            if self.is_workday(day):
                count += 1
        return count, provisional

    def provisional_years(self, start: date, end: date) -> list[int]:
        """The years of the dates in ``(start, end]`` that no official data covers, for explanations."""
        start, end = _as_date(start), _as_date(end)
        if end < start:
            start, end = end, start
        years: list[int] = []
        day = start
        while day < end:
            day += _ONE_DAY
            if not self.is_known(day) and day.year not in years:
                years.append(day.year)
        return years
