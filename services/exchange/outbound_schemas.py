"""Request and response models of the outbound admin API (subscriptions, deliveries)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from contracts.departments import WebhookType

DEPARTMENT = r"^[A-Za-z0-9_-]{1,40}$"
DeliveryStatus = Literal["pending", "delivered", "dead"]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department: str = Field(pattern=DEPARTMENT, description="the department whose cases the endpoint receives")
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


class SubscriptionPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[SubscriptionOut]


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


class DeliveryPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[DeliveryOut]


class ReplayOut(BaseModel):
    subscription_id: str
    replayed: int
    since: datetime | None
