"""Loading reference data and published matters: used by the demo seed and the synthetic catalog."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.catalog import BundlePublished
from kit.auth import Principal
from kit.events import envelope
from services.catalog import matters
from services.catalog.domain.guide import Guide
from services.catalog.models import Bundle, Department, Division, MatterIndex, MatterVersion, outbox

# The seed acts as the platform administrator (identity's ADMIN department).
SEED_PRINCIPAL = Principal(subject="officer:seed-demo", kind="officer", level=4, roles=("admin",), department="ADMIN")


async def upsert_directory(session: AsyncSession, divisions: list[dict], departments: list[dict]) -> None:
    for values in divisions:
        if await session.get(Division, values["code"]) is None:
            session.add(Division(**values))
    await session.flush()
    for values in departments:
        if await session.get(Department, values["code"]) is None:
            session.add(Department(**values))
    await session.flush()


async def seed_matters(session: AsyncSession, guides: Iterable[dict[str, Any]]) -> int:
    """Draft and publish each guide whose code is new, through the same rules as the API."""
    created = 0
    for data in guides:
        guide = matters.parse_guide(data)
        exists = await session.scalar(select(MatterVersion.id).where(MatterVersion.code == guide.code).limit(1))
        if exists is not None:
            continue
        row = await matters.create_draft(session, guide=guide, principal=SEED_PRINCIPAL)
        await matters.publish(session, code=row.code, version=row.version, principal=SEED_PRINCIPAL)
        created += 1
    return created


async def upsert_bundles(session: AsyncSession, bundles: list[dict[str, Any]]) -> None:
    """Store new bundles and announce each (``catalog.bundle.published``): caseflow takes bundle
    applications only for bundles it has heard of."""
    for values in bundles:
        if await session.get(Bundle, values["code"]) is None:
            now = datetime.now(UTC)
            session.add(
                Bundle(
                    code=values["code"],
                    name=values["name"],
                    description=values.get("description", ""),
                    themes=",".join(values.get("themes", [])),
                    matter_codes=json.dumps(values["matter_codes"], ensure_ascii=False),
                    created_at=now,
                )
            )
            event = BundlePublished(code=values["code"], name=values["name"], description=values.get("description", ""),
                                    matter_codes=values["matter_codes"], published_at=now)  # fmt: skip
            await outbox.add(session, envelope(event, subject=values["code"]))
    await session.flush()


async def bulk_publish(session: AsyncSession, guides: list[Guide], *, created_by: str = "synthetic") -> None:
    """Insert complete guides as published version 1 in bulk, without events (benchmark data)."""
    now = datetime.now(UTC)
    versions = [
        {
            "code": g.code,
            "version": 1,
            "status": "published",
            "name": g.name,
            "department": g.department,
            "guide": g.model_dump_json(),
            "effective_from": now.date(),
            "created_at": now,
            "created_by": created_by,
            "updated_at": now,
            "published_at": now,
            "published_by": created_by,
        }
        for g in guides
    ]
    await session.execute(insert(MatterVersion), versions)
    await session.execute(insert(MatterIndex), [matters.index_row(g, 1) for g in guides])
    await matters.bump_revision(session)
