"""The guide (办事指南) of one matter version, as a validated document.

A draft may be incomplete (editors save as they go); shapes are always checked, completeness only
at publish time (see ``completeness.missing_fields``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kit.errors import RuleViolation
from kit.text import Line, Text

MATTER_TYPES = ("行政许可", "行政确认", "行政征收", "行政给付", "行政奖励", "其他行政权力", "公共服务")
MatterType = Literal["行政许可", "行政确认", "行政征收", "行政给付", "行政奖励", "其他行政权力", "公共服务"]
Level = Literal["province", "city", "county", "township"]
Audience = Literal["person", "enterprise"]
MaterialForm = Literal["original", "copy", "electronic"]
ResultForm = Literal["licence", "document", "record", "payment", "none"]
Delivery = Literal["window", "express", "electronic"]
OFFICER_ROLES = ("acceptor", "reviewer", "decider", "supervisor", "admin")
Role = Literal["acceptor", "reviewer", "decider", "supervisor", "admin"]

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$"
FieldKind = Literal["text", "number", "date", "choice", "address", "subject_id"]
FieldFormat = Literal["mobile", "id_number", "uscc", "division_code"]
# Every free-text field an officer writes is Line (one line) or Text (may break lines): kit.text
# refuses lone surrogates, control characters and bidi overrides with a problem naming the field.


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Material(_Part):
    """申请材料: what the applicant hands in, and the e-licence type that can replace it."""

    name: Line = Field(min_length=1, max_length=200)
    required: bool = True
    forms: list[MaterialForm] = Field(default_factory=list, max_length=3, description="original / copy / electronic")
    count: int = Field(default=1, ge=1, le=99)
    template_file: Line | None = Field(default=None, max_length=500)
    licence_type: Line | None = Field(default=None, max_length=64, description="e-licence type that satisfies it")
    note: Text | None = Field(default=None, max_length=1000)


class Fee(_Part):
    item: Line = Field(min_length=1, max_length=200)
    amount_yuan: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    basis: Line | None = Field(default=None, max_length=500)


class Result(_Part):
    """办理结果: what the applicant receives, and the licence type issued on approval."""

    name: Line = Field(min_length=1, max_length=200)
    form: ResultForm
    licence_type: Line | None = Field(default=None, max_length=64)
    delivery: list[Delivery] = Field(default_factory=list, max_length=3)


class Step(_Part):
    """办理流程 step and the officer roles that act in it."""

    name: Line = Field(min_length=1, max_length=100)
    roles: list[Role] = Field(default_factory=list, max_length=5)
    limit_days: int | None = Field(default=None, ge=0, le=365)


class Faq(_Part):
    question: Line = Field(min_length=1, max_length=500)
    answer: Text = Field(min_length=1, max_length=4000)


class FormField(_Part):
    """One field of the application form and the rules its value must meet (caseflow checks every
    submitted value against them; a front-end renders them); bundles merge fields of the same name."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    label: Line = Field(min_length=1, max_length=100)
    kind: FieldKind = "text"
    required: bool = True
    max_length: int | None = Field(
        default=None, ge=1, le=10_000, description="text and address: at most this many characters"
    )
    format: FieldFormat | None = Field(
        default=None,
        description="a checked format: mainland mobile, GB 11643 ID number, GB 32100 credit code, GB/T 2260 division",
    )
    options: list[Line] | None = Field(
        default=None, min_length=1, max_length=100, description="choice: the allowed values"
    )
    minimum: float | None = Field(default=None, ge=-1e15, le=1e15, description="number: smallest allowed value")
    maximum: float | None = Field(default=None, ge=-1e15, le=1e15, description="number: largest allowed value")

    @model_validator(mode="after")
    def _rules_fit_the_kind(self) -> FormField:
        if self.kind == "choice" and not self.options:
            raise RuleViolation("options_required", f"{self.name}: a choice field lists its options")
        if self.options is not None:
            if self.kind != "choice":
                raise RuleViolation("options_for_choice", f"{self.name}: only a choice field has options")
            if any(not option.strip() or len(option) > 100 for option in self.options):
                raise RuleViolation("option_text", f"{self.name}: options are 1..100 characters")
            if len(set(self.options)) != len(self.options):
                raise RuleViolation("unique_options", f"{self.name}: an option is listed twice")
        if (self.minimum is not None or self.maximum is not None) and self.kind != "number":
            raise RuleViolation("range_for_number", f"{self.name}: only a number field has a minimum or maximum")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise RuleViolation("range_order", f"{self.name}: minimum exceeds maximum")
        if self.max_length is not None and self.kind not in ("text", "address"):
            raise RuleViolation("length_for_text", f"{self.name}: only text and address fields have max_length")
        if self.format is not None and self.kind not in ("text", "subject_id"):
            raise RuleViolation("format_for_text", f"{self.name}: only text and subject_id fields have a format")
        return self


class Guide(_Part):
    """The whole guide of a matter version. Only code, name and department are needed for a draft."""

    code: str = Field(pattern=CODE_PATTERN)
    name: Line = Field(min_length=2, max_length=200)
    aliases: list[Annotated[Line, Field(max_length=200)]] = Field(default_factory=list, max_length=20)
    keywords: list[Annotated[Line, Field(max_length=100)]] = Field(default_factory=list, max_length=40)
    matter_type: MatterType | None = None
    department: str = Field(min_length=2, max_length=40, pattern=CODE_PATTERN)
    level: Level | None = None
    division_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    legal_basis: list[Annotated[Line, Field(max_length=500)]] = Field(default_factory=list, max_length=50)
    conditions: list[Annotated[Text, Field(max_length=1000)]] = Field(default_factory=list, max_length=50)
    audience: list[Audience] = Field(default_factory=list, max_length=2)
    themes: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=20)
    materials: list[Material] = Field(default_factory=list, max_length=100)
    statutory_limit_days: int | None = Field(default=None, ge=0, le=365)
    promised_limit_days: int | None = Field(default=None, ge=0, le=365)
    kind: Literal["instant", "promised"] | None = Field(default=None, description="即办 / 承诺")
    fees: list[Fee] = Field(default_factory=list, max_length=50, description="empty = free of charge")
    result: Result | None = None
    depth: int | None = Field(default=None, ge=1, le=4, description="handling depth 1–4")
    max_visits: int | None = Field(default=None, ge=0, le=5, description="0 = 不见面, 1 = 见一次面")
    online: bool | None = None
    express: bool | None = None
    min_level: int | None = Field(default=None, ge=1, le=4, description="minimum real-name level")
    steps: list[Step] = Field(default_factory=list, max_length=30)
    form_fields: list[FormField] = Field(default_factory=list, max_length=200)
    faq: list[Faq] = Field(default_factory=list, max_length=50)
    parallel_departments: list[Annotated[str, Field(pattern=CODE_PATTERN)]] = Field(
        default_factory=list, max_length=20, description="并联审批 departments"
    )
    consult_phone: Line | None = Field(default=None, max_length=40)
    window: Line | None = Field(default=None, max_length=300, description="where to go, when a visit is needed")


class PublishRequest(_Part):
    effective_from: date | None = None
