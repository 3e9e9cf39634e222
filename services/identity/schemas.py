"""Request and response bodies of identity's API."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kit.errors import RuleViolation
from kit.subject_ids import validate_id_number, validate_uscc
from kit.text import Line, Name
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


# Every text field is a kit.text type first (no lone surrogates, control characters or bidi
# overrides), with a length bound checked before any domain rule runs.
IdNumber = Annotated[Line, Field(max_length=32), AfterValidator(validate_id_number)]
Uscc = Annotated[Line, Field(max_length=32), AfterValidator(validate_uscc)]
Mobile = Annotated[Line, Field(max_length=20), AfterValidator(_mobile)]
SmsCodeValue = Annotated[Line, Field(max_length=10), AfterValidator(_sms_code)]
NewPassword = Annotated[Line, Field(max_length=128), AfterValidator(check_password_rules)]
Password = Annotated[Line, Field(min_length=1, max_length=128)]
LoginName = Annotated[Line, Field(min_length=1, max_length=64)]
PersonName = Annotated[Name, AfterValidator(_name)]
OfficerLoginName = Annotated[Line, Field(pattern=r"^[a-z][a-z0-9_.-]{2,63}$")]
DepartmentCode = Annotated[Line, Field(pattern=r"^[A-Za-z0-9_-]{2,40}$")]
OfficerRole = Literal["acceptor", "reviewer", "decider", "counter", "supervisor", "admin"]
Scope = Annotated[Line, Field(min_length=1, max_length=100)]


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
    login: LoginName = Field(description="ID number or mobile")
    password: Password


class SmsLogin(Strict):
    method: Literal["sms"]
    mobile: Mobile
    code: SmsCodeValue


class WeChatBind(Strict):
    login: LoginName
    password: Password


class WeChatLogin(Strict):
    method: Literal["wechat"]
    code: Annotated[Line, Field(min_length=1, max_length=128)]
    bind: WeChatBind | None = Field(default=None, description="first use of this WeChat account: bind it")


class OfficerLogin(Strict):
    method: Literal["officer"]
    login: LoginName
    password: Password


LoginRequest = Annotated[PasswordLogin | SmsLogin | WeChatLogin | OfficerLogin, Field(discriminator="method")]


class TokenPair(BaseModel):
    """An access token (ADR 0002) and, for logins and refreshes, the next refresh token.

    Every field is read from identity's records when the token is issued, never copied from an
    earlier token: after a person's real-name level rises (L2 registry, L3 face, L4 counter),
    ``POST /sessions/refresh`` returns a token whose ``lvl`` claim and ``level`` field are the new
    level, and an officer's changed roles or department show in the next refresh."""

    access_token: str = Field(description="EdDSA JWT; claims per docs/adr/0002-token-claims.md")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_token: str | None = Field(default=None, description="single use: each refresh returns a new one")
    refresh_expires_in: int | None = None
    subject: str
    kind: Literal["person", "enterprise", "officer"]
    level: int = Field(ge=1, le=4, description="real-name level in the access token, as identity records it now")
    name: str | None = Field(default=None, description="the subject's name as the access token's name claim")


class RefreshRequest(Strict):
    refresh_token: Annotated[Line, Field(min_length=10, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]


class ActAsRequest(Strict):
    enterprise: Uscc


class RegisterEnterprise(Strict):
    """Bind an enterprise: the enterprise registry says its name and legal representative."""

    uscc: Uscc
    name: Annotated[Name, Field(max_length=200)] | None = Field(
        default=None,
        description="optional: the name the applicant expects; refused when the register records "
        "another name. The enterprise is always kept and shown under its registered name.",
    )


class EnterpriseOut(BaseModel):
    uscc: str
    name: str = Field(description="the registered name from the enterprise registry")
    legal_representative: str
    role: str | None = None


class GrantMandate(Strict):
    agent_id_number: IdNumber
    scopes: list[Scope] = Field(min_length=1, max_length=50)
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
    liveness_token: Annotated[Line, Field(max_length=200)] | None = Field(default=None, description="required for face")


class VerificationOut(BaseModel):
    level: int
    method: str


class CreateOfficer(Strict):
    login: OfficerLoginName
    name: PersonName
    department: DepartmentCode
    roles: list[OfficerRole] = Field(min_length=1, max_length=6)
    password: NewPassword


class ChangeOfficer(Strict):
    """Fields left out stay as they are."""

    name: PersonName | None = None
    department: DepartmentCode | None = None
    roles: list[OfficerRole] | None = Field(default=None, min_length=1, max_length=6)


class OfficerOut(BaseModel):
    login: str
    name: str
    department: str
    roles: list[str]
    disabled: bool = False


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


# --- the hall: counter and kiosk tokens, the kiosk registry (ADR 0025) ---------------------------

DeviceId = Annotated[Line, Field(pattern=r"^[A-Z][A-Z0-9_-]{2,63}$", description="e.g. KIOSK-370102-01")]
HallCode = Annotated[Line, Field(pattern=r"^[A-Z][A-Z0-9_-]{1,39}$", description="e.g. HALL-370102")]
CardSerial = Annotated[Line, Field(pattern=r"^[A-Za-z0-9]{1,40}$")]


class CounterSessionRequest(Strict):
    """The person at the counter: the number and the name on the ID card the officer holds."""

    id_number: IdNumber
    name: PersonName = Field(description="the name printed on the card, as the officer read it")


class KioskSessionRequest(Strict):
    """What the kiosk's card reader read from the second-generation ID card."""

    id_number: IdNumber
    name: PersonName
    valid_from: date = Field(description="有效期限 start")
    valid_until: date | None = Field(description="有效期限 end; null for 长期 (long-term)")
    card_serial: CardSerial | None = Field(default=None, description="the card's chip serial, when read")


class RegisterKiosk(Strict):
    device_id: DeviceId
    hall_code: HallCode
    name: Annotated[Name, Field(min_length=1, max_length=100)]
    location: Annotated[Line, Field(min_length=1, max_length=200)]


class KioskOut(BaseModel):
    device_id: str
    hall_code: str
    department: str
    name: str
    location: str
    status: Literal["active", "revoked"]
    created_at: datetime
    created_by: str
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


class KioskWithSecret(BaseModel):
    kiosk: KioskOut
    secret: str = Field(description="the kiosk's HMAC secret: shown this once, stored only encrypted")


class KioskKeysOut(BaseModel):
    secrets: list[str]
    hall_code: str
