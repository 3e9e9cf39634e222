"""Response models of the public working-day calendar (GET /calendar/{year}, GET /calendar/due)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

FIRST_YEAR, LAST_YEAR = 2004, 2100  # chinesecalendar's first year; the lunar rule is checked to 2100


class CalendarDay(BaseModel):
    """One day that is not a plain Mon–Fri working day or a plain weekend."""

    date: date
    workday: bool
    official: bool = Field(description="from the State Council notice (library or loaded); false = provisional")
    source: str = Field(description="what the answer comes from")
    name: str | None = Field(description="the holiday, e.g. 春节, 国庆节补假; null when none is known")


class CalendarYearOut(BaseModel):
    year: int
    official: bool = Field(description="the whole year comes from an official notice")
    working_days: int
    days_off: list[CalendarDay] = Field(description="non-working days other than a plain Saturday or Sunday")
    workdays: list[CalendarDay] = Field(description="Saturdays and Sundays that are working days (调休)")


class DueDate(BaseModel):
    limit_days: int
    due: date
    provisional: bool = Field(description="a counted day lies in a year without an official calendar yet")


class GoverningDue(DueDate):
    rule: str
    explanation: list[str]


class DuePreview(BaseModel):
    """When a decision would be due if the matter's application were accepted on ``from``."""

    matter_code: str
    matter_version: int
    matter_name: str
    kind: str = Field(description="instant (decided on acceptance) or promised")
    accepted_on: date
    statutory: DueDate | None = Field(description="the guide's statutory limit (Art. 42's default where it gives none)")
    statutory_source: str
    promised: DueDate | None
    governing: GoverningDue
