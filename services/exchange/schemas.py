"""Request and response bodies of exchange's inbound API (partners, pushes, receipts' keys)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kit.pagination import Page
from kit.text import Line

PARTNER_ID = r"^[a-z0-9][a-z0-9-]{2,63}$"
DEPARTMENT_CODE = r"^[A-Z0-9][A-Z0-9_-]{1,39}$"  # catalog codes: SCJGJ, GAJ-DC
# Words the API uses beside partner ids in its paths: no partner may be called so.
RESERVED_PARTNER_IDS = frozenset({"keys"})


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
