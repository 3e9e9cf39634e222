"""Exchange's tables (ADR 0019).

Inbound — ``partners`` is a department system allowed to push for one department; its
``partner_keys`` are HMAC secrets (ADR 0003 scheme), more than one active during a rotation,
stored encrypted (``secret_ciphertext``, AES-GCM under EXCHANGE_SECRETS_KEY) because the platform
must recompute the HMAC. ``pushes`` is every push that passed its schema: ``UNIQUE (department,
event_id)`` makes a push idempotent by the department's own event id; its id is the receipt id.

Outbound — ``subscriptions`` is a department system's webhook endpoint (its Standard Webhooks
secret stored encrypted as well); ``case_departments`` says which departments a case belongs to
(its own, its branches), so a department only ever receives its own cases; ``deliveries`` is one
webhook to one subscription, ``sequence`` ordering it within its ``ordering_key`` (the case, or the
push), ``attempts`` the tries it took. ``inbox``/``outbox``: the kit's exactly-once consumption and
publishing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.consumer import make_inbox_table
from kit.db import UtcDateTime
from kit.outbox import Outbox, make_outbox_table


class Base(AsyncAttrs, DeclarativeBase):
    """Exchange's own metadata: no other service's tables in its migrations."""


TS = UtcDateTime()
BigId = BigInteger().with_variant(Integer, "sqlite")


# ---- inbound -------------------------------------------------------------------------------------
class Partner(Base):
    """A department system that may push for ``department`` (its id goes in X-Partner-Id)."""

    __tablename__ = "partners"
    __table_args__ = (Index("ix_partners_department", "department"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # e.g. dept-BDCDJ
    department: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | revoked
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class PartnerKey(Base):
    """One HMAC secret of a partner; several are active while a rotation is under way."""

    __tablename__ = "partner_keys"
    __table_args__ = (Index("ix_partner_keys_partner", "partner_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # key id, e.g. pk_…
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | revoked
    created_at: Mapped[datetime] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class InboundPush(Base):
    """A push that passed its schema; its id is the receipt id."""

    __tablename__ = "pushes"
    __table_args__ = (
        UniqueConstraint("department", "event_id", name="uq_pushes_department_event"),
        Index("ix_pushes_department_received", "department", "received_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # receipt id
    department: Mapped[str] = mapped_column(String(40))
    partner_id: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the key whose HMAC matched
    event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(TS)
    received_at: Mapped[datetime] = mapped_column(TS)
    body_sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the body as received (JSON text)
    status: Mapped[str] = mapped_column(String(10), default="received")  # received | applied | refused
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)  # the settled event's data (JSON)
    settled_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    case_no: Mapped[str | None] = mapped_column(String(40), nullable=True)
    licence_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


# ---- outbound ------------------------------------------------------------------------------------
class Subscription(Base):
    """A department system's webhook endpoint and the event types it wants."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_department", "department"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # sub_…
    department: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(500))
    event_types: Mapped[str] = mapped_column(Text)  # JSON list of contracts.departments.WebhookType
    secret_ciphertext: Mapped[str] = mapped_column(Text)  # whsec_… encrypted
    # After a rotation the old secret signs too (a second v1 signature) until then: the department
    # switches its verifier without losing a delivery.
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_until: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | disabled
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class CaseDepartment(Base):
    """A department a case belongs to (its own or a branch's): the only cases it receives."""

    __tablename__ = "case_departments"
    case_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    department: Mapped[str] = mapped_column(String(40), primary_key=True)
    lead_department: Mapped[str] = mapped_column(String(40))
    matter_code: Mapped[str] = mapped_column(String(64))
    applicant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    added_at: Mapped[datetime] = mapped_column(TS)


class Delivery(Base):
    """One webhook to one subscription; delivered in ``sequence`` order within ``ordering_key``."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "source_id", name="uq_deliveries_subscription_source"),
        UniqueConstraint("subscription_id", "ordering_key", "sequence", name="uq_deliveries_order"),
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_deliveries_department_created", "department", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msg_… (the webhook-id header)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"))
    department: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(80))  # the event (or push) it reports: one delivery each
    ordering_key: Mapped[str] = mapped_column(String(80))  # case:<case_no> or push:<push_id>
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)  # the webhook body (JSON text), signed as is
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TS)
    # Set while a worker is sending it: no other replica claims it before then (a crashed worker's
    # claim runs out). Kept apart from next_attempt_at, which an endpoint's recovery brings forward.
    claimed_until: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    delivered_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class DeliveryAttempt(Base):
    """One try of a delivery, as an admin sees it."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery", "delivery_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"))
    at: Mapped[datetime] = mapped_column(TS)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


outbox = Outbox(make_outbox_table(Base.metadata))
inbox = make_inbox_table(Base.metadata)
metadata = Base.metadata
