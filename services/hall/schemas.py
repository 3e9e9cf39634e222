"""Request and response models of hall's HTTP API (the OpenAPI documents every answer)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from kit.errors import RuleViolation
from kit.subject_ids import validate_id_number
from kit.text import Line, Name
from services.hall.domain.slots import check_opening_hours

HallCode = Annotated[str, Field(pattern=r"^[A-Z0-9-]{1,40}$", description="e.g. HALL-371402")]
WindowCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,8}$", description="e.g. A1")]
MatterCode = Annotated[str, Field(pattern=r"^[A-Z0-9-]{1,40}$", description="a catalog matter code")]
Department = Annotated[str, Field(pattern=r"^[A-Z0-9-]{1,40}$")]
CaseNo = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,32}$")]
Mobile = Annotated[str, Field(pattern=r"^1[3-9][0-9]{9}$", description="mainland mobile, 11 digits")]
BookingStatus = Literal["booked", "checked_in", "cancelled", "no_show"]
TicketStatus = Literal["waiting", "called", "served", "missed"]

_STRICT = ConfigDict(extra="forbid")


class HallIn(BaseModel):
    model_config = _STRICT

    name: Name
    division_code: str = Field(pattern=r"^[0-9]{6}$", description="GB/T 2260 county code")
    address: Annotated[Line, Field(min_length=1, max_length=300)]
    queue_prefix: str = Field(default="A", pattern=r"^[A-Z]{1,2}$", description="queue numbers: A001, A002, …")
    slot_minutes: int = Field(ge=5, le=240)
    slot_capacity: int = Field(ge=1, le=1000, description="bookings per slot")
    opening_hours: list[Annotated[str, Field(max_length=11)]] = Field(
        min_length=1, max_length=6, description='China time, e.g. ["09:00-12:00", "13:30-17:00"]'
    )
    active: bool = True

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, value: list[str], info: ValidationInfo) -> list[str]:
        check_opening_hours(value, info.data.get("slot_minutes") or 1)
        return value


class WindowIn(BaseModel):
    model_config = _STRICT

    name: Name
    comprehensive: bool = Field(default=False, description="一窗受理: serves every matter")
    department: Department | None = None
    active: bool = True
    matters: list[MatterCode] = Field(default_factory=list, max_length=500, validate_default=True)

    @field_validator("matters")
    @classmethod
    def _serves_something(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not info.data.get("comprehensive") and not value:
            raise RuleViolation("serves", "a window that is not comprehensive lists the matters it serves")
        return sorted(set(value))


class WindowOut(BaseModel):
    code: str
    name: str
    comprehensive: bool
    matters: list[str]
    department: str | None
    active: bool


class HallOut(BaseModel):
    code: str
    name: str
    division_code: str
    address: str
    queue_prefix: str
    opening_hours: list[str]
    slot_minutes: int
    slot_capacity: int
    active: bool
    windows: list[WindowOut]


class SlotOut(BaseModel):
    starts_at: datetime
    ends_at: datetime
    capacity: int
    free: int


class DaySlots(BaseModel):
    hall_code: str
    date: date
    workday: bool
    slots: list[SlotOut]


class BookingIn(BaseModel):
    model_config = _STRICT

    hall_code: HallCode
    matter_code: MatterCode
    starts_at: AwareDatetime = Field(description="a slot's start, with its zone")
    mobile: Mobile = Field(description="where the SMS with the time and the check-in code goes")
    visitor_id_number: str | None = Field(default=None, max_length=18,
                                          description="who comes, when not the one booking (GB 11643)")  # fmt: skip
    case_no: CaseNo | None = Field(default=None, description="a case whose originals are to be seen")

    @field_validator("visitor_id_number")
    @classmethod
    def _id_number(cls, value: str | None) -> str | None:
        return None if value is None else validate_id_number(value)


class MoveIn(BaseModel):
    model_config = _STRICT

    starts_at: AwareDatetime


class BookingOut(BaseModel):
    id: str
    hall_code: str
    hall_name: str
    matter_code: str
    starts_at: datetime
    ends_at: datetime
    status: BookingStatus
    visitor: str = Field(description="the visitor's ID number, masked")
    mobile: str = Field(description="masked")
    case_no: str | None
    ticket: str | None = Field(description="queue number once checked in")
    created_at: datetime
    checked_in_at: datetime | None


class BookingPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[BookingOut]


class DayBooking(BaseModel):
    id: str
    starts_at: datetime
    matter_code: str
    status: BookingStatus
    visitor: str = Field(description="masked ID number")
    case_no: str | None
    ticket: str | None


class WindowDay(BaseModel):
    window: str
    name: str
    bookings: list[DayBooking]


class DayView(BaseModel):
    hall_code: str
    date: date
    windows: list[WindowDay] = Field(description="each booking under every window that serves its matter")


class CheckInIn(BaseModel):
    model_config = _STRICT

    code: str = Field(pattern=r"^[0-9]{6}$", description="the six digits from the SMS")


class WalkInIn(BaseModel):
    model_config = _STRICT

    matter_code: MatterCode


class CallIn(BaseModel):
    model_config = _STRICT

    window: WindowCode


class ServedIn(BaseModel):
    model_config = _STRICT

    case_no: CaseNo | None = None


class TicketOut(BaseModel):
    id: str
    hall_code: str
    number: str = Field(description="as on the board, e.g. A017")
    kind: Literal["booking", "walk_in"]
    matter_code: str
    status: TicketStatus
    window: str | None
    slot_starts_at: datetime | None
    issued_at: datetime
    called_at: datetime | None
    case_no: str | None
    waiting_before: int | None = Field(default=None, description="tickets waiting ahead in the hall (at issue)")


class CalledNumber(BaseModel):
    window: str
    number: str
    called_at: datetime


class QueueBoard(BaseModel):
    hall_code: str
    date: date
    waiting: int
    called: list[CalledNumber]


class SandboxSmsOut(BaseModel):
    mobile: str
    text: str
    sent_at: str
