"""The matter definitions caseflow keeps: every published version, from catalog's events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.catalog import BundlePublished, MatterPublished, MatterRetired
from kit.driver import Driver, Query, Transaction
from kit.events import CloudEvent
from services.caseflow.models import BundleDefinition, MatterDefinition
from services.caseflow.reference import cached, cached_on, forget_on_commit


@dataclass(frozen=True)
class Matter:
    """A published matter version as caseflow uses it; ``definition`` is shared: read it, never change it."""

    code: str
    version: int
    name: str
    department: str
    retired: bool
    definition: dict[str, Any]


async def store_published(session: AsyncSession, data: MatterPublished) -> None:
    """Keep the version (a replay of the same version changes nothing: published versions never change)."""
    existing = await session.get(MatterDefinition, (data.code, data.version))
    if existing is not None:
        return
    session.add(
        MatterDefinition(
            code=data.code,
            version=data.version,
            name=data.name,
            department=data.department,
            definition=data.model_dump_json(),
            retired=False,
            received_at=datetime.now(UTC),
        )
    )
    await session.flush()
    forget_on_commit(session, "matters")


async def on_matter_published(session: AsyncSession, event: CloudEvent) -> None:
    await store_published(session, MatterPublished.model_validate(event.data))


async def on_matter_retired(session: AsyncSession, event: CloudEvent) -> None:
    """The versions up to the one retired take no new cases; a later version (published after the
    retirement, its event possibly applied first: ADR 0030) stays open."""
    data = MatterRetired.model_validate(event.data)
    await session.execute(
        update(MatterDefinition)
        .where(MatterDefinition.code == data.code, MatterDefinition.version <= data.version)
        .values(retired=True)
    )
    forget_on_commit(session, "matters")


async def get_matter(
    session: AsyncSession, code: str, version: int | None = None, *, include_retired: bool = False
) -> Matter | None:
    """A given version, or the newest one; retired matters take no new cases. Served from memory
    for a few seconds (published versions never change; a retirement is seen within the TTL)."""

    async def read() -> Matter | None:
        query = select(MatterDefinition).where(MatterDefinition.code == code)
        if version is not None:
            query = query.where(MatterDefinition.version == version)
        if not include_retired:
            query = query.where(MatterDefinition.retired.is_(False))
        row = (await session.execute(query.order_by(MatterDefinition.version.desc()).limit(1))).scalar_one_or_none()
        return None if row is None else _matter(row.code, row.version, row.name, row.department, row.retired,
                                                row.definition)  # fmt: skip

    return await cached(session, "matters", (code, version, include_retired), read)


def _matter(code: str, version: int, name: str, department: str, retired: bool, definition: str) -> Matter:
    return Matter(code=code, version=version, name=name, department=department, retired=retired,
                  definition=json.loads(definition))  # fmt: skip


_MATTERS = MatterDefinition.__table__
# get_matter's statement for the driver, per (version given, retired included): built once each.
_MATTER_ON = {
    (versioned, include_retired): Query(
        select(_MATTERS)
        .where(_MATTERS.c.code == bindparam("matter_code"))
        .where(*([_MATTERS.c.version == bindparam("matter_version")] if versioned else []))
        .where(*([] if include_retired else [_MATTERS.c.retired.is_(False)]))
        .order_by(_MATTERS.c.version.desc())
        .limit(1)
    )
    for versioned in (False, True)
    for include_retired in (False, True)
}


async def get_matter_on(db: Driver, code: str, version: int | None = None, *, include_retired: bool = False,
                        tx: Transaction | None = None) -> Matter | None:  # fmt: skip
    """``get_matter`` for a hot path on the driver (the same cache), read in ``tx`` when the caller
    holds one: a second pooled connection, waited for while holding the first, could wait for ever."""

    async def read() -> Matter | None:
        query = _MATTER_ON[version is not None, include_retired]
        row = await (tx or db).fetchrow(query, {"matter_code": code, "matter_version": version})
        if row is None:
            return None
        return _matter(row["code"], row["version"], row["name"], row["department"], row["retired"], row["definition"])

    return await cached_on(db, "matters", (code, version, include_retired), read)


async def on_bundle_published(session: AsyncSession, event: CloudEvent) -> None:
    """Keep the bundle (a republished bundle replaces its members for new applications)."""
    data = BundlePublished.model_validate(event.data)
    existing = await session.get(BundleDefinition, data.code)
    if existing is None:
        existing = BundleDefinition(code=data.code)
        session.add(existing)
    existing.name, existing.matter_codes = data.name, json.dumps(data.matter_codes, ensure_ascii=False)
    existing.received_at = datetime.now(UTC)
    await session.flush()
    forget_on_commit(session, "bundles")


async def get_bundle(session: AsyncSession, code: str) -> dict[str, Any] | None:
    """The bundle as {code, name, matter_codes}, or None; served from memory for a few seconds."""

    async def read() -> dict[str, Any] | None:
        row = await session.get(BundleDefinition, code)
        if row is None:
            return None
        return {"code": row.code, "name": row.name, "matter_codes": json.loads(row.matter_codes)}

    return await cached(session, "bundles", code, read)
