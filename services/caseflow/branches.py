"""并联审批: a matter with parallel departments fans out on acceptance into one branch per
department, each with its own deadline (the joint-handling limit, Art. 42). The lead department
approves the case only when every branch has approved; a denial in a branch follows the matter's
rule: ``parallel_denial`` = ``"deny_case"`` (default: the case is denied with that branch's
reasons) or ``"continue"`` (recorded; the lead decides)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from kit.auth import Principal
from kit.errors import Problem, field_problem
from services.caseflow import calendars, steps
from services.caseflow.cases import (
    Context,
    apply_action,
    dumps,
    matter_of_case,
    parse_version,
    visible_case,
)
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
                            due_on=deadline.due, deadline=dumps(deadline_json(deadline)))  # fmt: skip
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


async def branch_action(
    session: AsyncSession,
    ctx: Context,
    principal: Principal,
    case_no: str,
    department: str,
    *,
    action: str,
    reason: str | None,
    if_match: str | None,
) -> Case:
    """A branch department's decider approves or denies its branch (If-Match: the branch version)."""
    if principal.kind != "officer" or principal.department != department:
        raise Problem(404, "not-found", "Not found", "no such branch")
    if "decider" not in principal.roles:
        raise Problem(403, "role-not-allowed", "Not allowed", f"{action} needs the role decider", rule="role")
    version = parse_version(if_match, required=True)
    case = await visible_case(session, principal, case_no)
    branch = next((b for b in await branches_of(session, case.id) if b.department == department), None)
    if branch is None:
        raise Problem(404, "not-found", "Not found", "no such branch")
    if branch.version != version:
        raise Problem(409, "version-conflict", "The branch changed", f"the branch is at version {branch.version}",
                      state=branch.state, version=branch.version)  # fmt: skip
    if branch.state != "pending" or case.state not in {"accepted", "reviewed"}:
        raise Problem(409, "illegal-transition", "Not possible in this state",
                      f"cannot {action} a branch that is {branch.state} of a case that is {case.state}",
                      state=branch.state)  # fmt: skip
    if action == "deny" and not reason:
        raise field_problem("reason", "required", "a denial states its reasons")
    today = ctx.today()
    branch.state = "approved" if action == "approve" else "denied"
    branch.decided_on, branch.decided_by, branch.reason = today, principal.subject, reason
    try:
        await session.flush()
    except StaleDataError as exc:
        raise Problem(409, "version-conflict", "The branch changed", "another action changed it first",
                      state="pending") from exc  # fmt: skip
    note = dumps({"department": department, "reason": reason})
    entry = steps.line(case, ctx.current_time(), f"branch_{action}", principal.subject, case.state, case.state, note)
    await steps.write(session, case, steps.Step(entry))
    if action == "deny":
        matter = await matter_of_case(session, case)
        if matter.get("parallel_denial", "deny_case") == "deny_case":
            await apply_action(
                session, ctx, case, action="deny", roles=("system",), actor="system", expected_version=None,
                body=_Reason(f"{department}: {reason}"),
                system_detail={"rule": "parallel approval: a denial in one branch denies the case",
                               "branch": department},
            )  # fmt: skip
            for other in await branches_of(session, case.id):
                if other.state == "pending":
                    other.state = "cancelled"
    return case


class _Reason:
    """The minimal body apply_action reads a reason from."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


async def pending_departments(session: AsyncSession, case_id: int) -> list[str]:
    return [b.department for b in await branches_of(session, case_id) if b.state == "pending"]


async def calendar_for(session: AsyncSession) -> WorkdayCalendar:
    return await calendars.load(session)
