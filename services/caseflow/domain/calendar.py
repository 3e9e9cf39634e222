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
3. otherwise the *provisional* calendar: Monday–Friday less the statutory holidays of the national
   regulation 全国年节及纪念日放假办法 (as amended by State Council Decree No. 795, in force since
   2025-01-01: 13 days) and the 补假 its Art. 6 gives for a holiday on a weekend, which are known
   years ahead — only the 调休 make-up arrangement is not, so no weekend is made a working day. The lunar holidays (春节, 端午, 中秋) and the Qingming solar
   term are computed with lunar_python. A deadline that runs into a year whose notice nobody has
   loaded yet is still computed (cases must never fail because it is December), but everyone can
   see that it may move when the notice is loaded.

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
- A year an administrator declared complete is counted from its loaded table alone (Mon–Fri
  otherwise): the State Council notice lists every day off of its year, statutory ones included.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from functools import cache, lru_cache

import chinese_calendar
from lunar_python import Lunar, Solar

_ONE_DAY = timedelta(days=1)

REGULATION = "全国年节及纪念日放假办法"
# The regulation's version this module encodes (State Council Decree No. 795, in force 2025-01-01).
# Earlier years are all covered by chinesecalendar, so no earlier version is needed.
REGULATION_IN_FORCE_FROM = 2025
LIBRARY_SOURCE = f"chinesecalendar {getattr(chinese_calendar, '__version__', '')}".strip()
OVERRIDE_SOURCE = "calendar override (loaded by a platform administrator)"

# chinesecalendar names its holidays in English; the platform speaks the regulation's names.
_LIBRARY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


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


def _solar_date(solar: Solar) -> date:
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def _lunar_day(year: int, month: int, day: int) -> date:
    """The Gregorian date of ``day`` of the (non-leap) lunar ``month`` of the lunar year that begins in ``year``."""
    return _solar_date(Lunar.fromYmd(year, month, day).getSolar())


def _qingming(year: int) -> date:
    """The day the Qingming solar term (清明, sun at 15° longitude) begins in China: 4, 5 or 6 April."""
    for day in (3, 4, 5, 6):
        if Solar.fromYmd(year, 4, day).getLunar().getJieQi() == "清明":
            return date(year, 4, day)
    raise ValueError(f"no Qingming found in early April {year}")  # astronomically impossible


def _festival_days(year: int) -> list[tuple[date, str]]:
    """Art. 2's thirteen days of ``year`` as (date, festival), in the regulation's order."""
    new_year = _lunar_day(year, 1, 1)
    return [
        (date(year, 1, 1), "元旦"),
        # 除夕 is the day before 正月初一, whatever the length of the 12th lunar month.
        *((new_year + timedelta(days=offset), "春节") for offset in range(-1, 3)),
        (_qingming(year), "清明节"),
        (date(year, 5, 1), "劳动节"),
        (date(year, 5, 2), "劳动节"),
        (_lunar_day(year, 5, 5), "端午节"),
        (_lunar_day(year, 8, 15), "中秋节"),
        *((date(year, 10, day), "国庆节") for day in (1, 2, 3)),
    ]


@cache
def statutory_holidays(year: int) -> dict[date, str]:
    """The days off for all citizens under 全国年节及纪念日放假办法 Art. 2 (as in force since 2025),
    by date, with the festival's name: 元旦 1 Jan; 春节 4 days, 农历除夕 through 正月初三; 清明节 on the
    Qingming solar term; 劳动节 1–2 May; 端午节 5th of the 5th lunar month; 中秋节 15th of the 8th
    lunar month; 国庆节 1–3 Oct — 13 days (where two festivals share a date, e.g. 中秋 on 3 Oct 2028,
    the date names both). Empty before ``REGULATION_IN_FORCE_FROM`` (those years are official in
    chinesecalendar). Which weekends become working days (调休) is decided by the State Council each
    year and is not part of this rule."""
    if year < REGULATION_IN_FORCE_FROM:
        return {}
    days: dict[date, str] = {}
    for day, name in _festival_days(year):
        days[day] = f"{days[day]}、{name}" if day in days and name not in days[day] else name
    return dict(sorted(days.items()))


