"""A department system's pushes as caseflow reads them (ADR 0021) — pure.

A progress step of a case the department handles in its own system is one action of the case
state machine on its mirror; a decision on a platform case is the officer's action of that name.
A refusal is told back as the ``problem`` of ``caseflow.push.settled`` (type, title, detail, the
field of the push's ``data`` at fault and the rule), built here from caseflow's own problems.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from kit.errors import PROBLEM_BASE, Problem
from services.caseflow.domain import states

# contracts/departments.py ProgressStep → the state machine's action ("received" creates the mirror).
RECEIVED: Final = "received"
STEP_ACTIONS: Final[dict[str, str]] = {
    "accepted": "accept",
    "correction_requested": "request_correction",
    "resubmitted": "resubmit",
    "rejected": "reject",
    "approved": "approve",
    "denied": "deny",
    "completed": "complete",
    "withdrawn": "withdraw",
}
# The department reports these for the applicant (who resubmitted or withdrew at its counter); the
# state machine judges them as the applicant's steps, every other step as an officer's.
APPLICANT_STEPS: Final = frozenset({"resubmitted", "withdrawn"})
# The push's data fields that caseflow's own names map to (a problem names "reason": data.reason).
DATA_FIELDS: Final = frozenset({"reason", "items", "case_no", "department_case_id", "matter_code", "applicant",
                                "applicant_kind", "step", "action"})  # fmt: skip


def step_action(step: str) -> tuple[str, str]:
    """(action, party) for a progress step other than ``received``; KeyError for an unknown step."""
    return STEP_ACTIONS[step], states.APPLICANT if step in APPLICANT_STEPS else states.OFFICER


def system_actor(department: str) -> str:
    """How the timeline and events name a department's system (``system:SCJGJ``)."""
    return f"system:{department}"


def step_time(occurred_at: datetime, *, now: datetime, not_before: datetime | None) -> datetime:
    """When the step counts as taken: when it happened in the department's system, but never in
    the future (the platform's clock bounds it) nor before the case's last change (the timeline
    stays in order and a late push cannot move a step back past another)."""
    when = min(occurred_at, now)
    if not_before is not None and when < not_before:
        return min(not_before, now)
    return when


def _data_field(field: str | None) -> str | None:
    if not field:
        return None
    head = field.split(".", 1)[0]
    return f"data.{field}" if head in DATA_FIELDS else field


def push_problem(problem: Problem) -> dict[str, Any]:
    """A caseflow problem as the ``problem`` of a refused push: its rule (the problem's own, or its
    first error's) and the field of the push's ``data`` at fault."""
    first = (problem.errors or [{}])[0]
    rule = problem.extra.get("rule") or first.get("rule")
    if rule is None and problem.type_ in {"illegal-transition", "branches-pending", "second-correction",
                                          "already-extended", "role-not-allowed"}:  # fmt: skip
        rule = "transition"
    field = problem.extra.get("field") or first.get("field")
    detail = problem.detail or first.get("message")
    return {
        "type": PROBLEM_BASE + problem.type_,
        "title": problem.title[:200],
        "detail": detail[:500] if detail else None,
        "field": (_data_field(field) or "")[:200] or None,
        "rule": str(rule)[:64] if rule else None,
    }


def refusal(type_: str, title: str, detail: str, *, rule: str, field: str | None = None) -> Problem:
    """A refusal that only a push can meet (e.g. a department case id no mirror has)."""
    extra: dict[str, Any] = {"rule": rule}
    if field:
        extra["field"] = field
    return Problem(422, type_, title, detail, **extra)
