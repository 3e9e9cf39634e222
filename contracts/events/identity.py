"""Events identity publishes (stream IDENTITY, subjects identity.>).

Personal data on the bus is limited to what consumers need: the subject id (a consumer such as
caseflow needs to know whose case it is) and the real-name level; never phone numbers or passwords.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from kit.events import EventData


class PersonRegistered(EventData):
    event_type: ClassVar[str] = "yiwang.identity.person.registered.v1"
    nats_subject: ClassVar[str] = "identity.person.registered"
    id_number: str = Field(min_length=18, max_length=18, description="resident ID number (GB 11643)")
    level: int = Field(ge=1, le=4)
    name: str | None = Field(default=None, description="the name as declared at registration (not yet verified)")
    registered_at: datetime


class PersonVerified(EventData):
    event_type: ClassVar[str] = "yiwang.identity.person.verified.v1"
    nats_subject: ClassVar[str] = "identity.person.verified"
    id_number: str = Field(min_length=18, max_length=18)
    level: int = Field(ge=1, le=4)
    method: Literal["registry", "face", "counter"]
    verified_by: str | None = Field(default=None, description="officer login for counter checks")
    name: str | None = Field(default=None, description="the name the verification confirmed")
    verified_at: datetime


class EnterpriseRegistered(EventData):
    event_type: ClassVar[str] = "yiwang.identity.enterprise.registered.v1"
    nats_subject: ClassVar[str] = "identity.enterprise.registered"
    uscc: str = Field(min_length=18, max_length=18, description="unified social credit code (GB 32100)")
    name: str = Field(description="the enterprise's name as the enterprise registry records it")
    legal_representative: str = Field(min_length=18, max_length=18)
    registered_at: datetime


class AgentGranted(EventData):
    event_type: ClassVar[str] = "yiwang.identity.agent.granted.v1"
    nats_subject: ClassVar[str] = "identity.agent.granted"
    mandate_id: str
    enterprise_uscc: str
    agent_id_number: str
    scopes: list[str]
    expires_at: datetime
    granted_by: str


class AgentRevoked(EventData):
    event_type: ClassVar[str] = "yiwang.identity.agent.revoked.v1"
    nats_subject: ClassVar[str] = "identity.agent.revoked"
    mandate_id: str
    enterprise_uscc: str
    agent_id_number: str
    revoked_at: datetime


class TokensRevoked(EventData):
    """Access tokens that must be refused before their own expiry (logout, a revoked mandate, an
    officer changed or disabled, a stolen refresh token). Every token verifier (the gateway and each
    service, through kit.auth) keeps these entries in memory until ``until`` and refuses a token when
    an entry matches it and the token was issued at or before ``issued_before``:
    - ``session_id`` set: the token's ``sid`` equals it;
    - otherwise ``subject`` set: the token's ``sub`` equals it, and, when ``actor`` is set, the token's
      ``act.sub`` equals ``actor`` (an act-as token of that agent for that enterprise).
    A token a counter officer made for a person (claim ``hlp``) matches the officer's entries as
    well: a session entry when ``hlp.sid`` equals it, a subject entry (no actor) when ``hlp.sub``
    equals it — an officer's logout or disabling ends the counter tokens they made (ADR 0025).
    """

    event_type: ClassVar[str] = "yiwang.identity.tokens.revoked.v1"
    nats_subject: ClassVar[str] = "identity.tokens.revoked"
    reason: Literal["logout", "session_revoked", "refresh_reuse", "mandate_revoked", "officer_changed"]
    session_id: str | None = None
    subject: str | None = None
    actor: str | None = Field(default=None, description="with subject: only act-as tokens of this person")
    issued_before: datetime = Field(description="tokens issued at or before this instant are refused")
    until: datetime = Field(description="when the last token it can match expires; verifiers forget it then")


class KioskChanged(EventData):
    """A self-service kiosk was registered, had its secret rotated, or was revoked (ADR 0025). No
    secret travels: the gateway reloads the kiosks' keys from identity's internal ``GET /kiosks/keys``
    at once when it sees this, so a revoked kiosk is refused within a second."""

    event_type: ClassVar[str] = "yiwang.identity.kiosk.changed.v1"
    nats_subject: ClassVar[str] = "identity.kiosk.changed"
    device_id: str = Field(description="the kiosk's device id, e.g. KIOSK-370102-01")
    hall_code: str = Field(description="the hall it stands in, e.g. HALL-370102")
    change: Literal["registered", "secret_rotated", "revoked"]
    at: datetime
