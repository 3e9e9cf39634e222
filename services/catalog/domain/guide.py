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


Channel = Literal["online", "counter", "kiosk"]
# A fact an instant rule tests (caseflow computes it from verified data only): the applicant's
# token (kind, level, name; age and division from the GB 11643 number), the applicant's e-licences
# of a type (valid, days_left), or a field of the checked form.
FACT_PATTERN = (
    r"^(applicant\.(kind|level|age|division|name)|licence:[a-z0-9_]{1,64}\.(valid|days_left)|form\.[A-Za-z0-9_]{1,64})$"
)
# What a form field may be prefilled from (零填报): the applicant's verified name, kind, division,
# ID number or credit code (applicant.subject), or the number or a data key of their e-licence.
PREFILL_PATTERN = r"^(applicant\.(kind|name|division|subject)|licence:[a-z0-9_]{1,64}\.(number|valid_until|data\.[A-Za-z0-9_]{1,64}))$"


Outcome = Literal["withdrawn", "rejected", "denied"]


def _all_outcomes() -> list[Outcome]:
    return ["withdrawn", "rejected", "denied"]


def _default_channels() -> list[Channel]:
    return ["online", "counter"]


class Payment(_Part):
    """网上缴费: how the guide's fees are paid and when the case waits for them."""

    due_before: Literal["acceptance", "decision", "delivery"] = "decision"
    refund_on: list[Outcome] = Field(default_factory=_all_outcomes, max_length=3)
    assessed: bool = False


class InstantCondition(_Part):
    fact: str = Field(pattern=FACT_PATTERN, max_length=140)
    op: Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "exists"]
    value: Line | int | float | bool | list[Annotated[Line, Field(max_length=100)]] | None = Field(
        default=None, description="absent only for exists"
    )

    @model_validator(mode="after")
    def _value_fits_the_op(self) -> InstantCondition:
        if self.op == "exists":
            if self.value is not None:
                raise RuleViolation("exists_without_value", f"{self.fact}: exists takes no value")
        elif self.value is None:
            raise RuleViolation("value_required", f"{self.fact}: {self.op} needs a value")
        elif self.op == "in" and not isinstance(self.value, list):
            raise RuleViolation("in_takes_a_list", f"{self.fact}: in needs a list of values")
        elif self.op != "in" and isinstance(self.value, list):
            raise RuleViolation("list_for_in", f"{self.fact}: only in takes a list")
        elif self.op in ("lt", "le", "gt", "ge") and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float)
        ):
            raise RuleViolation("number_for_order", f"{self.fact}: {self.op} compares with a number")
        if isinstance(self.value, float) and not (-1e15 <= self.value <= 1e15):
            raise RuleViolation("number_range", f"{self.fact}: the value is out of range")
        if isinstance(self.value, int) and not isinstance(self.value, bool) and abs(self.value) > 10**15:
            raise RuleViolation("number_range", f"{self.fact}: the value is out of range")
        return self


class InstantRule(_Part):
    """Every condition holds → the platform approves at once under this rule."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: Line = Field(min_length=1, max_length=300)
    conditions: list[InstantCondition] = Field(min_length=1, max_length=30)


class Instant(_Part):
    """秒批秒办: a complete application satisfying any rule is accepted and approved at once."""

    rules: list[InstantRule] = Field(min_length=1, max_length=20)
    sample_rate: float = Field(default=0.1, ge=0, le=1, description="share of automatic decisions sampled")


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
    prefill: str | None = Field(
        default=None, pattern=PREFILL_PATTERN, max_length=200, description="零填报: filled from verified data"
    )

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
    channels: list[Channel] = Field(
        default_factory=_default_channels, min_length=1, max_length=3, description="where to apply"
    )
    payment: Payment | None = Field(default=None, description="how its fees are paid (None: nothing paid online)")
    instant: Instant | None = Field(default=None, description="秒批 rules (None: officers decide)")


class PublishRequest(_Part):
    effective_from: date | None = None
