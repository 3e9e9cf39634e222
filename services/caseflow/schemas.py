"""Request bodies and responses of caseflow's API (the OpenAPI documents every answer).

Every free-text field is a kit.text type (no lone surrogates, control characters or bidi
overrides; ``Line`` also no line breaks); every number and list is bounded. Form values are
checked against the pinned matter's form by domain/form.py (the shape here: at most 100 fields)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kit.errors import RuleViolation
from kit.pagination import Page
from kit.text import Line, Name, Reason, Text
from services.caseflow.domain.form import valid_division_code

INT32 = 2**31 - 1
Code = Annotated[Line, Field(min_length=1, max_length=64)]
MaterialName = Annotated[Line, Field(min_length=1, max_length=200)]
Mobile = Annotated[str, Field(pattern=r"^1\d{10}$")]
Address = Annotated[Line, Field(max_length=300)]


def _division(value: str | None) -> str | None:
    if value is not None and not valid_division_code(value):
        raise RuleViolation("division_code", "not a GB/T 2260 division code (six digits under a province)")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MaterialIn(_Body):
    """One material: an uploaded file (``blob_id``) or one of the applicant's e-licences."""

    name: MaterialName
    blob_id: Annotated[Line, Field(max_length=36)] | None = None
    # a GB/T 36904 identifier: up to 128 characters, as licence's events carry it
    licence_id: Annotated[Line, Field(max_length=128)] | None = None
    licence_version: int | None = Field(default=None, ge=1, le=INT32)

    @model_validator(mode="after")
    def _one_source(self) -> MaterialIn:
        if (self.blob_id is None) == (self.licence_id is None):
            raise RuleViolation("one_of", "give exactly one of blob_id or licence_id")
        return self


class DeliveryIn(_Body):
    method: Literal["window", "ems"]
    recipient: Annotated[Name, Field(max_length=50)] | None = None
    phone: Mobile | None = None
    address: Address | None = None
    division_code: str | None = Field(
        default=None, max_length=6, description="GB/T 2260 code of the address (county level), passed on to express"
    )

    _division = field_validator("division_code")(_division)

    @model_validator(mode="after")
    def _ems_needs_address(self) -> DeliveryIn:
        if self.method == "ems" and not (self.recipient and self.phone and self.address):
            raise RuleViolation("ems_address", "EMS delivery needs recipient, phone and address")
        return self


class SubmitRequest(_Body):
    """A submission. The applicant's name is not part of it: it comes from the verified token."""

    matter_code: Code | None = Field(default=None, description="a matter, or …")
    bundle_code: Code | None = Field(default=None, description="… a bundle (套餐)")
    matter_version: int | None = Field(default=None, ge=1, le=INT32, description="default: the current version")
    form: dict[str, Any] = Field(default_factory=dict, max_length=100,
                                 description="the matter's form fields by name (checked against the pinned version)")  # fmt: skip
    materials: list[MaterialIn] = Field(default_factory=list, max_length=50)
    delivery: DeliveryIn
    fees_paid_yuan: str | None = Field(
        default=None, pattern=r"^\d{1,9}(\.\d{1,2})?$", description="what the applicant paid; checked on decision"
    )
    contact_phone: Mobile | None = Field(
        default=None, description="mobile for the SMS about this case; default: the EMS phone"
    )

    @model_validator(mode="after")
    def _matter_or_bundle(self) -> SubmitRequest:
        if (self.matter_code is None) == (self.bundle_code is None):
            raise RuleViolation("one_of", "give exactly one of matter_code or bundle_code")
        if self.bundle_code is not None and self.matter_version is not None:
            raise RuleViolation("bundle_version", "a bundle applies for the current version of each of its matters")
        return self


class CorrectionItemIn(_Body):
    material: MaterialName
    problem: Annotated[Text, Field(min_length=1, max_length=500)]


SuspensionReason = Literal["hearing", "tender", "auction", "testing", "inspection", "quarantine", "expert_review"]


class ActionRequest(_Body):
    action: Literal[
        "accept", "reject", "request_correction", "review", "approve", "deny", "suspend", "resume", "extend",
        "deliver", "complete", "originals_received",
    ]  # fmt: skip
    reason: Reason | None = None
    items: list[CorrectionItemIn] | None = Field(default=None, max_length=50)
    suspension: SuspensionReason | None = None
    expected_days: int | None = Field(default=None, ge=1, le=365)


