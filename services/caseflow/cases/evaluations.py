"""好差评 after completion, and published results (结果公示, Art. 40)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import caseflow as contract
from kit.auth import Principal
from kit.errors import Problem
from kit.masking import mask_name
from kit.pagination import PageQuery
from services.caseflow import calendars
from services.caseflow.cases.access import authorize
from services.caseflow.cases.common import Context, add_event
from services.caseflow.models import Case, Evaluation

RECTIFICATION_DAYS = 15  # a bad rating (1 or 2) opens a rectification due in 15 working days


async def evaluate(
    session: AsyncSession, ctx: Context, principal: Principal, case_no: str, *, score: int, comment: str | None
) -> dict[str, Any]:
    """好差评 by the applicant (or its agent within the mandate), once, after completion."""
    case = (await authorize(session, principal, "case.evaluate", case_no)).case
    if case.state != "completed":
        raise Problem(409, "illegal-transition", "Not possible in this state",
                      f"cannot evaluate a case that is {case.state}", state=case.state)  # fmt: skip
    if await session.get(Evaluation, case.id) is not None:
        raise Problem(409, "already-evaluated", "Already evaluated", "a case is evaluated once", state=case.state)
    now = ctx.current_time()
    due, provisional = None, False
    if score <= 2:
        calendar = await calendars.load(session)
        due, provisional = calendar.add_workdays(ctx.today(), RECTIFICATION_DAYS)
    evaluation = Evaluation(case_id=case.id, department=case.department, score=score, comment=comment,
                            created_at=now, rectification_due=due, rectification_provisional=provisional)  # fmt: skip
    session.add(evaluation)
    await session.flush()
    await add_event(
        session, case,
        contract.CaseEvaluated(case_no=case.case_no, matter_code=case.matter_code, matter_version=case.matter_version,
                               department=case.department, state=case.state, at=now, actor="applicant", score=score,
                               rectification_due=due),
    )  # fmt: skip
    return evaluation_out(evaluation)


def evaluation_out(evaluation: Evaluation) -> dict[str, Any]:
    """An evaluation as the case detail shows it."""
    return {
        "score": evaluation.score,
        "comment": evaluation.comment,
        "created_at": evaluation.created_at.isoformat(),
        "rectification": None
        if evaluation.rectification_due is None
        else {
            "due": evaluation.rectification_due.isoformat(),
            "provisional": evaluation.rectification_provisional,
            "rectified": evaluation.rectified_at is not None,
        },  # fmt: skip
    }


async def published_results(session: AsyncSession, *, matter_code: str | None, pages: PageQuery) -> dict:
    """Grant decisions, public (Art. 40); the applicant's (verified) name masked, nothing else personal."""
    query = select(Case).where(Case.state.in_(("approved", "delivering", "completed")))
    if matter_code:
        query = query.where(Case.matter_code == matter_code)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await session.execute(
            query.order_by(Case.decided_on.desc(), Case.id.desc()).offset(pages.offset).limit(pages.limit)
        )
    ).scalars()
    return pages.answer(
        total,
        [
            {
                "case_no": c.case_no,
                "matter": c.matter_name,
                "department": c.department,
                "applicant": mask_name(c.applicant_name) if c.applicant_name else None,
                "decision": "approved",
                "decided_on": c.decided_on.isoformat() if c.decided_on else None,
            }  # fmt: skip
            for c in rows
        ],
    )
