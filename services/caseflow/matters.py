"""The matter definitions caseflow keeps: every published version, from catalog's events."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.catalog import MatterPublished, MatterRetired
from kit.events import CloudEvent
from services.caseflow.models import MatterDefinition


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


async def on_matter_published(session: AsyncSession, event: CloudEvent) -> None:
    await store_published(session, MatterPublished.model_validate(event.data))


async def on_matter_retired(session: AsyncSession, event: CloudEvent) -> None:
    data = MatterRetired.model_validate(event.data)
    await session.execute(update(MatterDefinition).where(MatterDefinition.code == data.code).values(retired=True))


async def get_matter(
    session: AsyncSession, code: str, version: int | None = None, *, include_retired: bool = False
) -> MatterDefinition | None:
    """A given version, or the newest one; retired matters take no new cases."""
    query = select(MatterDefinition).where(MatterDefinition.code == code)
    if version is not None:
        query = query.where(MatterDefinition.version == version)
    if not include_retired:
        query = query.where(MatterDefinition.retired.is_(False))
    return (await session.execute(query.order_by(MatterDefinition.version.desc()).limit(1))).scalar_one_or_none()
