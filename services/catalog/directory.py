"""Departments, administrative divisions, themes and bundles: the directory a citizen browses."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain import bundles as bundle_rules
from services.catalog.domain.themes import THEMES
from services.catalog.matters import guide_of, not_found
from services.catalog.models import Bundle, Department, Division, MatterIndex, MatterVersion


async def departments(session: AsyncSession, *, division: str | None = None) -> list[dict[str, Any]]:
    """Every department with the number of its published matters (directory by department)."""
    counts = dict(
        (await session.execute(select(MatterIndex.department, func.count()).group_by(MatterIndex.department))).all()
    )
    query = select(Department).order_by(Department.code)
    if division:
        query = query.where(Department.division_code == division)
    return [
        {
            "code": d.code,
            "name": d.name,
            "division_code": d.division_code,
            "parent_code": d.parent_code,
            "matters": counts.get(d.code, 0),
        }
        for d in (await session.scalars(query)).all()
    ]


async def divisions(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(Division).order_by(Division.code))).all()
    return [{"code": d.code, "name": d.name, "level": d.level, "parent_code": d.parent_code} for d in rows]


async def themes(session: AsyncSession) -> list[dict[str, Any]]:
    """Life-event and enterprise-lifecycle themes with their number of published matters."""
    rows = (await session.execute(select(MatterIndex.themes).where(MatterIndex.themes != ""))).scalars().all()
    counts: dict[str, int] = {}
    for value in rows:
        for theme in value.strip(",").split(","):
            counts[theme] = counts.get(theme, 0) + 1
    return [{"code": code, **info, "matters": counts.get(code, 0)} for code, info in THEMES.items()]


def _bundle_summary(bundle: Bundle) -> dict[str, Any]:
    return {
        "code": bundle.code,
        "name": bundle.name,
        "description": bundle.description,
        "themes": [t for t in bundle.themes.split(",") if t],
        "matters": json.loads(bundle.matter_codes),
    }


async def list_bundles(session: AsyncSession) -> list[dict[str, Any]]:
    return [_bundle_summary(b) for b in (await session.scalars(select(Bundle).order_by(Bundle.code))).all()]


async def bundle_detail(session: AsyncSession, *, code: str) -> dict[str, Any]:
    """A bundle with its matters' current versions, one merged form and one material list."""
    bundle = await session.get(Bundle, code)
    if bundle is None:
        raise not_found(f"bundle {code}")
    codes = json.loads(bundle.matter_codes)
    rows = (
        await session.scalars(
            select(MatterVersion)
            .join(
                MatterIndex, (MatterIndex.code == MatterVersion.code) & (MatterIndex.version == MatterVersion.version)
            )
            .where(MatterVersion.code.in_(codes))
        )
    ).all()
    by_code = {r.code: r for r in rows}
    guides = [guide_of(by_code[c]) for c in codes if c in by_code]
    out = _bundle_summary(bundle)
    out["matters"] = [
        {"code": g.code, "version": by_code[g.code].version, "name": g.name, "department": g.department} for g in guides
    ]
    out["unavailable"] = [c for c in codes if c not in by_code]
    out["departments"] = sorted({g.department for g in guides})
    out.update(bundle_rules.merge(guides))
    return out
