"""Events catalog publishes (stream CATALOG, subjects catalog.>).

``catalog.matter.published`` carries the whole definition caseflow needs to accept cases under
that version without calling catalog: materials (and the licence types that satisfy them), limits,
kind, workflow steps and roles, minimum real-name level, result licence type, parallel departments.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from kit.events import EventData


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PublishedMaterial(_Part):
    name: str
    required: bool
    forms: list[Literal["original", "copy", "electronic"]]
    count: int = Field(ge=1)
    template_file: str | None = None
    licence_type: str | None = Field(default=None, description="e-licence type that satisfies this material")
    note: str | None = None


class PublishedFee(_Part):
    item: str
    amount_yuan: str = Field(description="decimal amount in yuan, as a string")
    basis: str | None = None


class PublishedPayment(_Part):
    """网上缴费: how a matter's fees are paid (issue 14). Amounts come from ``fees``; an officer may
    assess them only where ``assessed`` says so (fees that depend on the case, e.g. per certificate)."""

    due_before: Literal["acceptance", "decision", "delivery"] = Field(
        default="decision", description="the case waits for payment before this step"
    )
    refund_on: list[Literal["withdrawn", "rejected", "denied"]] = Field(
        default_factory=lambda: ["withdrawn", "rejected", "denied"],
        description="outcomes after which a paid fee is refunded in full",
    )
    assessed: bool = Field(default=False, description="officers set the amounts of the guide's items per case")


InstantFact = Annotated[
    str,
    Field(
        pattern=r"^(applicant\.(kind|level|age|division|name)|licence:[a-z0-9_]{1,64}\.(valid|days_left)|form\.[A-Za-z0-9_]{1,64})$",
        description="applicant.kind|level|age|division|name (verified token, GB 11643), "
        "licence:<type>.valid|days_left (the applicant's e-licences, from licence), form.<field> (checked form)",
    ),
]


class InstantCondition(_Part):
    fact: InstantFact
    op: Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "exists"]
    value: str | int | float | bool | list[str] | None = None


class InstantRule(_Part):
    """One rule: every condition holds → the rule decides (approve)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str
    conditions: list[InstantCondition] = Field(min_length=1)


class PublishedInstant(_Part):
    """秒批秒办: a complete application that satisfies any rule is accepted and approved at once."""

    rules: list[InstantRule] = Field(min_length=1)
    sample_rate: float = Field(
        default=0.1, ge=0, le=1, description="share of automatic decisions sampled for human review"
    )


class PublishedResult(_Part):
    name: str
    form: Literal["licence", "document", "record", "payment", "none"]
    licence_type: str | None = Field(default=None, description="licence type issued on approval")
    delivery: list[Literal["window", "express", "electronic"]]


class PublishedStep(_Part):
    name: str
    roles: list[Literal["acceptor", "reviewer", "decider", "supervisor", "admin"]]
    limit_days: int | None = None


class PublishedFormField(_Part):
    """One field of the application form; caseflow validates submitted values against it."""

    name: str
    label: str
    kind: Literal["text", "number", "date", "choice", "address", "subject_id"]
    required: bool
    max_length: int | None = Field(default=None, ge=1, description="text: at most this many characters")
    format: Literal["mobile", "id_number", "uscc", "division_code"] | None = Field(
        default=None, description="text: a checked format (mainland mobile, GB 11643, GB 32100, GB/T 2260)"
    )
    options: list[str] | None = Field(default=None, description="choice: the allowed values, in display order")
    minimum: float | None = Field(default=None, description="number: smallest allowed value")
    maximum: float | None = Field(default=None, description="number: largest allowed value")
    prefill: str | None = Field(
        default=None,
        description="零填报: filled from verified data — applicant.name|kind|division|subject (the token; subject: "
        "the ID number or credit code), licence:<type>.number|valid_until|data.<key> (the applicant's usable "
        "licence of that type); the applicant only confirms",
    )


class PublishedFaq(_Part):
    question: str
    answer: str


class MatterPublished(EventData):
    event_type: ClassVar[str] = "yiwang.catalog.matter.published.v1"
    nats_subject: ClassVar[str] = "catalog.matter.published"
    code: str
    version: int = Field(ge=1, description="cases pin this version")
    effective_from: date
    published_at: datetime
    published_by: str
    name: str
    aliases: list[str]
    keywords: list[str]
    matter_type: Literal["行政许可", "行政确认", "行政征收", "行政给付", "行政奖励", "其他行政权力", "公共服务"]
    department: str
    department_name: str | None = Field(
        default=None, description="the department's name in the catalog (shown where the department acts)"
    )
    level: Literal["province", "city", "county", "township"]
    division_code: str | None
    legal_basis: list[str]
    conditions: list[str]
    audience: list[Literal["person", "enterprise"]]
    themes: list[str]
    materials: list[PublishedMaterial]
    statutory_limit_days: int = Field(ge=0, description="working days")
    promised_limit_days: int | None = Field(ge=0, description="working days")
    kind: Literal["instant", "promised"]
    fees: list[PublishedFee]
    result: PublishedResult
    depth: int = Field(ge=1, le=4)
    max_visits: int = Field(ge=0)
    online: bool
    express: bool | None
    min_level: int = Field(ge=1, le=4, description="minimum real-name level of the applicant")
    steps: list[PublishedStep]
    form_fields: list[PublishedFormField]
    faq: list[PublishedFaq]
    parallel_departments: list[str]
    consult_phone: str | None
    window: str | None
    channels: list[Literal["online", "counter", "kiosk"]] = Field(
        default_factory=lambda: ["online", "counter"], description="where the matter can be applied for"
    )
    payment: PublishedPayment | None = Field(default=None, description="how its fees are paid (None: nothing to pay)")
    instant: PublishedInstant | None = Field(default=None, description="秒批 rules (None: officers decide)")


class MatterRetired(EventData):
    event_type: ClassVar[str] = "yiwang.catalog.matter.retired.v1"
    nats_subject: ClassVar[str] = "catalog.matter.retired"
    code: str
    version: int = Field(ge=1, description="the version that was current when retired")
    department: str
    retired_at: datetime
    retired_by: str


class BundlePublished(EventData):
    """套餐 / 一件事: several matters applied for with one form, one case fanning out per department."""

    event_type: ClassVar[str] = "yiwang.catalog.bundle.published.v1"
    nats_subject: ClassVar[str] = "catalog.bundle.published"
    code: str
    name: str
    description: str
    matter_codes: list[str] = Field(min_length=2, description="in application order; the first one leads")
    published_at: datetime