@cache
def compensation_days(year: int) -> dict[date, str]:
    """补假 (Art. 6 of the regulation: a statutory day off that falls on a Saturday or Sunday is given
    back on a working day), placed where the State Council notices place it: on the first weekdays
    after the festival that are not statutory days themselves. A date two festivals share is given
    back the same way, as the notices did (2020: 中秋 and 国庆 on 1 October). Named "<festival>补假"."""
    if year < REGULATION_IN_FORCE_FROM:
        return {}
    holidays = statutory_holidays(year)
    owed: dict[str, int] = {}
    last_day: dict[str, date] = {}
    seen: set[date] = set()
    for day, name in _festival_days(year):
        last_day[name] = max(last_day.get(name, day), day)
        if day.weekday() >= 5 or day in seen:
            owed[name] = owed.get(name, 0) + 1
        seen.add(day)
    given: dict[date, str] = {}
    for name, count in owed.items():
        day = last_day[name]
        while count:
            day += _ONE_DAY
            if day.weekday() < 5 and day not in holidays and day not in given:
                given[day] = f"{name}补假"
                count -= 1
    return dict(sorted(given.items()))


@cache
def provisional_days_off(year: int) -> dict[date, str]:
    """The days off the regulation alone fixes for ``year``: Art. 2's statutory days and Art. 6's 补假."""
    return dict(sorted({**statutory_holidays(year), **compensation_days(year)}.items()))


def library_holiday_name(day: date) -> str | None:
    """The holiday chinesecalendar puts ``day`` in (regulation names), or None; only for known years."""
    on_holiday, name = chinese_calendar.get_holiday_detail(day)
    if not on_holiday or name is None:
        return None
    return _LIBRARY_NAMES.get(str(name), str(name))


class WorkdayCalendar:
    """Official working days: chinesecalendar's holidays and 调休 make-up workdays, plus an override
    table admins load (date -> is_workday) for years the library does not know yet. A date in a year
    neither knows falls back to Monday–Friday less the regulation's statutory holidays and is
    reported as provisional, never an error."""

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
        """Whether ``day`` is a working day: the override, then the library, then (a year an
        administrator declared complete) Mon–Fri, else the provisional rule: Mon–Fri less the
        regulation's statutory holidays and their 补假."""
        day = _as_date(day)
        if day in self._overrides:
            return self._overrides[day]
        if library_knows_year(day.year):
            return _library_workday(day)
        if day.year in self._known_override_years:
            return day.weekday() < 5  # the loaded notice lists every day off of its year
        return day.weekday() < 5 and day not in provisional_days_off(day.year)

    def describe(self, day: date) -> dict[str, object]:
        """One day as the public calendar shows it: working or not, official or provisional, the
        source of that answer and the holiday's name where one is known."""
        day = _as_date(day)
        workday = self.is_workday(day)
        if library_knows_year(day.year) and day not in self._overrides:
            source, name = LIBRARY_SOURCE, library_holiday_name(day)
        else:
            # The regulation names a day off where an override rules it (2027-01-01 is 元旦); in a
            # declared year the loaded table alone says which days are off.
            declared_only = day.year in self._known_override_years and day not in self._overrides
            name = None if workday or declared_only else provisional_days_off(day.year).get(day)
            if day in self._overrides or day.year in self._known_override_years:
                source = OVERRIDE_SOURCE
            elif name is not None:
                source = f"{REGULATION} (provisional: the year's 调休 arrangement is not published yet)"
            else:
                source = "Monday–Friday (provisional: the year's official calendar is not published yet)"
        return {"date": day.isoformat(), "workday": workday, "official": self.is_known(day), "source": source,
                "name": name}  # fmt: skip

    def year_view(self, year: int) -> dict[str, object]:
        """A year's days off (every non-working day other than a plain Saturday or Sunday) and its
        make-up working days (a Saturday or Sunday that is worked), each with its source."""
        first, days_off, workdays, working_days = date(year, 1, 1), [], [], 0
        day = first
        while day.year == year:
            info = self.describe(day)
            weekend = day.weekday() >= 5
            if info["workday"]:
                working_days += 1
                if weekend:
                    workdays.append(info)
            elif not weekend or info["name"]:
                days_off.append(info)
            day += _ONE_DAY
        return {
            "year": year,
            "official": library_knows_year(year) or year in self._known_override_years,
            "working_days": working_days,
            "days_off": days_off,
            "workdays": workdays,
        }

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
