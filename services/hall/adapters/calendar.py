"""The working-day calendar: the platform's (caseflow's public ``GET /calendar/{year}``), or the
chinesecalendar package in a sandbox. A hall opens on working days — holidays closed, 调休
Saturdays open — so Mon–Fri is never assumed here."""

from __future__ import annotations

import time
from datetime import date
from typing import Protocol

import chinese_calendar
import httpx


class CalendarUnavailable(Exception):
    """The calendar cannot say (caseflow away, or a year nobody published yet)."""


class WorkingDays(Protocol):
    async def is_workday(self, day: date) -> bool: ...


class LocalCalendar:
    """chinesecalendar (2004–2026 in 1.11): a later year is unknown, not guessed."""

    async def is_workday(self, day: date) -> bool:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError as exc:
            raise CalendarUnavailable(f"no official calendar for {day.year}") from exc


class HttpCalendar:
    """Reads caseflow's public year ({days_off, workdays} besides plain weekends), cached per year."""

    def __init__(self, base_url: str, *, cache_seconds: float = 3600.0, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.transport = transport  # tests stand in for caseflow
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._years: dict[int, tuple[float, frozenset[date], frozenset[date]]] = {}

    async def _year(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        cached = self._years.get(year)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1], cached[2]
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
                response = await client.get(f"{self.base_url}/calendar/{year}")
            response.raise_for_status()
            body = response.json()
            off = frozenset(date.fromisoformat(d["date"]) for d in body["days_off"])
            on = frozenset(date.fromisoformat(d["date"]) for d in body["workdays"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            if cached is not None:  # stale beats nothing while caseflow is away
                return cached[1], cached[2]
            raise CalendarUnavailable(f"platform calendar for {year}: {type(exc).__name__}") from exc
        self._years[year] = (time.monotonic(), off, on)
        return off, on

    async def is_workday(self, day: date) -> bool:
        off, on = await self._year(day.year)
        if day in on:
            return True
        if day in off:
            return False
        return day.weekday() < 5  # the year's exceptions are listed above; the rest is the plain week
