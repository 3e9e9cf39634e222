"""Events exchange publishes (stream EXCHANGE, subjects exchange.>).

Exchange (部门系统对接) is where department systems meet the platform (ADR 0019). A department's
signed push (contracts/departments.py) that passed its schema is stored, answered with a signed
receipt, and forwarded on the bus as one of the ``Department*`` events below, in the transaction
that stored it; caseflow (progress, decisions) and licence (certificates) apply it and answer with
a ``*.push.settled`` event (``PushSettledFields``), which exchange records on the push and delivers
to the department as a ``push.settled`` webhook. ``partner.changed`` tells every gateway replica
to reload the partners' keys at once (a revoked partner is refused within one event's latency).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.departments import CaseDecisionData, CaseProgressData, LicenceIssuedData
from kit.events import EventData


class _PushFields(BaseModel):
    """Fields every forwarded push carries (a mixin, so it is no event type of its own)."""

    model_config = ConfigDict(extra="forbid")

    push_id: str = Field(max_length=40, description="exchange's id of the push (its receipt id)")
    department: str = Field(max_length=40, description="the pushing department's code (verified by signature)")
    partner: str = Field(max_length=64, description="the partner id whose key signed the push")
    event_id: str = Field(max_length=64, description="the department's own id of the event")
    occurred_at: datetime = Field(description="when it happened in the department's system")
    received_at: datetime


class DepartmentCaseProgress(_PushFields, EventData):
    """Progress of a case the department handles in its own system: caseflow mirrors it."""

    event_type: ClassVar[str] = "yiwang.exchange.department.case_progress.v1"
    nats_subject: ClassVar[str] = "exchange.department.case_progress"
    data: CaseProgressData


class DepartmentCaseDecision(_PushFields, EventData):
    """A step on a platform case the department works in its own system: caseflow applies it as
    that department's officer would, under the same rules."""

    event_type: ClassVar[str] = "yiwang.exchange.department.case_decision.v1"
    nats_subject: ClassVar[str] = "exchange.department.case_decision"
    data: CaseDecisionData


class DepartmentLicenceIssued(_PushFields, EventData):
    """A certificate the department issued: licence stores it as that department's licence."""

    event_type: ClassVar[str] = "yiwang.exchange.department.licence_issued.v1"
    nats_subject: ClassVar[str] = "exchange.department.licence_issued"
    data: LicenceIssuedData


class PartnerChanged(EventData):
    """A partner or one of its keys was created, rotated or revoked: reload the keys now."""

    event_type: ClassVar[str] = "yiwang.exchange.partner.changed.v1"
    nats_subject: ClassVar[str] = "exchange.partner.changed"
    partner: str = Field(max_length=64)
    department: str = Field(max_length=40)
    change: Literal["created", "key_added", "key_revoked", "revoked", "reinstated"]
    at: datetime


class PushProblem(BaseModel):
    """Why a push was refused, as an RFC 9457 problem names it."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=200)
    title: str = Field(max_length=200)
    detail: str | None = Field(default=None, max_length=500)
    field: str | None = Field(default=None, max_length=200, description="e.g. data.case_no")
    rule: str | None = Field(default=None, max_length=64, description="e.g. not_found, transition, not_own_case")


class PushSettledFields(BaseModel):
    """What the service that applied a forwarded push says of it (caseflow's and licence's
    ``*.push.settled`` events share these fields; a mixin, no event type of its own)."""

    model_config = ConfigDict(extra="forbid")

    push_id: str = Field(max_length=40)
    department: str = Field(max_length=40)
    event_id: str = Field(max_length=64)
    push_type: Literal["case.progress", "case.decision", "licence.issued"]
    outcome: Literal["applied", "refused"]
    problem: PushProblem | None = Field(default=None, description="set when refused")
    case_no: str | None = Field(default=None, max_length=40, description="the platform case it applied to or created")
    licence_id: str | None = Field(
        default=None, max_length=128, description="the GB/T 36904 identifier of the licence it stored"
    )
    at: datetime
