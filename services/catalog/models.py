"""Catalog's tables.

``matter_versions`` holds every version's guide (a JSON document) and its lifecycle;
``matter_index`` is narrow on purpose: one row per code whose latest published version is
searchable, with the filter columns and the search text, so a search scans little.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.consumer import make_inbox_table
from kit.db import UtcDateTime
from kit.outbox import Outbox, make_outbox_table


class Base(DeclarativeBase):
    """Catalog's own metadata: no other service's tables in its migrations."""


TS = UtcDateTime()


class Division(Base):
    """行政区划 (GB/T 2260 six-digit code)."""

    __tablename__ = "divisions"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(20))
    parent_code: Mapped[str | None] = mapped_column(String(6), nullable=True)


class Department(Base):
    __tablename__ = "departments"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    parent_code: Mapped[str | None] = mapped_column(String(40), nullable=True)


class MatterVersion(Base):
    __tablename__ = "matter_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # draft | published | retired
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(40), index=True)
    guide: Mapped[str] = mapped_column(Text)  # Guide as JSON
    effective_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    effective_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(TS)
    published_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    __table_args__ = (
        UniqueConstraint("code", "version", name="uq_matter_versions_code_version"),
        Index("ix_matter_versions_code_status", "code", "status"),
    )


class MatterIndex(Base):
    """The searchable current version of each published matter."""

    __tablename__ = "matter_index"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    name_initials: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(40), index=True)
    matter_type: Mapped[str] = mapped_column(String(20))
    for_person: Mapped[bool] = mapped_column(Boolean)
    for_enterprise: Mapped[bool] = mapped_column(Boolean)
    depth: Mapped[int] = mapped_column(Integer)
    max_visits: Mapped[int] = mapped_column(Integer)
    online: Mapped[bool] = mapped_column(Boolean)
    themes: Mapped[str] = mapped_column(String(400))  # ",birth,housing," for LIKE '%,birth,%'
    search_text: Mapped[str] = mapped_column(Text)


class CatalogRevision(Base):
    """One row, bumped with every publish and retire: tells replicas their search index is stale."""

    __tablename__ = "catalog_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)


class Bundle(Base):
    """套餐 / 一件事: several matters applied for with one form."""

    __tablename__ = "bundles"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    themes: Mapped[str] = mapped_column(String(400), default="")
    matter_codes: Mapped[str] = mapped_column(Text)  # JSON list, in application order
    created_at: Mapped[datetime] = mapped_column(TS)


outbox = Outbox(make_outbox_table(Base.metadata))
inbox = make_inbox_table(Base.metadata)
metadata = Base.metadata
