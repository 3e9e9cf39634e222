"""Request and response models of express's HTTP API (the OpenAPI documents every answer)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from kit.errors import RuleViolation
from services.express.domain import s10

Kind = Literal["deliver", "collect"]
Status = Literal[
    "created", "picked_up", "in_transit", "out_for_delivery", "signed_for", "failed_attempt", "returned", "refused"
]


class EmsCallback(BaseModel):
    """One tracking event as EMS (or the sandbox) posts it, signed, through the gateway."""

    model_config = ConfigDict(extra="ignore")  # a carrier adding fields must not break tracking

    waybill: str = Field(max_length=32, description="UPU S10 number, e.g. EA123456785CN")
    code: str = Field(min_length=1, max_length=32, description="EMS status code, e.g. 40 妥投")
    text: str = Field(default="", max_length=200)
    at: AwareDatetime = Field(description="when it happened, ISO 8601 with its zone")
    event_id: str = Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$", description="unique per event")
    signed_by: str | None = Field(default=None, max_length=50)

    @field_validator("waybill")
    @classmethod
    def _s10(cls, value: str) -> str:
        broken = s10.why_invalid(value)
        if broken is not None:
            raise RuleViolation("s10", f"not a valid UPU S10 number ({broken})")
        return value


class CallbackOut(BaseModel):
    shipment_id: str
    status: Status
    duplicate: bool = Field(description="the event_id was seen before: nothing changed")
    applied: bool = Field(description="the event moved the status (a late or backwards one is only recorded)")


class PartyOut(BaseModel):
    name: str | None
    phone: str | None
    division_code: str | None
    address: str | None


class TimelineEntry(BaseModel):
    event_id: str
    at: datetime
    status: Status
    carrier_code: str
    carrier_text: str
    signed_by: str | None
    applied: bool


class ShipmentOut(BaseModel):
    id: str
    kind: Kind
    case_no: str
    department: str
    pickup_id: str | None
    carrier: str
    waybill: str | None
    status: Status
    status_at: datetime
    failure_reason: str | None
    due: date | None = Field(description="deliver: the Art. 44 deadline caseflow gave")
    expected_delivery: datetime | None
    sender: PartyOut
    recipient: PartyOut
    items: list[str]
    masked: bool = Field(description="names, phones and addresses masked (a supervisor's view)")
    created_at: datetime
    updated_at: datetime
    timeline: list[TimelineEntry] | None = None


class ShipmentPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[ShipmentOut]
