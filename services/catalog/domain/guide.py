"""The guide (办事指南) of one matter version, as a validated document.

A draft may be incomplete (editors save as they go); shapes are always checked, completeness only
at publish time (see ``completeness.missing_fields``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Material(_Part):
    """申请材料: what the applicant hands in, and the e-licence type that can replace it."""

    name: str = Field(min_length=1, max_length=200)
    required: bool = True
    forms: list[MaterialForm] = Field(default_factory=list, description="original / copy / electronic")
    count: int = Field(default=1, ge=1, le=99)
    template_file: str | None = Field(default=None, max_length=500)
    licence_type: str | None = Field(default=None, max_length=64, description="e-licence type that satisfies it")
    note: str | None = Field(default=None, max_length=1000)


class Fee(_Part):
    item: str = Field(min_length=1, max_length=200)
    amount_yuan: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    basis: str | None = Field(default=None, max_length=500)


class Result(_Part):
    """办理结果: what the applicant receives, and the licence type issued on approval."""

    name: str = Field(min_length=1, max_length=200)
    form: ResultForm
    licence_type: str | None = Field(default=None, max_length=64)
    delivery: list[Delivery] = Field(default_factory=list)


class Step(_Part):
    """办理流程 step and the officer roles that act in it."""

    name: str = Field(min_length=1, max_length=100)
    roles: list[Role] = Field(default_factory=list)
    limit_days: int | None = Field(default=None, ge=0, le=365)


class Faq(_Part):
    question: str = Field(min_length=1, max_length=500)
    answer: str = Field(min_length=1, max_length=4000)


class FormField(_Part):
    """One field of the application form; bundles merge fields of the same name."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    label: str = Field(min_length=1, max_length=100)
    kind: Literal["text", "number", "date", "choice", "address", "subject_id"] = "text"
    required: bool = True


class Guide(_Part):
    """The whole guide of a matter version. Only code, name and department are needed for a draft."""

    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=2, max_length=200)
    aliases: list[str] = Field(default_factory=list, max_length=20)
    keywords: list[str] = Field(default_factory=list, max_length=40)
    matter_type: MatterType | None = None
    department: str = Field(min_length=2, max_length=40)
    level: Level | None = None
    division_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    legal_basis: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    audience: list[Audience] = Field(default_factory=list)
    themes: list[str] = Field(default_factory=list)
    materials: list[Material] = Field(default_factory=list)
    statutory_limit_days: int | None = Field(default=None, ge=0, le=365)
    promised_limit_days: int | None = Field(default=None, ge=0, le=365)
    kind: Literal["instant", "promised"] | None = Field(default=None, description="即办 / 承诺")
    fees: list[Fee] = Field(default_factory=list, description="empty = free of charge")
    result: Result | None = None
    depth: int | None = Field(default=None, ge=1, le=4, description="handling depth 1–4")
    max_visits: int | None = Field(default=None, ge=0, le=5, description="0 = 不见面, 1 = 见一次面")
    online: bool | None = None
    express: bool | None = None
    min_level: int | None = Field(default=None, ge=1, le=4, description="minimum real-name level")
    steps: list[Step] = Field(default_factory=list)
    form_fields: list[FormField] = Field(default_factory=list)
    faq: list[Faq] = Field(default_factory=list)
    parallel_departments: list[str] = Field(default_factory=list, description="并联审批 departments")
    consult_phone: str | None = Field(default=None, max_length=40)
    window: str | None = Field(default=None, max_length=300, description="where to go, when a visit is needed")


class PublishRequest(_Part):
    effective_from: date | None = None
