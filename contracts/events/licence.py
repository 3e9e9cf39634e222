"""Events licence publishes (stream LICENCE, subjects licence.>).

A licence's life: issued (from an approved case, by an issuing department's officer, by a
bulk import, or pushed by the department's own system through exchange), suspended and reinstated, revoked, expired; and a reminder while it is about to
expire. Payloads carry the GB/T 36904 identifier, the type, the holder's subject id (resident ID
number or unified social credit code: caseflow and the holder's notifications need it) and, on
issue, the case it came from. No licence data (the fields printed on it) travels on the bus; a
consumer that needs them reads the licence with the holder's consent.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.events.exchange import PushSettledFields
from kit.events import EventData


class _LicenceFields(BaseModel):
    """Fields every licence event carries (a mixin, so it is no event type of its own)."""

    model_config = ConfigDict(extra="forbid")

    identifier: str = Field(description="GB/T 36904 电子证照标识, 1.2.156.3005.2.…", max_length=128)
    licence_type: str = Field(description="licence type code, as the catalog's materials name it (business_licence)")
    number: str = Field(description="证照编号: the number printed on the licence", max_length=64)
    holder: str = Field(min_length=18, max_length=18, description="holder's subject id (ID number or USCC)")
    holder_kind: Literal["person", "enterprise"]
    issuer: str = Field(description="issuing department code")
    version: int = Field(ge=1, description="licence version: a change re-issues under version + 1")
    at: datetime


class LicenceIssued(_LicenceFields, EventData):
    event_type: ClassVar[str] = "yiwang.licence.licence.issued.v1"
    nats_subject: ClassVar[str] = "licence.licence.issued"
    issued_on: date
    valid_until: date | None = Field(description="None: valid without a time limit (长期)")
    case_no: str | None = Field(default=None, description="the approved case the licence was issued for")
    source: Literal["case", "officer", "import", "department"]


class _OfficerStep(_LicenceFields):
    """A step an issuing department's officer takes, with the reason the holder is told."""

    reason: str = Field(max_length=500)
    actor: str = Field(description="officer login")


class LicenceSuspended(_OfficerStep, EventData):
    event_type: ClassVar[str] = "yiwang.licence.licence.suspended.v1"
    nats_subject: ClassVar[str] = "licence.licence.suspended"


class LicenceReinstated(_OfficerStep, EventData):
    event_type: ClassVar[str] = "yiwang.licence.licence.reinstated.v1"
    nats_subject: ClassVar[str] = "licence.licence.reinstated"


class LicenceRevoked(_OfficerStep, EventData):
    event_type: ClassVar[str] = "yiwang.licence.licence.revoked.v1"
    nats_subject: ClassVar[str] = "licence.licence.revoked"


class LicenceExpired(_LicenceFields, EventData):
    event_type: ClassVar[str] = "yiwang.licence.licence.expired.v1"
    nats_subject: ClassVar[str] = "licence.licence.expired"
    valid_until: date


class LicenceExpiring(_LicenceFields, EventData):
    event_type: ClassVar[str] = "yiwang.licence.licence.expiring.v1"
    nats_subject: ClassVar[str] = "licence.licence.expiring"
    valid_until: date
    days_left: int = Field(ge=0, description="calendar days until valid_until (Art. 50: renew 30 days before)")


class LicencePushSettled(PushSettledFields, EventData):
    """What licence made of a department's certificate push (stored, or refused with the rule)."""

    event_type: ClassVar[str] = "yiwang.licence.push.settled.v1"
    nats_subject: ClassVar[str] = "licence.push.settled"
