"""Request and response bodies of exchange's API: the inbound half's (partners, pushes, the
partners' keys; ADR 0019) and the outbound half's (subscriptions, deliveries; ADR 0020)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from contracts.departments import WebhookType
from kit.pagination import Page
from kit.text import Line

PARTNER_ID = r"^[a-z0-9][a-z0-9-]{2,63}$"
DEPARTMENT_CODE = r"^[A-Z0-9][A-Z0-9_-]{1,39}$"  # catalog codes: SCJGJ, GAJ-DC
# Words the API uses beside partner ids in its paths: no partner may be called so.
RESERVED_PARTNER_IDS = frozenset({"keys"})
# ?department= on every list (partners, pushes, subscriptions, deliveries).
DepartmentFilter = Annotated[str | None, Query(max_length=40, pattern=DEPARTMENT_CODE)]
DeliveryStatus = Literal["pending", "delivered", "dead"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartnerIn(_In):
    id: str = Field(
        pattern=PARTNER_ID, description="the X-Partner-Id the department system signs with, e.g. dept-bdcdj"
    )
    department: str = Field(pattern=DEPARTMENT_CODE, description="the department (catalog code) it pushes for")
    name: Line = Field(min_length=1, max_length=200)


class RevokeIn(_In):
    reason: Line = Field(min_length=1, max_length=500)


class KeyOut(BaseModel):
    key_id: str
    status: Literal["active", "revoked"]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class PartnerOut(BaseModel):
    id: str
    department: str
    name: str
    status: Literal["active", "revoked"]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_reason: str | None
    version: int
    keys: list[KeyOut]


class NewKey(BaseModel):
    key_id: str
    secret: str = Field(description="shown only in this answer: store it in the department system now")


class PartnerWithKey(BaseModel):
    partner: PartnerOut
    key: NewKey


class PartnerPage(Page[PartnerOut]):
    pass


class PushOut(BaseModel):
    receipt_id: str
    department: str
    partner: str
    key_id: str | None
    event_id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    body_sha256: str
    status: Literal["received", "applied", "refused"]
    outcome: dict[str, Any] | None
    settled_at: datetime | None
    case_no: str | None
    licence_id: str | None
    body: dict[str, Any] | None = None


class PushPage(Page[PushOut]):
    pass


class PartnerKeysOut(BaseModel):
    secrets: list[str]
    paths: list[str]


# ---- outbound (ADR 0020) ----------------------------------------------------------------------
class SubscriptionIn(_In):
    department: str = Field(pattern=DEPARTMENT_CODE, description="the department whose cases the endpoint receives")
    url: str = Field(min_length=1, max_length=2000, description="https (http only on a sandbox platform)")
    event_types: list[WebhookType] = Field(min_length=1, max_length=10)
    secret: SecretStr | None = Field(
        default=None, description="whsec_ + base64 of 24–32 bytes, when the department system has one; else made here"
    )


class SubscriptionOut(BaseModel):
    id: str
    department: str
    url: str
    event_types: list[str]
    status: Literal["active", "disabled"]
    created_at: datetime
    created_by: str
    updated_at: datetime | None
    previous_secret_until: datetime | None = Field(description="the previous secret signs too until then")
    version: int


class SubscriptionWithSecret(SubscriptionOut):
    secret: str = Field(description="whsec_…: shown this once; verify the webhooks with it")


class SubscriptionPage(Page[SubscriptionOut]):
    pass


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: str = Field(description="msg_…: the webhook-id header, the same on every try")
    subscription_id: str
    department: str
    type: str
    ordering_key: str
    sequence: int
    source_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any]
    attempt_log: list[AttemptOut]


class DeliveryPage(Page[DeliveryOut]):
    pass


class ReplayOut(BaseModel):
    subscription_id: str
    replayed: int
    since: datetime | None
