"""Request and response bodies of identity's API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kit.errors import RuleViolation
from services.identity.domain.subject_ids import validate_id_number, validate_uscc
from services.identity.passwords import check_password_rules

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SMS_CODE = re.compile(r"^\d{6}$")


def _mobile(value: str) -> str:
    if not _MOBILE.match(value):
        raise RuleViolation("mobile_format", "a mainland mobile number: 11 digits starting 13–19")
    return value


def _sms_code(value: str) -> str:
    if not _SMS_CODE.match(value):
        raise RuleViolation("sms_code_format", "6 digits")
    return value


def _name(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 50:
        raise RuleViolation("length", "1 to 50 characters")
    return value


IdNumber = Annotated[str, AfterValidator(validate_id_number)]
Uscc = Annotated[str, AfterValidator(validate_uscc)]
Mobile = Annotated[str, AfterValidator(_mobile)]
SmsCodeValue = Annotated[str, AfterValidator(_sms_code)]
NewPassword = Annotated[str, AfterValidator(check_password_rules)]
PersonName = Annotated[str, AfterValidator(_name)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterPerson(Strict):
    id_number: IdNumber
    name: PersonName
    mobile: Mobile
    password: NewPassword
    sms_code: SmsCodeValue = Field(description="code sent to the mobile by POST /sms-codes (purpose register)")


class RegisteredPerson(BaseModel):
    subject: str
    kind: Literal["person"] = "person"
    level: int


class SmsCodeRequest(Strict):
    mobile: Mobile
    purpose: Literal["register", "login"]


class PasswordLogin(Strict):
    method: Literal["password"]
    login: str = Field(min_length=1, max_length=64, description="ID number or mobile")
    password: str = Field(min_length=1, max_length=128)


class SmsLogin(Strict):
    method: Literal["sms"]
    mobile: Mobile
    code: SmsCodeValue


class WeChatBind(Strict):
    login: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class WeChatLogin(Strict):
    method: Literal["wechat"]
    code: str = Field(min_length=1, max_length=128)
    bind: WeChatBind | None = Field(default=None, description="first use of this WeChat account: bind it")


class OfficerLogin(Strict):
    method: Literal["officer"]
    login: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


LoginRequest = Annotated[PasswordLogin | SmsLogin | WeChatLogin | OfficerLogin, Field(discriminator="method")]


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    subject: str
    kind: str
    level: int


class RefreshRequest(Strict):
    refresh_token: str = Field(min_length=10, max_length=200)


class ActAsRequest(Strict):
    enterprise: Uscc


class RegisterEnterprise(Strict):
    uscc: Uscc
    name: str = Field(min_length=2, max_length=200)


class EnterpriseOut(BaseModel):
    uscc: str
    name: str
    legal_representative: str
    role: str | None = None


class GrantMandate(Strict):
    agent_id_number: IdNumber
    scopes: list[str] = Field(min_length=1, max_length=50)
    expires_at: datetime


class MandateOut(BaseModel):
    id: str
    enterprise: str
    agent: str
    scopes: list[str]
    expires_at: datetime
    revoked_at: datetime | None = None
    active: bool


class VerificationRequest(Strict):
    method: Literal["registry", "face"]
    liveness_token: str | None = Field(default=None, max_length=200, description="required for face")


class VerificationOut(BaseModel):
    level: int
    method: str


class CreateOfficer(Strict):
    login: str = Field(pattern=r"^[a-z][a-z0-9_.-]{2,63}$")
    name: PersonName
    department: str = Field(pattern=r"^[A-Za-z0-9_-]{2,40}$")
    roles: list[Literal["acceptor", "reviewer", "decider", "supervisor", "admin"]] = Field(min_length=1)
    password: NewPassword


class OfficerOut(BaseModel):
    login: str
    name: str
    department: str
    roles: list[str]


class Me(BaseModel):
    subject: str
    kind: str
    level: int
    name: str | None = None
    id_number: str | None = None
    mobile: str | None = None
    actor: str | None = None
    scopes: list[str] = []
    channels: list[str] = []
    enterprises: list[EnterpriseOut] = []
    mandates: list[MandateOut] = []
    department: str | None = None
    roles: list[str] = []