class FeeItemIn(_Body):
    item: Annotated[Line, Field(min_length=1, max_length=100)] = Field(description="the guide's fee item")
    amount_fen: int = Field(ge=0, le=10**11, description="amount in fen (0.01 yuan)")
    basis: Annotated[Line, Field(max_length=200)] | None = None


class FeesAssessIn(_Body):
    """An officer's assessment of an assessed matter's fees (ADR 0026): the guide's items, in fen."""

    items: list[FeeItemIn] = Field(min_length=1, max_length=50)
    reason: Reason | None = None


class HandOutIn(_Body):
    """统一窗口出件: who receives the result at the window."""

    receiver: Literal["applicant", "other"] = Field(description="the applicant in person, or another person")
    name: Annotated[Name, Field(max_length=50)] | None = Field(default=None, description="the other person's name")
    id_number: Annotated[str, Field(max_length=20)] | None = Field(
        default=None, description="the other person's resident ID number (GB 11643), kept masked"
    )


class ResubmitRequest(_Body):
    form: dict[str, Any] = Field(default_factory=dict, max_length=100, description="fields to change")
    materials: list[MaterialIn] = Field(default_factory=list, max_length=50, description="materials to replace")


class PickupIn(_Body):
    """上门收件: the carrier collects the originals of the case's materials from this address."""

    sender: Annotated[Name, Field(min_length=1, max_length=50)] = Field(description="who hands the originals over")
    phone: Mobile
    division_code: str = Field(max_length=6, description="GB/T 2260 code of the pickup address")
    address: Annotated[Line, Field(min_length=1, max_length=300)]
    items: list[MaterialName] = Field(min_length=1, max_length=50,
                                      description="materials of the matter asked for in original form")  # fmt: skip

    _division = field_validator("division_code")(_division)


class OverridesIn(_Body):
    """A year's official calendar: every holiday and every 调休 working day (weekends otherwise)."""

    holidays: list[Annotated[Line, Field(max_length=10)]] = Field(default_factory=list, max_length=366)
    workdays: list[Annotated[Line, Field(max_length=10)]] = Field(default_factory=list, max_length=366)


class EvaluationIn(_Body):
    score: int = Field(ge=1, le=5, description="1 非常不满意, 2 不满意, 3 基本满意, 4 满意, 5 非常满意")
    comment: Annotated[Text, Field(max_length=1000)] | None = None


class BranchActionRequest(_Body):
    action: Literal["approve", "deny"]
    reason: Reason | None = None


# ---- responses ------------------------------------------------------------------------------
class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MatterRef(_Out):
    code: str
    version: int
    name: str


class CaseSummary(_Out):
    case_no: str
    matter: MatterRef
    department: str
    state: str
    version: int = Field(description="send it as If-Match with the next action")
    received_on: date
    clock_step: str | None
    due_on: date | None
    due_provisional: bool
    updated_at: str = Field(description="ISO 8601 timestamp")


class ApplicantOut(_Out):
    subject: str
    kind: str
    name: str | None = Field(description="the verified name from the token at submission; null for old tokens")
    agent: str | None
    agent_name: str | None


class PauseOut(_Out):
    reason: str
    started_on: date
    ended_on: date | None
    expected_days: int | None
    note: str | None


class TimelineLine(_Out):
    at: str
    action: str
    actor: str
    from_state: str | None
    to_state: str
    detail: dict[str, Any]


class BranchOut(_Out):
    department: str
    state: str
    version: int
    started_on: date
    due_on: date | None
    deadline: dict[str, Any]
    decided_on: date | None
    decided_by: str | None
    reason: str | None


class RectificationOut(_Out):
    due: date
    provisional: bool
    rectified: bool


class EvaluationOut(_Out):
    score: int
    comment: str | None
    created_at: str
    rectification: RectificationOut | None


class ExtensionOut(_Out):
    days: int
    reason: str | None


class PublicLicenceOut(_Out):
    identifier: str = Field(description="GB/T 36904 电子证照标识")
    licence_type: str


class IssuedLicenceOut(PublicLicenceOut):
    number: str = Field(description="证照编号")
    version: int
    issued_on: date
    valid_until: date | None = Field(description="None: valid without a time limit (长期)")


