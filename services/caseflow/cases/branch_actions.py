"""并联审批: a branch department's decider approves or denies its own branch — never the lead's case."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from kit.auth import Principal
from kit.errors import Problem, field_problem
from services.caseflow import steps
from services.caseflow.branches import branches_of
from services.caseflow.cases.access import authorize
from services.caseflow.cases.common import Context, dumps, matter_of_case
from services.caseflow.cases.transitions import apply_action, parse_version
from services.caseflow.domain import states
from services.caseflow.models import Case


def _no_branch() -> Problem:
    return Problem(404, "not-found", "Not found", "no such branch")


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
    version = parse_version(if_match, required=True)
    case = (await authorize(session, principal, f"branch.{action}", case_no)).case
    if principal.department != department:  # one's own branch only
        raise _no_branch()
    return await decide_branch(session, ctx, case, department, action=action, reason=reason, actor=principal.subject,
                               version=version)  # fmt: skip


async def decide_branch(session: AsyncSession, ctx: Context, case: Case, department: str, *, action: str,
                        reason: str | None, actor: str, version: int | None) -> Case:  # fmt: skip
    """The branch's decision once the caller was authorized for it: the decider's, or the branch
    department's system (ADR 0021: ``version`` None, applied to the branch as it is)."""
    branch = next((b for b in await branches_of(session, case.id) if b.department == department), None)
    if branch is None:
        raise _no_branch()
    if version is not None and branch.version != version:
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
    branch.decided_on, branch.decided_by, branch.reason = today, actor, reason
    try:
        await session.flush()
    except StaleDataError as exc:
        raise Problem(409, "version-conflict", "The branch changed", "another action changed it first",
                      state="pending") from exc  # fmt: skip
    note = dumps({"department": department, "reason": reason})
    entry = steps.line(case, ctx.current_time(), f"branch_{action}", actor, case.state, case.state, note)
    await steps.write(session, case, steps.Step(entry))
    if action == "deny":
        matter = await matter_of_case(session, case)
        if matter.get("parallel_denial", "deny_case") == "deny_case":
            await apply_action(
                session, ctx, case, action="deny", roles=(states.SYSTEM,), actor="system", expected_version=None,
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
