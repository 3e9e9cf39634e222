"""Request bodies of caseflow's API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kit.errors import RuleViolation


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MaterialIn(_Body):
    """One material: an uploaded file (``blob_id``) or one of the applicant's e-licences."""

    name: str = Field(min_length=1, max_length=200)
    blob_id: str | None = Field(default=None, max_length=36)
    licence_id: str | None = Field(default=None, max_length=64)
    licence_version: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> MaterialIn:
        if (self.blob_id is None) == (self.licence_id is None):
            raise RuleViolation("one_of", "give exactly one of blob_id or licence_id")
        return self


class DeliveryIn(_Body):
    method: Literal["window", "ems"]
    recipient: str | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, pattern=r"^1\d{10}$")
    address: str | None = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _ems_needs_address(self) -> DeliveryIn:
        if self.method == "ems" and not (self.recipient and self.phone and self.address):
            raise RuleViolation("ems_address", "EMS delivery needs recipient, phone and address")
        return self


class SubmitRequest(_Body):
    matter_code: str | None = Field(default=None, min_length=1, max_length=64, description="a matter, or …")
    bundle_code: str | None = Field(default=None, min_length=1, max_length=64, description="… a bundle (套餐)")
    matter_version: int | None = Field(default=None, ge=1, description="default: the current version")
    applicant_name: str | None = Field(default=None, max_length=100)
    form: dict[str, Any] = Field(default_factory=dict)
    materials: list[MaterialIn] = Field(default_factory=list, max_length=50)
    delivery: DeliveryIn
    fees_paid_yuan: str | None = Field(
        default=None, pattern=r"^\d{1,9}(\.\d{1,2})?$", description="what the applicant paid; checked on decision"
    )
    contact_phone: str | None = Field(
        default=None, pattern=r"^1\d{10}$", description="mobile for the SMS about this case; default: the EMS phone"
    )

    @model_validator(mode="after")
    def _matter_or_bundle(self) -> SubmitRequest:
        if (self.matter_code is None) == (self.bundle_code is None):
            raise RuleViolation("one_of", "give exactly one of matter_code or bundle_code")
        if self.bundle_code is not None and self.matter_version is not None:
            raise RuleViolation("bundle_version", "a bundle applies for the current version of each of its matters")
        return self


class CorrectionItemIn(_Body):
    material: str = Field(min_length=1, max_length=200)
    problem: str = Field(min_length=1, max_length=500)


SuspensionReason = Literal["hearing", "tender", "auction", "testing", "inspection", "quarantine", "expert_review"]


class ActionRequest(_Body):
    action: Literal[
        "accept", "reject", "request_correction", "review", "approve", "deny", "suspend", "resume", "extend",
        "deliver", "complete",
    ]  # fmt: skip
    reason: str | None = Field(default=None, max_length=2000)
    items: list[CorrectionItemIn] | None = Field(default=None, max_length=50)
    suspension: SuspensionReason | None = None
    expected_days: int | None = Field(default=None, ge=1, le=365)


class ResubmitRequest(_Body):
    form: dict[str, Any] = Field(default_factory=dict, description="fields to change")
    materials: list[MaterialIn] = Field(default_factory=list, max_length=50, description="materials to replace")


class OverridesIn(_Body):
    """A year's official calendar: every holiday and every 调休 working day (weekends otherwise)."""

    holidays: list[str] = Field(default_factory=list, max_length=366)
    workdays: list[str] = Field(default_factory=list, max_length=366)


class EvaluationIn(_Body):
    score: int = Field(ge=1, le=5, description="1 非常不满意, 2 不满意, 3 基本满意, 4 满意, 5 非常满意")
    comment: str | None = Field(default=None, max_length=1000)


class BranchActionRequest(_Body):
    action: Literal["approve", "deny"]
    reason: str | None = Field(default=None, max_length=2000)
