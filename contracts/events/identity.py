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
    registered_at: datetime


class PersonVerified(EventData):
    event_type: ClassVar[str] = "yiwang.identity.person.verified.v1"
    nats_subject: ClassVar[str] = "identity.person.verified"
    id_number: str = Field(min_length=18, max_length=18)
    level: int = Field(ge=1, le=4)
    method: Literal["registry", "face", "counter"]
    verified_by: str | None = Field(default=None, description="officer login for counter checks")
    verified_at: datetime


class EnterpriseRegistered(EventData):
    event_type: ClassVar[str] = "yiwang.identity.enterprise.registered.v1"
    nats_subject: ClassVar[str] = "identity.enterprise.registered"
    uscc: str = Field(min_length=18, max_length=18, description="unified social credit code (GB 32100)")
    name: str
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
