"""The hall's counter (一窗受理): the cases a counter officer applied for on applicants' behalf (帮办)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.pagination import PageQuery
from services.caseflow.cases.reading import summary_out
from services.caseflow.domain import access
from services.caseflow.models import Case


async def helped_cases(session: AsyncSession, principal: Principal, *, pages: PageQuery) -> dict[str, Any]:
    """``GET /counter/cases``: the cases the calling counter officer helped, newest first."""
    access.require(principal, "counter.list_helped")
    query = select(Case).where(Case.helped_by == principal.subject)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(Case.id.desc()).offset(pages.offset).limit(pages.limit))).scalars()
    out = []
    for case in rows:
        summary = summary_out(case)
        summary["applicant_name"] = case.applicant_name
        out.append(summary)
    return pages.answer(total, out)
