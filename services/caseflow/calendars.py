"""The working-day calendar as this service uses it: chinesecalendar plus the admins' override table."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.driver import Driver, Query, Transaction
from kit.errors import Problem, field_problem
from services.caseflow.domain.calendar import WorkdayCalendar
from services.caseflow.domain.case_clock import matter_limits
from services.caseflow.domain.clock import compute_deadline
from services.caseflow.matters import get_matter
from services.caseflow.models import CalendarOverride, CalendarYear
from services.caseflow.reference import cached, cached_on, forget_on_commit


async def load(session: AsyncSession) -> WorkdayCalendar:
    """The calendar with every override loaded (a few dozen rows a year), kept in memory for a few
    seconds: a year loaded through another replica is seen within the TTL, and the supervision
    timer recomputes deadlines that were provisional when the calendar changed."""

    async def read() -> WorkdayCalendar:
        overrides = {row.day: row.workday for row in (await session.execute(select(CalendarOverride))).scalars()}
        years = [row for row in (await session.execute(select(CalendarYear.year))).scalars()]
        return WorkdayCalendar(overrides, known_override_years=years)

    calendar = await cached(session, "calendar", "calendar", read)
    assert calendar is not None  # read() always makes one
    return calendar


_OVERRIDES = Query(select(CalendarOverride.day, CalendarOverride.workday))
_YEARS = Query(select(CalendarYear.year))


async def load_on(db: Driver, tx: Transaction | None = None) -> WorkdayCalendar:
    """``load`` for a hot path on the driver (the same cache; read in ``tx`` when the caller holds one)."""

    async def read() -> WorkdayCalendar:
        on = tx or db
        overrides = {row["day"]: row["workday"] for row in await on.fetch(_OVERRIDES)}
        years = [row["year"] for row in await on.fetch(_YEARS)]
        return WorkdayCalendar(overrides, known_override_years=years)

    calendar = await cached_on(db, "calendar", "calendar", read)
    assert calendar is not None  # read() always makes one
    return calendar


def _days(values: list[str], year: int, field: str) -> list[date]:
    days = []
    for index, value in enumerate(values):
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise field_problem(f"{field}.{index}", "date", "not an ISO date") from exc
        if day.year != year:
            raise field_problem(f"{field}.{index}", "same_year", f"{value} is not in {year}")
        days.append(day)
    return days


async def replace_year(
    session: AsyncSession, *, year: int, holidays: list[str], workdays: list[str], loaded_by: str
) -> dict[str, int]:
    """Store a year's official calendar: its holidays and its 调休 working days (weekends otherwise)."""
    if not 2000 <= year <= 2100:
        raise field_problem("year", "range", "2000..2100")
    holiday_days = _days(holidays, year, "holidays")
    workday_days = _days(workdays, year, "workdays")
    both = set(holiday_days) & set(workday_days)
    if both:
        raise Problem(422, "validation", "Request is not valid", f"both holiday and workday: {sorted(both)[0]}",
                      errors=[{"field": "workdays", "rule": "disjoint", "message": json.dumps(sorted(map(str, both)))}])  # fmt: skip  # noqa: E501
    await session.execute(delete(CalendarOverride).where(CalendarOverride.year == year))
    for day in holiday_days:
        session.add(CalendarOverride(day=day, workday=False, year=year))
    for day in workday_days:
        session.add(CalendarOverride(day=day, workday=True, year=year))
    existing = await session.get(CalendarYear, year)
    if existing is None:
        session.add(CalendarYear(year=year, loaded_at=datetime.now(UTC), loaded_by=loaded_by))
    else:
        existing.loaded_at, existing.loaded_by = datetime.now(UTC), loaded_by
    await session.flush()
    forget_on_commit(session, "calendar")
    return {"year": year, "holidays": len(holiday_days), "workdays": len(workday_days)}


async def due_preview(session: AsyncSession, *, matter_code: str, version: int | None, accepted_on: date) -> dict:
    """The decision due dates of a matter's case accepted on ``accepted_on``: by its statutory limit,
    by its promised limit, and the one that governs with its rule (public: a front-end shows it)."""
    matter = await get_matter(session, matter_code, version)
    if matter is None:
        raise field_problem("matter_code", "published", "no published matter with this code and version")
    calendar = await load(session)
    definition = matter.definition
    limits = matter_limits(definition)
    instant = definition.get("kind") == "instant"

    def due(days: int | None) -> dict | None:
        if days is None:
            return None
        day, provisional = calendar.add_workdays(accepted_on, days)
        return {"limit_days": days, "due": day, "provisional": provisional}

    if instant:
        governing = compute_deadline(
            calendar, start=accepted_on, limit_days=0, rule="instant matter: decided on acceptance"
        )
    else:
        governing = compute_deadline(calendar, start=accepted_on, limit_days=limits.governing_days, rule=limits.rule)
    return {
        "matter_code": matter.code,
        "matter_version": matter.version,
        "matter_name": matter.name,
        "kind": definition.get("kind", "promised"),
        "accepted_on": accepted_on,
        "statutory": due(limits.statutory_days),
        "statutory_source": limits.statutory_source,
        "promised": due(limits.promised_days),
        "governing": {
            "limit_days": governing.limit_days,
            "due": governing.due,
            "provisional": governing.provisional,
            "rule": governing.rule,
            "explanation": governing.explanation,
        },  # fmt: skip
    }
