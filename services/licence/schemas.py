"""Request and response models of licence's HTTP API (the OpenAPI documents every answer)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from kit.pagination import Page
from kit.text import Line, Name, Reason
from services.licence.domain.holders import validate_holder

CODE = r"^[a-z][a-z0-9_]{0,63}$"
CASE_NO = r"^[A-Za-z0-9-]{1,40}$"
Status = Literal["valid", "suspended", "revoked", "expired"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IssuerOut(BaseModel):
    department: str
    name: str
    issuer_code: str = Field(description="the department's unified social credit code (GB/T 36904 issuer code)")
    division_code: str
    default: bool


class ValidityOut(BaseModel):
    years: int | None = Field(description="valid for this many years from valid_from; None: no time limit (长期)")
    long_term: bool = False


class LicenceTypeOut(BaseModel):
    code: str
    name: str
    national_type_code: str = Field(description="GB/T 36904 证照类型代码 (21 characters)")
    validity: ValidityOut
    number_rule: Literal["serial", "holder_code"]
    holder_kinds: list[Literal["person", "enterprise"]]
    issuers: list[IssuerOut]
    data_schema: dict[str, Any] = Field(description="JSON Schema (2020-12) of the data printed on the licence")
    satisfies: list[str] = Field(description="catalog material names a licence of this type stands for")


class LicenceOut(BaseModel):
    identifier: str = Field(description="GB/T 36904 电子证照标识")
    name: str
    licence_type: str
    number: str
    issuer: str
    issuer_code: str
    issuer_name: str
    issued_on: date
    valid_from: date
    valid_until: date | None
    holder: str
    holder_name: str
    holder_code_type: Literal["111", "001"]
    jurisdiction: str
    data: dict[str, Any]
    status: Status
    status_reason: str | None
    version: int
    source: Literal["case", "officer", "import", "department"]
    case_no: str | None


class LicencePage(Page[LicenceOut]):
    pass


class AccessEntryOut(BaseModel):
    reader: str
    reader_kind: Literal["officer", "service", "holder", "agent"]
    case_no: str | None
    purpose: str
    at: datetime
    action: Literal["read", "print"] = "read"
    channel: str | None = Field(default=None, description="a print's channel: online, counter or kiosk")
    device: str | None = Field(default=None, description="a kiosk print's device id")


class AccessLogPage(Page[AccessEntryOut]):
    pass


class IssueRequest(_Request):
    """POST /licences: issue directly (the holder's name is the issuing department's record)."""

    licence_type: str = Field(pattern=CODE)
    holder_code_type: Literal["111", "001"] | None = Field(default=None, description="inferred from holder when absent")
    holder: str = Field(min_length=18, max_length=18, description="resident ID number or unified social credit code")
    holder_name: Name
    data: dict[str, Any] = Field(default_factory=dict)
    valid_from: date | None = None
    case_no: str | None = Field(default=None, pattern=CASE_NO, description="the case this licence results from")

    @field_validator("holder")
    @classmethod
    def _holder(cls, value: str, info: ValidationInfo) -> str:
        # GB 11643 / GB 32100 check characters; RuleViolation names the rule in the problem.
        return validate_holder(value, info.data.get("holder_code_type"))[0]

    @model_validator(mode="after")
    def _code_type(self) -> IssueRequest:
        if self.holder_code_type is None:
            self.holder_code_type = validate_holder(self.holder)[1]  # type: ignore[assignment]
        return self


class ReasonRequest(_Request):
    reason: Reason = Field(min_length=1)


class CheckRequest(_Request):
    """POST /checks (caseflow, signed)."""

    identifier: Line = Field(max_length=128)
    licence_type: str = Field(pattern=CODE)
    holder: str = Field(min_length=1, max_length=18)
    case_no: str | None = Field(default=None, pattern=CASE_NO)
    material: Line = Field(min_length=1, max_length=200)


class HoldingsRequest(_Request):
    """POST /holdings (caseflow, signed): the holder's licences of these types, for a purpose."""

    holder: str = Field(min_length=1, max_length=18)
    licence_types: list[Annotated[str, Field(pattern=CODE)]] = Field(min_length=1, max_length=10)
    purpose: Line = Field(min_length=1, max_length=100, description="why caseflow reads them, for the access log")
    case_no: str | None = Field(default=None, pattern=CASE_NO)


class Holding(BaseModel):
    identifier: str
    licence_type: str
    number: str
    status: Status
    valid_until: date | None
    data: dict[str, Any]


class HoldingsOut(BaseModel):
    holder: str
    holder_name: str | None
    licences: list[Holding]


class CheckOut(BaseModel):
    identifier: str
    licence_type: str
    number: str
    holder: str
    holder_name: str
    status: Literal["valid"]
    version: int
    valid_until: date | None


class ImportRejection(BaseModel):
    line: int
    field: str
    rule: str
    message: str


class ImportReport(BaseModel):
    imported: int
    rejected_count: int = Field(description="all rejected rows (the list shows at most 10,000)")
    rejected: list[ImportRejection]


class VerifyRequest(_Request):
    """POST /licences/verify: a QR's text, or an identifier with the number printed on the licence."""

    text: Line | None = Field(default=None, max_length=8192)  # Base45 and a prefix: one line, no controls
    identifier: Line | None = Field(default=None, max_length=128)
    number: Line | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one_way(self) -> VerifyRequest:
        if self.text is None and (self.identifier is None or self.number is None):
            raise ValueError("give text (a QR's text), or identifier and number")
        return self


class VerifyOut(BaseModel):
    status: Literal["valid", "suspended", "revoked", "expired", "unknown"]
    claims: dict[str, Any] = Field(default_factory=dict, description="what the licence discloses to a verifier")
    reason: str | None = None
