"""Request and response models of 秒批 reviews and 零填报 (ADR 0027); kept apart from schemas.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kit.pagination import Page
from kit.text import Text


class SampleReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["agree", "disagree"]
    note: Annotated[Text, Field(max_length=1000)] | None = Field(default=None, description="required to disagree")


class SampleReviewOut(BaseModel):
    case_no: str
    department: str
    rule: str | None
    decided_at: str | None
    verdict: dict[str, Any] = Field(description="every rule's outcome: the facts used (ID numbers masked), failures")
    review: Literal["agree", "disagree"] | None
    review_note: str | None
    reviewed_by: str | None
    reviewed_at: str | None


class SampleReviews(Page[SampleReviewOut]):
    pass


class PrefillOut(BaseModel):
    matter_code: str
    matter_version: int
    form: dict[str, Any] = Field(description="field → value, from verified data only")
    sources: dict[str, str] = Field(
        description="field → where its value came from (applicant.name, licence:<type>.number, …)"
    )
    licences_unavailable: bool = Field(
        default=False, description="the licence service did not answer: those fields are blank"
    )
