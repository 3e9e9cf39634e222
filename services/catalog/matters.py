"""Matters: drafts, publishing, retiring, versions, diff, detail and search."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.catalog import MatterPublished, MatterRetired
from kit.auth import Principal
from kit.driver import Driver, Query
from kit.errors import Problem
from kit.events import envelope
from services.catalog.domain import completeness
from services.catalog.domain import diff as diffs
from services.catalog.domain.access import require_admin_of
from services.catalog.domain.guide import Guide
from services.catalog.domain.instant import reference_errors
from services.catalog.domain.query import MatterQuery
from services.catalog.domain.search_text import (
    escape_like,
    normalise,
    pinyin_initials,
    query_words,
    search_text,
)
from services.catalog.domain.themes import unknown_themes
from services.catalog.models import CatalogRevision, Department, MatterIndex, MatterVersion, outbox


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"{what} does not exist")


def guide_of(row: MatterVersion) -> Guide:
    return Guide.model_validate_json(row.guide)


def version_out(row: MatterVersion | SimpleNamespace, *, with_guide: bool = True) -> dict[str, Any]:
    """A version as the API shows it (a ``MatterVersion``, or a driver's row as a namespace)."""
    out: dict[str, Any] = {
        "code": row.code,
        "version": row.version,
        "status": row.status,
        "name": row.name,
        "department": row.department,
        "effective_from": row.effective_from.isoformat() if row.effective_from else None,
        "effective_to": row.effective_to.isoformat() if row.effective_to else None,
        "created_at": row.created_at.isoformat(),
        "published_at": row.published_at.isoformat() if row.published_at else None,
        "retired_at": row.retired_at.isoformat() if row.retired_at else None,
    }
    if with_guide:
        out["guide"] = json.loads(row.guide)
    return out


def actor_of(principal: Principal) -> str:
    return principal.subject


async def _check_references(session: AsyncSession, guide: Guide) -> None:
    departments = {guide.department, *guide.parallel_departments}
    known = set((await session.scalars(select(Department.code).where(Department.code.in_(departments)))).all())
    errors = []
    if guide.department not in known:
        errors.append({"field": "department", "rule": "known_department", "message": f"{guide.department} unknown"})
    for index, code in enumerate(guide.parallel_departments):
        if code not in known:
            errors.append(
                {"field": f"parallel_departments.{index}", "rule": "known_department", "message": f"{code} unknown"}
            )
    for theme in unknown_themes(guide.themes):
        errors.append({"field": "themes", "rule": "known_theme", "message": f"{theme} is not a theme"})
    errors.extend(reference_errors(guide))  # 秒批 rules, prefill, channels, payment
    if errors:
        raise Problem(422, "validation", "Request is not valid", errors[0]["message"], errors=errors)


async def _versions(session: AsyncSession, code: str) -> list[MatterVersion]:
    rows = await session.scalars(
        select(MatterVersion).where(MatterVersion.code == code).order_by(MatterVersion.version)
    )
    return list(rows.all())


async def get_version(session: AsyncSession, *, code: str, version: int, lock: bool = False) -> MatterVersion:
    """One version; ``lock`` holds its row (PostgreSQL) so two publishes of one draft serialise."""
    query = select(MatterVersion).where(MatterVersion.code == code, MatterVersion.version == version)
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise not_found(f"matter {code} version {version}")
    return row


async def create_draft(session: AsyncSession, *, guide: Guide, principal: Principal) -> MatterVersion:
    """A new matter (version 1), or the next version of an existing one; one open draft at a time."""
    require_admin_of(principal, guide.department)
    await _check_references(session, guide)
    versions = await _versions(session, guide.code)
    if versions:
        require_admin_of(principal, versions[-1].department)
        if any(v.status == "draft" for v in versions):
            raise Problem(409, "draft-exists", "A draft exists", f"matter {guide.code} already has an open draft")
    now = datetime.now(UTC)
    row = MatterVersion(
        code=guide.code,
        version=(versions[-1].version + 1) if versions else 1,
        status="draft",
        name=guide.name,
        department=guide.department,
        guide=guide.model_dump_json(),
        created_at=now,
        created_by=actor_of(principal),
        updated_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:  # another editor created the same version a moment ago
        raise Problem(409, "draft-exists", "A draft exists", f"matter {guide.code} changed meanwhile") from exc
    return row


async def update_draft(
    session: AsyncSession, *, code: str, version: int, guide: Guide, principal: Principal
) -> MatterVersion:
    """Replace a draft's guide; published and retired versions never change."""
    row = await get_version(session, code=code, version=version, lock=True)
    require_admin_of(principal, row.department)
    require_admin_of(principal, guide.department)
    if row.status != "draft":
        raise Problem(409, "version-immutable", "Version is immutable", f"version {version} is {row.status}")
    if guide.code != code:
        raise Problem(
            422,
            "validation",
            "Request is not valid",
            "code: cannot change",
            errors=[{"field": "code", "rule": "immutable", "message": "the code of a matter cannot change"}],
        )
    await _check_references(session, guide)
    row.guide = guide.model_dump_json()
    row.name = guide.name
    row.department = guide.department
    row.updated_at = datetime.now(UTC)
    await session.flush()
    return row


def index_row(guide: Guide, version: int) -> dict[str, Any]:
    """The matter_index values for one published guide."""
    return {
        "code": guide.code,
        "version": version,
        "name": guide.name,
        "name_initials": pinyin_initials(guide.name)[:200],
        "department": guide.department,
        "matter_type": guide.matter_type,
        "for_person": "person" in guide.audience,
        "for_enterprise": "enterprise" in guide.audience,
        "depth": guide.depth,
        "max_visits": guide.max_visits,
        "online": bool(guide.online),
        "themes": "," + ",".join(guide.themes) + "," if guide.themes else "",
        "search_text": search_text(code=guide.code, name=guide.name, aliases=guide.aliases, keywords=guide.keywords),
    }


def published_event(row: MatterVersion, guide: Guide, *, department_name: str | None = None) -> MatterPublished:
    data = guide.model_dump(mode="json")
    return MatterPublished.model_validate(
        {
            **data,
            "department_name": department_name,
            "version": row.version,
            "effective_from": row.effective_from,
            "published_at": row.published_at,
            "published_by": row.published_by,
        }
    )


async def bump_revision(session: AsyncSession) -> None:
    """Search indexes held by replicas compare this number (see search_index)."""
    await session.execute(
        update(CatalogRevision).where(CatalogRevision.id == 1).values(revision=CatalogRevision.revision + 1)
    )


async def publish(
    session: AsyncSession, *, code: str, version: int, principal: Principal, effective_from: date | None = None
) -> MatterVersion:
    """Publish a complete draft: it becomes the current version and is never changed again."""
    row = await get_version(session, code=code, version=version, lock=True)
    require_admin_of(principal, row.department)
    if row.status != "draft":
        raise Problem(409, "version-immutable", "Version is immutable", f"version {version} is {row.status}")
    guide = guide_of(row)
    gaps = completeness.missing_fields(guide)
    if gaps:
        raise Problem(
            422,
            "incomplete-guide",
            "The guide is incomplete",
            "; ".join(f"{g['field']}: {g['message']}" for g in gaps),
            errors=gaps,
        )
    await _check_references(session, guide)
    now = datetime.now(UTC)
    effective = effective_from or now.date()
    previous = await current_version(session, code=code)
    if previous is not None:
        if previous.effective_from and effective < previous.effective_from:
            raise Problem(
                422,
                "validation",
                "Request is not valid",
                "effective_from: before the current version's",
                errors=[{"field": "effective_from", "rule": "not_before_current", "message": "before current version"}],
            )
        previous.effective_to = effective
    row.status = "published"
    row.effective_from = effective
    row.published_at = now
    row.published_by = actor_of(principal)
    row.updated_at = now
    await session.execute(delete(MatterIndex).where(MatterIndex.code == code))
    session.add(MatterIndex(**index_row(guide, row.version)))
    await bump_revision(session)
    department_name = await session.scalar(select(Department.name).where(Department.code == guide.department))
    await outbox.add(session, envelope(published_event(row, guide, department_name=department_name), subject=code))
    await session.flush()
    return row


async def retire(session: AsyncSession, *, code: str, principal: Principal) -> MatterVersion:
    """Withdraw a matter: its current version is retired and no longer found."""
    row = await current_version(session, code=code)
    if row is None:
        raise not_found(f"published matter {code}")
    require_admin_of(principal, row.department)
    now = datetime.now(UTC)
    row.status = "retired"
    row.retired_at = now
    row.effective_to = now.date()
    row.updated_at = now
    await session.execute(delete(MatterIndex).where(MatterIndex.code == code))
    await bump_revision(session)
    event = MatterRetired(
        code=code, version=row.version, department=row.department, retired_at=now, retired_by=actor_of(principal)
    )
    await outbox.add(session, envelope(event, subject=code))
    await session.flush()
    return row


async def current_version(session: AsyncSession, *, code: str) -> MatterVersion | None:
    """The latest published version of a matter (None when never published or retired)."""
    return await session.scalar(
        select(MatterVersion)
        .where(MatterVersion.code == code, MatterVersion.status == "published")
        .order_by(MatterVersion.version.desc())
        .limit(1)
    )


async def detail(session: AsyncSession, *, code: str) -> dict[str, Any]:
    row = await current_version(session, code=code)
    if row is None:
        raise not_found(f"published matter {code}")
    return version_out(row)


# ``current_version`` as one Core statement built once, run on the driver: the public detail (issue 15).
_PUBLISHED = Query(
    select(MatterVersion.__table__)
    .where(MatterVersion.code == bindparam("code"), MatterVersion.status == "published")
    .order_by(MatterVersion.version.desc())
    .limit(1)
)


async def detail_json(db: Driver, *, code: str) -> bytes:
    """``detail`` as JSON bytes, built without parsing the stored guide (it is JSON already)."""
    row = await db.fetchrow(_PUBLISHED, {"code": code})
    if row is None:
        raise not_found(f"published matter {code}")
    head = json.dumps(version_out(SimpleNamespace(**row), with_guide=False), ensure_ascii=False, separators=(",", ":"))
    return (head[:-1] + ',"guide":' + row["guide"] + "}").encode()


async def list_versions(session: AsyncSession, *, code: str) -> list[dict[str, Any]]:
    rows = await _versions(session, code)
    if not rows:
        raise not_found(f"matter {code}")
    return [version_out(r, with_guide=False) for r in rows]


async def version_diff(session: AsyncSession, *, code: str, from_version: int, to_version: int) -> dict[str, Any]:
    old = await get_version(session, code=code, version=from_version)
    new = await get_version(session, code=code, version=to_version)
    return {
        "code": code,
        "from": from_version,
        "to": to_version,
        "changes": diffs.diff(json.loads(old.guide), json.loads(new.guide)),
    }


async def search_database(session: AsyncSession, query: MatterQuery) -> dict[str, Any]:
    """Published matters matching every query word and every filter, in SQL.

    Order: exact name or initials, then name or initials starting with the query, then the rest;
    within each, shorter (more general) names first, then by code.

    The API serves the same answer from ``search_index`` (faster); this is its reference.
    """
    q, department, matter_type, audience = query.q, query.department, query.matter_type, query.audience
    theme, depth, max_visits, online = query.theme, query.depth, query.max_visits, query.online
    page, page_size = query.page, query.page_size
    m = MatterIndex
    conditions = []
    words = query_words(q or "")
    for word in words:
        conditions.append(m.search_text.like(f"%{escape_like(word)}%", escape="\\"))
    if department:
        conditions.append(m.department == department)
    if matter_type:
        conditions.append(m.matter_type == matter_type)
    if audience == "person":
        conditions.append(m.for_person.is_(True))
    elif audience == "enterprise":
        conditions.append(m.for_enterprise.is_(True))
    if theme:
        conditions.append(m.themes.like(f"%,{escape_like(theme)},%", escape="\\"))
    if depth is not None:
        conditions.append(m.depth >= depth)
    if max_visits is not None:
        conditions.append(m.max_visits <= max_visits)
    if online is not None:
        conditions.append(m.online.is_(online))
    if words:
        whole = normalise(q or "")
        rank = case(
            (m.name == whole, 0),
            (m.name_initials == whole, 0),
            (m.name.like(f"{escape_like(whole)}%", escape="\\"), 1),
            (m.name_initials.like(f"{escape_like(whole)}%", escape="\\"), 1),
            else_=2,
        )
        order = [rank, func.length(m.name), m.code]
    else:
        order = [func.length(m.name), m.code]
    columns = [m.code, m.version, m.name, m.department, m.matter_type, m.depth, m.max_visits, m.online]
    query = (
        select(*columns, func.count().over().label("total"))
        .where(*conditions)
        .order_by(*order)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    rows = (await session.execute(query)).all()
    if rows:
        total = rows[0].total
    elif page > 1:
        total = await session.scalar(select(func.count()).select_from(m).where(*conditions)) or 0
    else:
        total = 0
    return {
        "items": [
            {
                "code": r.code,
                "version": r.version,
                "name": r.name,
                "department": r.department,
                "matter_type": r.matter_type,
                "depth": r.depth,
                "max_visits": r.max_visits,
                "online": r.online,
            }
            for r in rows
        ],
        "page": page,
        "page_size": page_size,
        "total": total,
    }


def parse_guide(data: Any) -> Guide:
    """A guide from a stored or seeded dict; raises the problem a client would see."""
    try:
        return Guide.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "rule": e["type"], "message": e["msg"]} for e in exc.errors()
        ]
        raise Problem(422, "validation", "Request is not valid", errors[0]["message"], errors=errors) from exc
