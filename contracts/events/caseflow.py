"""Events caseflow publishes (stream CASEFLOW, subjects caseflow.>).

Every case transition is one event. Payloads stay minimal: the case number, the matter code and
the version the case is pinned to, the department, the new state and when. The applicant's subject
id travels only where a consumer needs it (licence issues to the holder on approval; express ships
to the recipient); no names, phones or form data otherwise.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.events.exchange import PushSettledFields
from kit.events import EventData


class _CaseFields(BaseModel):
    """Fields every case event carries (a mixin, so it is no event type of its own)."""

    model_config = ConfigDict(extra="forbid")

    case_no: str = Field(description="办件编号")
    matter_code: str
    matter_version: int = Field(ge=1)
    department: str
    state: str = Field(description="the case's state after the transition")
    at: datetime
    actor: str = Field(description="officer login, 'applicant' or 'system'")


class CaseSubmitted(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.submitted.v1"
    nats_subject: ClassVar[str] = "caseflow.case.submitted"
    applicant: str = Field(description="subject id of the applicant")
    delivery: Literal["window", "ems"]
    received_on: date
    bundle_code: str | None = Field(default=None, description="the bundle (套餐) applied for; matter_code is its lead")
    channel: Literal["online", "counter", "kiosk", "department"] = Field(
        default="online", description="where it was applied for (the token's chn; department: mirrored from its system)"
    )
    helped_by: str | None = Field(default=None, description="帮办: the counter officer who applied for the applicant")


class CaseAccepted(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.accepted.v1"
    nats_subject: ClassVar[str] = "caseflow.case.accepted"
    accepted_on: date
    deemed: bool = Field(description="accepted by Art. 32 because no notice came within 5 working days")
    applicant: str | None = Field(
        default=None, description="subject id of the applicant (the department's system needs it)"
    )
    branches: list[str] = Field(default_factory=list, description="the parallel departments the case fanned out to")


class CaseBranchAssigned(_CaseFields, EventData):
    """并联审批: on acceptance, one per parallel department (``department`` is the case's own)."""

    event_type: ClassVar[str] = "yiwang.caseflow.case.branch_assigned.v1"
    nats_subject: ClassVar[str] = "caseflow.case.branch_assigned"
    branch_department: str
    applicant: str
    due_on: date | None = Field(description="the branch's own deadline")


class CaseRejected(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.rejected.v1"
    nats_subject: ClassVar[str] = "caseflow.case.rejected"
    reason: str


class CorrectionItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    material: str
    problem: str


class CaseCorrectionRequested(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.correction_requested.v1"
    nats_subject: ClassVar[str] = "caseflow.case.correction_requested"
    items: list[CorrectionItem]


class CaseResubmitted(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.resubmitted.v1"
    nats_subject: ClassVar[str] = "caseflow.case.resubmitted"


class CaseReviewed(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.reviewed.v1"
    nats_subject: ClassVar[str] = "caseflow.case.reviewed"


class CaseApproved(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.approved.v1"
    nats_subject: ClassVar[str] = "caseflow.case.approved"
    applicant: str = Field(description="holder of the licence to issue")
    result_licence_type: str | None
    applicant_kind: Literal["person", "enterprise"] | None = Field(default=None, description="the holder's kind")
    applicant_name: str | None = Field(
        default=None, description="the holder's verified name (only when a licence is the result: it is printed on it)"
    )
    form: dict[str, Any] | None = Field(
        default=None, description="the checked form values (only when a licence is the result: its data come from them)"
    )
    approved_on: date
    reason: str | None = Field(default=None, description="the decider's reasoning, as on the case's timeline")
    automatic: bool = Field(default=False, description="秒批: decided by the platform under an instant rule")
    rule: str | None = Field(default=None, description="the instant rule that decided (automatic only)")


class CaseDenied(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.denied.v1"
    nats_subject: ClassVar[str] = "caseflow.case.denied"
    reason: str


class CaseWithdrawn(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.withdrawn.v1"
    nats_subject: ClassVar[str] = "caseflow.case.withdrawn"


class CaseSuspended(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.suspended.v1"
    nats_subject: ClassVar[str] = "caseflow.case.suspended"
    reason: Literal["hearing", "tender", "auction", "testing", "inspection", "quarantine", "expert_review"]
    expected_days: int = Field(ge=1, description="working days the applicant was told")


class CaseResumed(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.resumed.v1"
    nats_subject: ClassVar[str] = "caseflow.case.resumed"


class CaseExtended(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.extended.v1"
    nats_subject: ClassVar[str] = "caseflow.case.extended"
    days: int = Field(ge=1)
    reason: str
    new_due: date | None


class CaseDeliveryRequested(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.delivery_requested.v1"
    nats_subject: ClassVar[str] = "caseflow.case.delivery_requested"
    applicant: str
    recipient: str = Field(description="name on the parcel")
    phone: str
    address: str
    division_code: str | None = Field(default=None, pattern=r"^\d{6}$", description="GB/T 2260 code of the address")
    due: date | None = Field(description="Art. 44: delivered within 10 working days of approval")


class CasePickupRequested(_CaseFields, EventData):
    """The applicant asks the carrier to collect the originals the case needs (上门收件)."""

    event_type: ClassVar[str] = "yiwang.caseflow.case.pickup_requested.v1"
    nats_subject: ClassVar[str] = "caseflow.case.pickup_requested"
    applicant: str
    pickup_id: str = Field(max_length=64, description="caseflow's id of this request (one shipment per id)")
    sender: str = Field(description="name of the person handing the originals over")
    phone: str
    division_code: str = Field(pattern=r"^\d{6}$", description="GB/T 2260 code of the pickup address")
    address: str
    items: list[str] = Field(min_length=1, description="the originals to collect, by material name")


class FeeItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: str = Field(description="the guide's fee item")
    amount_fen: int = Field(ge=0, le=10**11, description="amount in fen (0.01 yuan)")
    basis: str | None = None


class CaseFeesDue(_CaseFields, EventData):
    """网上缴费: what the case's applicant owes, from the pinned guide (or an officer's assessment where
    the matter allows it). A later one for the same case replaces an unpaid order's items; payment
    opens or updates the order, never takes an amount from a client."""

    event_type: ClassVar[str] = "yiwang.caseflow.case.fees_due.v1"
    nats_subject: ClassVar[str] = "caseflow.case.fees_due"
    applicant: str
    items: list[FeeItem] = Field(min_length=1)
    total_fen: int = Field(ge=0)
    due_before: Literal["acceptance", "decision", "delivery"]
    refund_on: list[Literal["withdrawn", "rejected", "denied"]]
    revision: int = Field(ge=1, description="1 at submission, +1 per assessment: the highest wins")


class CaseCompleted(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.completed.v1"
    nats_subject: ClassVar[str] = "caseflow.case.completed"


class SupervisionWarning(EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.supervision.warning.v1"
    nats_subject: ClassVar[str] = "caseflow.supervision.warning"
    case_no: str
    department: str
    step: str = Field(description="pre_review | decision | delivery, or the anomaly's name")
    level: Literal["yellow", "red", "anomaly"]
    due: date | None
    raised_at: datetime


class CaseEvaluated(_CaseFields, EventData):
    event_type: ClassVar[str] = "yiwang.caseflow.case.evaluated.v1"
    nats_subject: ClassVar[str] = "caseflow.case.evaluated"
    score: int = Field(ge=1, le=5, description="好差评: 1 非常不满意 … 5 非常满意")
    rectification_due: date | None = Field(description="set for scores 1 and 2: rectified within 15 working days")


class CasePushSettled(PushSettledFields, EventData):
    """What caseflow made of a department's forwarded push (progress mirrored, decision applied,
    or refused with the rule): exchange tells the department (ADR 0019)."""

    event_type: ClassVar[str] = "yiwang.caseflow.push.settled.v1"
    nats_subject: ClassVar[str] = "caseflow.push.settled"
