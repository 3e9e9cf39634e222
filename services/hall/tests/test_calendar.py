"""The calendar adapters: the platform's (caseflow's GET /calendar/{year} shape, cached, stale while
caseflow is away) and the local chinesecalendar one — neither assumes Mon–Fri beyond what they say."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from services.hall.adapters.calendar import CalendarUnavailable, HttpCalendar, LocalCalendar

# caseflow's CalendarYearOut for 2027 as an administrator might have loaded it (provisional dates)
YEAR_2027 = {
    "year": 2027, "official": True, "working_days": 250,
    "days_off": [{"date": "2027-01-01", "workday": False, "official": True, "source": "notice", "name": "元旦"},
                 {"date": "2027-02-08", "workday": False, "official": True, "source": "notice", "name": "春节"}],
    "workdays": [{"date": "2027-02-06", "workday": True, "official": True, "source": "notice", "name": "春节补班"}],
}  # fmt: skip


async def test_the_platform_calendar_is_read_once_and_kept():
    calls: list[str] = []
    up = True

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if not up:
            return httpx.Response(503)
        if request.url.path == "/calendar/2027":
            return httpx.Response(200, json=YEAR_2027)
        return httpx.Response(404, json={"title": "no calendar"})

    calendar = HttpCalendar("http://caseflow/", cache_seconds=0, transport=httpx.MockTransport(answer))
    assert await calendar.is_workday(date(2027, 1, 1)) is False  # a Friday, 元旦
    assert await calendar.is_workday(date(2027, 2, 6)) is True  # a Saturday, 调休
    assert await calendar.is_workday(date(2027, 2, 8)) is False  # a Monday in 春节
    assert await calendar.is_workday(date(2027, 2, 9)) is True
    assert await calendar.is_workday(date(2027, 2, 13)) is False  # a plain Saturday
    assert calls and set(calls) == {"/calendar/2027"}
    up = False  # caseflow away: the year read before still answers
    assert await calendar.is_workday(date(2027, 2, 6)) is True
    with pytest.raises(CalendarUnavailable):
        await calendar.is_workday(date(2028, 3, 1))
    cached = HttpCalendar("http://caseflow", cache_seconds=3600, transport=httpx.MockTransport(answer))
    up, calls[:] = True, []
    for _ in range(5):
        await cached.is_workday(date(2027, 3, 1))
    assert calls == ["/calendar/2027"]


async def test_the_local_calendar_knows_holidays_and_make_up_days_and_no_later_year():
    local = LocalCalendar()
    assert await local.is_workday(date(2026, 10, 1)) is False
    assert await local.is_workday(date(2026, 9, 20)) is True  # a Sunday worked for National Day
    with pytest.raises(CalendarUnavailable):
        await local.is_workday(date(2027, 1, 4))
