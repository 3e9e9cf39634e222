"""并联审批: a matter with parallel departments fans out on acceptance into one branch per
department, each with its own deadline (the joint-handling limit, Art. 42). The lead department
approves the case only when every branch has approved; a denial in a branch follows the matter's
rule: ``parallel_denial`` = ``"deny_case"`` (default: the case is denied with that branch's
reasons) or ``"continue"`` (recorded; the lead decides).

The branch rows live here; a branch department's decision is cases/branch_actions.py."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.caseflow import calendars
from services.caseflow.domain.bundles import branch_limit
from services.caseflow.domain.calendar import WorkdayCalendar
from services.caseflow.domain.case_clock import deadline_json
from services.caseflow.domain.clock import compute_deadline
from services.caseflow.models import Case, CaseBranch


def fan_out(session: AsyncSession, calendar: WorkdayCalendar, case: Case, matter: dict[str, Any], start: date) -> list:
    """One pending branch per parallel department (other than the lead's own)."""
    departments = [d for d in matter.get("parallel_departments", []) if d != case.department]
    made = []
    for department in dict.fromkeys(departments):
        limit, rule = branch_limit(matter, department)  # a bundle's branch: its own matters' limit
        deadline = compute_deadline(calendar, start=start, limit_days=limit, rule=rule)
        branch = CaseBranch(case_id=case.id, department=department, state="pending", started_on=start,
                            due_on=deadline.due, deadline=json.dumps(deadline_json(deadline), ensure_ascii=False, sort_keys=True))  # fmt: skip
        session.add(branch)
        made.append(branch)
    return made


async def branches_of(session: AsyncSession, case_id: int) -> list[CaseBranch]:
    return list(
        (
            await session.execute(select(CaseBranch).where(CaseBranch.case_id == case_id).order_by(CaseBranch.id))
        ).scalars()
    )


def branch_out(branch: CaseBranch) -> dict[str, Any]:
    return {
        "department": branch.department, "state": branch.state, "version": branch.version,
        "started_on": branch.started_on.isoformat(), "due_on": branch.due_on.isoformat() if branch.due_on else None,
        "deadline": json.loads(branch.deadline), "decided_on": branch.decided_on.isoformat() if branch.decided_on else None,
        "decided_by": branch.decided_by, "reason": branch.reason,
    }  # fmt: skip


async def pending_departments(session: AsyncSession, case_id: int) -> list[str]:
    return [b.department for b in await branches_of(session, case_id) if b.state == "pending"]


async def calendar_for(session: AsyncSession) -> WorkdayCalendar:
    return await calendars.load(session)
