"""Identity's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.consumer import make_inbox_table
from kit.db import UtcDateTime
from kit.outbox import Outbox, make_outbox_table


class Base(DeclarativeBase):
    """Identity's own metadata: no other service's tables in its migrations."""


TS = UtcDateTime()


class Person(Base):
    __tablename__ = "persons"
    id_number: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # A walk-in made known at the counter or a kiosk (ADR 0025) has neither: no login opens it.
    mobile: Mapped[str | None] = mapped_column(String(20), unique=True, nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    level_source: Mapped[str] = mapped_column(String(40), default="registration")
    created_at: Mapped[datetime] = mapped_column(TS)
    verified_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class Enterprise(Base):
    """A bound enterprise: name, legal representative and status as the enterprise registry said
    when it was bound (never what the applicant typed)."""

    __tablename__ = "enterprises"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    registry_status: Mapped[str] = mapped_column(String(20), default="存续")
    legal_representative: Mapped[str] = mapped_column(ForeignKey("persons.id_number"), index=True)
    created_at: Mapped[datetime] = mapped_column(TS)


class Mandate(Base):
    """委托: an enterprise lets a person act for it, for some scopes, until an expiry."""

    __tablename__ = "mandates"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    enterprise_uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"), index=True)
    agent_id_number: Mapped[str] = mapped_column(ForeignKey("persons.id_number"), index=True)
    scopes: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(TS)
    granted_by: Mapped[str] = mapped_column(String(18))
    created_at: Mapped[datetime] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class Officer(Base):
    __tablename__ = "officers"
    login: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(40), index=True)
    roles: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    changed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class LoginGuard(Base):
    """One row per login name under attack: the password checks it may still make.

    A login claims a slot here (a conditional UPDATE, atomic on SQLite and PostgreSQL) before the
    password is verified, so parallel guesses cannot pass the limit (docs/adr/0009-identity-trust.md).
    ``attempts`` counts failures and checks in flight inside the window that began at
    ``window_started_at``; ``locked_until`` is set when the last allowed check failed.
    """

    __tablename__ = "login_guards"
    account: Mapped[str] = mapped_column(String(80), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(TS)
    locked_until: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class LoginSession(Base):
    """A login and its refresh-token family; revoked by logout or by refresh-token reuse."""

    __tablename__ = "login_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account: Mapped[str] = mapped_column(String(80), index=True)
    method: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("login_sessions.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(TS)
    used_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class SmsCode(Base):
    __tablename__ = "sms_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mobile: Mapped[str] = mapped_column(String(20), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(TS)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class WeChatBinding(Base):
    __tablename__ = "wechat_bindings"
    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    id_number: Mapped[str] = mapped_column(ForeignKey("persons.id_number"), index=True)
    created_at: Mapped[datetime] = mapped_column(TS)


class SigningKey(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS)


class Kiosk(Base):
    """A 7×24 self-service kiosk (自助终端) of a hall: its HMAC secret is stored sealed
    (kit.secretbox, bound to the device id) and shown once, when made or rotated."""

    __tablename__ = "kiosks"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hall_code: Mapped[str] = mapped_column(String(40), index=True)
    department: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    location: Mapped[str] = mapped_column(String(200))
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(64))
    rotated_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class KioskNonce(Base):
    """Nonces of kiosk-signed requests identity accepted, kept for twice the signature window: a
    replay is refused by the primary key, across replicas."""

    __tablename__ = "kiosk_nonces"
    key: Mapped[str] = mapped_column(String(140), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(TS, index=True)


outbox = Outbox(make_outbox_table(Base.metadata))
inbox = make_inbox_table(Base.metadata)
metadata = Base.metadata
