"""Licence's tables.

``licence_types`` is the licence catalogue (证照目录) with its data schema and the catalog
materials a licence of the type can stand for; ``issuers`` the issuing departments with their
credit codes (the GB/T 36904 issuer code); ``licence_type_issuers`` who issues what.
``licences`` holds GB/T 36903 metadata and the data printed on each licence; it is read by holder
(index holder, status — a wallet among 10M rows), by identifier (unique) and by the timer
(status, valid_until); ``UNIQUE (case_no, type_code)`` makes an approved case's licence exist once.
``licence_serials`` counts numbers per issuer and year; ``department_pushes`` the certificates
department systems pushed (one row per push id: idempotent); ``access_log`` records every read that was
not the holder's; ``service_nonces`` the internal callers' nonces (a replayed /checks is refused).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.consumer import make_inbox_table
from kit.db import UtcDateTime
from kit.outbox import Outbox, make_outbox_table


class Base(AsyncAttrs, DeclarativeBase):
    """Licence's own metadata: no other service's tables in its migrations."""


TS = UtcDateTime()
# 64-bit ids on PostgreSQL (10M licences and their reads), INTEGER PRIMARY KEY (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer, "sqlite")


class LicenceType(Base):
    """A kind of licence (证照类型), e.g. business_licence 营业执照."""

    __tablename__ = "licence_types"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    national_type_code: Mapped[str] = mapped_column(String(64), unique=True)  # GB/T 36904 证照类型代码
    validity_years: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: 长期
    number_rule: Mapped[str] = mapped_column(String(20), default="serial")
    holder_kinds: Mapped[str] = mapped_column(Text)  # JSON list: person, enterprise
    data_schema: Mapped[str] = mapped_column(Text)  # JSON Schema of the data printed on it
    satisfies: Mapped[str] = mapped_column(Text)  # JSON list of catalog material names
    default_issuer: Mapped[str | None] = mapped_column(String(40), nullable=True)


class Issuer(Base):
    """An issuing department (发证机构)."""

    __tablename__ = "issuers"
    department: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    issuer_code: Mapped[str] = mapped_column(String(18), unique=True)  # its 统一社会信用代码
    division_code: Mapped[str] = mapped_column(String(6))


class LicenceTypeIssuer(Base):
    """Which departments issue which types."""

    __tablename__ = "licence_type_issuers"
    type_code: Mapped[str] = mapped_column(ForeignKey("licence_types.code"), primary_key=True)
    department: Mapped[str] = mapped_column(ForeignKey("issuers.department"), primary_key=True)


class Licence(Base):
    """One e-licence (GB/T 36903 metadata + its data)."""

    __tablename__ = "licences"
    __table_args__ = (
        UniqueConstraint("case_no", "type_code", name="uq_licences_case_type"),
        Index("ix_licences_holder_status", "holder", "status"),
        Index("ix_licences_status_valid_until", "status", "valid_until"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    identifier: Mapped[str] = mapped_column(String(128), unique=True)  # GB/T 36904 电子证照标识
    name: Mapped[str] = mapped_column(String(100))  # 证照名称
    type_code: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64))  # 证照编号
    issuer: Mapped[str] = mapped_column(String(40))  # issuing department code
    issuer_code: Mapped[str] = mapped_column(String(18))
    issuer_name: Mapped[str] = mapped_column(String(100))
    issued_on: Mapped[date] = mapped_column(Date)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    holder: Mapped[str] = mapped_column(String(18))
    holder_name: Mapped[str] = mapped_column(String(200))
    holder_code_type: Mapped[str] = mapped_column(String(3))  # 111 ID number, 001 credit code
    jurisdiction: Mapped[str] = mapped_column(String(6))  # division code of the issuer's area
    data: Mapped[str] = mapped_column(Text)  # JSON
    status: Mapped[str] = mapped_column(String(12), default="valid")
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    source: Mapped[str] = mapped_column(String(10))  # case | officer | import | department
    case_no: Mapped[str | None] = mapped_column(String(40), nullable=True)
    issued_by: Mapped[str] = mapped_column(String(80))  # officer login, "caseflow" or the importer
    # The valid_until for which the "expiring" reminder went out (a renewal opens a new window).
    expiring_notice_for: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class LicenceSerial(Base):
    """The last serial given per issuer and year (numbers and identifiers draw from it)."""

    __tablename__ = "licence_serials"
    issuer: Mapped[str] = mapped_column(String(40), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class AccessEntry(Base):
    """One read of a licence by someone other than its holder, or one print by the holder's side
    (``action`` print: from which channel and, at a kiosk, which device — never an ID number)."""

    __tablename__ = "access_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    reader: Mapped[str] = mapped_column(String(80))
    reader_kind: Mapped[str] = mapped_column(String(10))  # officer | service | holder | agent
    case_no: Mapped[str | None] = mapped_column(String(40), nullable=True)
    purpose: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(TS)
    action: Mapped[str] = mapped_column(String(10), default="read", server_default="read")  # read | print
    channel: Mapped[str | None] = mapped_column(String(10), nullable=True)  # online | counter | kiosk
    device: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the kiosk's device id


class DepartmentPush(Base):
    """A department's certificate push (forwarded by exchange) and what became of it: the push id is
    taken here first, in the transaction that stores the licence, so a push re-forwarded under
    another event id stores nothing twice and is settled once."""

    __tablename__ = "department_pushes"
    push_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    department: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(10))  # applied | refused
    licence_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("licences.id"), nullable=True)
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    received_at: Mapped[datetime] = mapped_column(TS)


class ServiceNonce(Base):
    """Nonces of signed internal requests, kept for twice the accepted clock skew."""

    __tablename__ = "service_nonces"
    partner: Mapped[str] = mapped_column(String(40), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(TS, index=True)


outbox = Outbox(make_outbox_table(Base.metadata))
inbox = make_inbox_table(Base.metadata)
metadata = Base.metadata