class ShipmentOut(_Out):
    """An EMS shipment of the case as express reported it (no address: the applicant gave it)."""

    kind: Literal["deliver", "collect"]
    shipment_id: str | None
    carrier: str | None
    waybill: str | None = Field(description="UPU S10 number, once the carrier assigned one")
    status: str = Field(description="express's canonical status, or requested (a pickup not yet reported)")
    final: bool
    reason: str | None = Field(description="why the last attempt failed")
    updated_at: str = Field(description="when the status was reached (the carrier's time), ISO 8601")


class PickupOut(ShipmentOut):
    """A pickup (上门收件) the applicant asked for, with its shipment's progress."""

    pickup_id: str
    sender: str
    phone: str = Field(description="masked")
    division_code: str
    address: str
    items: list[str]
    requested_at: str


class HelperOut(_Out):
    subject: str = Field(description="the counter officer who applied for the applicant (帮办)")
    name: str | None


class FeesOut(_Out):
    items: list[dict[str, Any]]
    total_fen: int
    revision: int
    status: Literal["due", "paid", "refunded", "waived"]
    due_before: str
    order_id: str | None
    receipt_no: str | None = Field(description="电子票据 number")
    paid_fen: int | None
    paid_at: str | None
    refunded_fen: int | None
    refunded_at: str | None


class CaseDetail(CaseSummary):
    applicant: ApplicantOut
    form: dict[str, Any]
    materials: list[dict[str, Any]]
    delivery: dict[str, Any]
    correction_items: list[dict[str, Any]] | None
    decision_reason: str | None
    accepted_on: date | None
    deemed_accepted: bool
    decided_on: date | None
    completed_on: date | None
    extension: ExtensionOut | None
    pauses: list[PauseOut]
    deadlines: dict[str, Any]
    timeline: list[TimelineLine]
    allowed_actions: list[str] = Field(description="exactly the actions the caller would be let take now")
    branches: list[BranchOut]
    evaluation: EvaluationOut | None
    licence: IssuedLicenceOut | None = Field(default=None, description="the e-licence issued for the case (电子证照)")
    query_code: str | None = Field(default=None, description="the applicant's only (for the public progress page)")
    originals_received_on: date | None = None
    shipments: list[ShipmentOut] = Field(default_factory=list, description="EMS shipments: results and pickups")
    pickups: list[PickupOut] = Field(default_factory=list, description="pickups of the originals (上门收件)")
    channel: Literal["online", "counter", "kiosk", "department"] = "online"
    helper: HelperOut | None = None
    fees: FeesOut | None = None


class HandOutSheet(_Out):
    """What the window sees of a case it may hand out (no form, no materials)."""

    case_no: str
    matter: str
    department: str
    applicant: str | None = Field(description="masked")
    state: str
    version: int
    waiting_for: list[str] = Field(description="what keeps the result from the window; empty: ready")
    handed_out: dict[str, Any] | None
    completed_on: str | None


class HelpedCase(CaseSummary):
    applicant_name: str | None


class HelpedCases(Page[HelpedCase]):
    """The counter officer's cases (kit.pagination's shape)."""


class CaseList(Page[CaseSummary]):
    """A page of cases (kit.pagination's shape)."""


class Worklist(CaseList):
    total_capped: bool


class ProgressStep(_Out):
    at: str
    action: str
    to_state: str


class PublicShipmentOut(_Out):
    """What the public progress page shows of a shipment: the waybill and its status, no address."""

    kind: Literal["deliver", "collect"]
    waybill: str | None
    status: str
    updated_at: str


class ProgressOut(_Out):
    case_no: str
    matter: str
    department: str
    applicant: str | None = Field(description="masked, e.g. 张*")
    state: str
    received_on: date
    due_on: date | None
    licence: PublicLicenceOut | None = Field(default=None, description="the e-licence issued: identifier and type only")
    shipments: list[PublicShipmentOut] = Field(default_factory=list, description="waybills and their status")
    steps: list[ProgressStep]


class UploadOut(_Out):
    id: str
    sha256: str
    content_type: str
    size: int


class PublishedResult(_Out):
    case_no: str
    matter: str
    department: str
    applicant: str | None
    decision: str
    decided_on: date | None


class PublishedResults(Page[PublishedResult]):
    """A page of published grant decisions (kit.pagination's shape)."""


class SandboxMessage(_Out):
    """What the sandbox SMS/WeChat adapter 'sent' (sandbox deployments only)."""

    case_no: str
    recipient: str
    channel: str
    template: str
    text: str
    created_at: str
    sent_at: str | None
    attempts: int
    last_error: str | None
    gateway_message_id: str | None
