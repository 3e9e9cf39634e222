"""What department systems and the platform say to each other (部门系统对接, ADR 0019).

Inbound: the body of ``POST /api/v1/departments/{code}/events`` (HMAC-signed by the partner, ADR
0003 scheme) is one ``Push``: ``event_id`` (the department's own id; a push is idempotent by it),
``type``, ``occurred_at`` and ``data`` whose model depends on the type. The JSON Schemas in
``contracts/departments/`` are generated from these models (``make contracts``; a test fails on
drift). An unknown type or a body failing its schema is a 422 problem naming the field and the rule,
and stores nothing.

Outbound: webhooks to a department's system follow Standard Webhooks (``webhook-id``,
``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>``); the body is a
``Webhook``: ``{type, timestamp, data}``.

Subject ids are checked here by shape only; the services check their GB 11643 / GB 32100 check
characters (kit.subject_ids) and answer the push's ``push.settled`` with the rule when they fail.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EVENT_ID = r"^[A-Za-z0-9._:-]{1,64}$"
DEPARTMENT_CASE_ID = r"^[A-Za-z0-9._:/-]{1,64}$"
SUBJECT_ID = r"^[0-9A-Z]{17}[0-9A-Z]$"
CASE_NO = r"^[A-Za-z0-9-]{1,40}$"
CODE = r"^[A-Za-z0-9_.-]{1,64}$"

ProgressStep = Literal[
    "received",  # 收件: the application reached the department (the case is created on the platform)
    "accepted",  # 受理: the decision clock starts (Art. 42)
    "correction_requested",  # 补正: the applicant was told what to correct, once
    "resubmitted",  # the corrections arrived
    "rejected",  # 不予受理
    "approved",  # 准予
    "denied",  # 不予许可
    "completed",  # 办结: the result was handed over
    "withdrawn",  # the applicant withdrew
]
DecisionAction = Literal["accept", "reject", "request_correction", "approve", "deny"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CorrectionItemData(_Data):
    material: str = Field(min_length=1, max_length=100, description="the material's name as the matter lists it")
    problem: str = Field(min_length=1, max_length=500)


class CaseProgressData(_Data):
    """A step of a case the department handles in its own system (e.g. at its own counter)."""

    department_case_id: str = Field(pattern=DEPARTMENT_CASE_ID, description="the department's own case id")
    matter_code: str = Field(pattern=CODE, description="the catalog matter the case is for (the department's own)")
    applicant: str = Field(pattern=SUBJECT_ID, description="the applicant's subject id (ID number or USCC)")
    applicant_kind: Literal["person", "enterprise"]
    step: ProgressStep
    reason: str | None = Field(default=None, max_length=500, description="required for rejected and denied")
    items: list[CorrectionItemData] | None = Field(default=None, max_length=50, description="for correction_requested")


class CaseDecisionData(_Data):
    """A step on a platform case the department works in its own system."""

    case_no: str = Field(pattern=CASE_NO, description="the platform case number (from the case.accepted webhook)")
    action: DecisionAction
    reason: str | None = Field(default=None, max_length=500, description="required for reject and deny")
    items: list[CorrectionItemData] | None = Field(default=None, max_length=50, description="for request_correction")


class LicenceIssuedData(_Data):
    """A certificate the department issued (e.g. 不动产权证书), stored as that department's licence."""

    licence_type: str = Field(pattern=CODE, description="licence type code (the licence service's catalogue)")
    number: str = Field(min_length=1, max_length=64, description="证照编号 as printed by the department")
    holder: str = Field(pattern=SUBJECT_ID)
    holder_kind: Literal["person", "enterprise"]
    holder_name: str = Field(min_length=1, max_length=200, description="the department's record of the holder")
    issued_on: date
    valid_until: date | None = Field(default=None, description="None: no time limit (长期)")
    data: dict[str, Any] = Field(default_factory=dict, description="the printed fields, checked against the type")
    case_no: str | None = Field(default=None, pattern=CASE_NO, description="the platform case it results from")
    department_case_id: str | None = Field(default=None, pattern=DEPARTMENT_CASE_ID)


class _Push(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(pattern=EVENT_ID, description="the department's own id; a push is idempotent by it")
    occurred_at: AwareDatetime = Field(description="when it happened in the department's system")


class CaseProgressPush(_Push):
    type: Literal["case.progress"]
    data: CaseProgressData


class CaseDecisionPush(_Push):
    type: Literal["case.decision"]
    data: CaseDecisionData


class LicenceIssuedPush(_Push):
    type: Literal["licence.issued"]
    data: LicenceIssuedData


Push = Annotated[CaseProgressPush | CaseDecisionPush | LicenceIssuedPush, Field(discriminator="type")]
PUSH_MODELS: dict[str, type[_Push]] = {
    "case.progress": CaseProgressPush,
    "case.decision": CaseDecisionPush,
    "licence.issued": LicenceIssuedPush,
}


class Receipt(BaseModel):
    """The answer to every accepted push (200 when new, 200 with ``duplicate`` on a repeat).

    ``signature`` is a compact JWS (EdDSA, Ed25519) over the receipt's other fields as its
    payload, with ``kid`` naming a key in ``/api/v1/exchange/.well-known/jwks.json``; the
    department keeps it to prove delivery."""

    receipt_id: str = Field(description="the push's id on the platform (the same for a repeat)")
    department: str
    partner: str
    event_id: str
    type: str
    received_at: datetime = Field(description="when the platform first received the event")
    body_sha256: str = Field(description="lower-case hex SHA-256 of the body first received under this event id")
    duplicate: bool = Field(description="true when this event id was received before (nothing was stored again)")
    signature: str = Field(description="compact JWS over the fields above")


WebhookType = Literal[
    "case.submitted", "case.accepted", "case.branch_assigned", "case.resubmitted", "case.withdrawn", "push.settled"
]


class WebhookCaseData(_Data):
    case_no: str
    matter_code: str
    department: str = Field(description="the receiving department (the case's, or its branch's)")
    lead_department: str = Field(description="the case's own department")
    state: str
    applicant: str = Field(description="the applicant's subject id")
    at: datetime
    sequence: int = Field(ge=1, description="per case and subscription, 1, 2, 3 … in delivery order")


class WebhookPushSettledData(_Data):
    push_id: str
    event_id: str
    push_type: str
    outcome: Literal["applied", "refused"]
    problem: dict[str, Any] | None = None
    case_no: str | None = None
    licence_id: str | None = None


class Webhook(BaseModel):
    """The body of every outbound delivery (Standard Webhooks: type, timestamp, data)."""

    model_config = ConfigDict(extra="forbid")

    type: WebhookType
    timestamp: datetime
    data: WebhookCaseData | WebhookPushSettledData
