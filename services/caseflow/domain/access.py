"""Who may act in caseflow: ONE table, action × role × the actor's relation to the case — pure.

The relation says where the caller stands (computed from the verified token and, for a case, the
case's applicant, department and parallel departments); the role says what an officer holds. A
cell lists the roles that may take the action from that relation; ``ANY`` is for applicants and
agents, who hold no roles. Every route and use case ends in ``check`` (through ``require`` or the
case-loading ``authorize`` of ``services.caseflow.cases.access``); nothing else decides.

Refusals: a caller who may not read the case learns nothing about it (404, as for a case that
does not exist); one who may read it but not take the action gets 403 naming the rule (``role``:
the relation may, with another role; ``relation``: not from where the caller stands;
``mandate_scope``: an agent outside its mandate). A material is 404 to everyone not entitled to it. The table is written out in
docs/adr/0011-caseflow-trust.md and walked whole through the API by tests/test_access_matrix.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from kit.auth import Principal
from kit.errors import Problem

# ---- relations ------------------------------------------------------------------------------
APPLICANT: Final = "applicant"  # the case's applicant itself (a person, or an enterprise token without an agent)
AGENT: Final = "agent"  # a person acting for the applicant (``act``) within a mandate covering caseflow
AGENT_OUTSIDE_MANDATE: Final = "agent_outside_mandate"  # acting for the applicant, but not for this matter
DEPARTMENT_OFFICER: Final = "department_officer"  # officer of the case's (lead) department; without a case: own dept
BRANCH_OFFICER: Final = "branch_officer"  # officer of one of the case's parallel (branch) departments
SUPERVISOR: Final = "supervisor"  # officer of a supervision centre (电子监察)
PLATFORM_ADMIN: Final = "platform_admin"  # officer of the platform department ADMIN
# A department's own system, its push verified by exchange (ADR 0021): of the case's (lead)
# department — without a case: of the matter's department — or of one of its parallel departments.
DEPARTMENT_SYSTEM: Final = "department_system"
BRANCH_SYSTEM: Final = "branch_system"
# The hall (ADR 0026): the counter officer who applied for the applicant (帮办, the case's helped_by),
# and an officer of a department with no part in the case (the comprehensive window hands out results).
HELPER: Final = "helper"
OTHER_OFFICER: Final = "other_officer"
NONE: Final = "none"
RELATIONS: Final = (
    APPLICANT, AGENT, AGENT_OUTSIDE_MANDATE, DEPARTMENT_OFFICER, BRANCH_OFFICER, SUPERVISOR, PLATFORM_ADMIN,
    DEPARTMENT_SYSTEM, BRANCH_SYSTEM, HELPER, OTHER_OFFICER, NONE,
)  # fmt: skip

# Departments whose officers stand above every department: the supervision centres and the platform.
SUPERVISION_CENTRES: Final = frozenset({"SUPERVISION", "JCZX"})  # JCZX: 监察中心 (identity's demo data)
PLATFORM_DEPARTMENT: Final = "ADMIN"

# ---- roles ----------------------------------------------------------------------------------
ACCEPTOR, REVIEWER, DECIDER = "acceptor", "reviewer", "decider"
SUPERVISOR_ROLE, ADMIN, COUNTER = "supervisor", "admin", "counter"
OFFICER_ROLES: Final = (ACCEPTOR, REVIEWER, DECIDER, SUPERVISOR_ROLE, ADMIN, COUNTER)
# The one role of a department system's push (never in a token: exchange verified the push's signature).
SYSTEM_ROLE: Final = "department_system"
ANY: Final = frozenset({"*"})  # applicants and agents: no roles, the relation is the right
HANDLERS: Final = frozenset({ACCEPTOR, REVIEWER, DECIDER})  # the officers who work on cases


def _roles(*names: str) -> frozenset[str]:
    return frozenset(names)


_APPLYING = {APPLICANT: ANY, AGENT: ANY}
_READERS = _roles(ACCEPTOR, REVIEWER, DECIDER, SUPERVISOR_ROLE, ADMIN)
_OVERSIGHT = _roles(SUPERVISOR_ROLE, ADMIN)
_SYSTEM = _roles(SYSTEM_ROLE)

# action → relation → roles that may take it from there. An action or relation not listed: refused.
TABLE: Final[dict[str, dict[str, frozenset[str]]]] = {
    # the applicant's side
    "case.submit": _APPLYING,
    "case.list_mine": _APPLYING,
    "material.upload": _APPLYING,  # an upload before submission (no case yet)
    "case.upload": _APPLYING,  # an upload for a correction of one case
    "case.resubmit": _APPLYING,
    "case.withdraw": _APPLYING,
    "case.evaluate": _APPLYING,
    "case.request_pickup": _APPLYING,  # 上门收件: the carrier collects the originals (domain/states.py: when)
    "case.print": _APPLYING,  # 办件进度单 (kiosk, counter, online): every print on the case's timeline
    # reading
    "case.read": {
        **_APPLYING,
        DEPARTMENT_OFFICER: _READERS,
        BRANCH_OFFICER: _READERS,
        SUPERVISOR: _OVERSIGHT,
        PLATFORM_ADMIN: _roles(ADMIN),
        HELPER: _roles(COUNTER),  # the counter officer reads the cases they applied for
    },
    # A material's bytes: those who handle the case (a branch: only materials its matters ask for).
    "case.read_material": {**_APPLYING, DEPARTMENT_OFFICER: HANDLERS, BRANCH_OFFICER: HANDLERS},
    # the lead department's steps (domain/states.py says in which states)
    "case.accept": {DEPARTMENT_OFFICER: _roles(ACCEPTOR), DEPARTMENT_SYSTEM: _SYSTEM},
    "case.reject": {DEPARTMENT_OFFICER: _roles(ACCEPTOR), DEPARTMENT_SYSTEM: _SYSTEM},
    "case.request_correction": {DEPARTMENT_OFFICER: _roles(ACCEPTOR), DEPARTMENT_SYSTEM: _SYSTEM},
    "case.review": {DEPARTMENT_OFFICER: _roles(REVIEWER)},
    "case.approve": {DEPARTMENT_OFFICER: _roles(DECIDER), DEPARTMENT_SYSTEM: _SYSTEM},
    "case.deny": {DEPARTMENT_OFFICER: _roles(DECIDER), DEPARTMENT_SYSTEM: _SYSTEM},
    "case.extend": {DEPARTMENT_OFFICER: _roles(DECIDER)},
    "case.suspend": {DEPARTMENT_OFFICER: _roles(REVIEWER, DECIDER)},
    "case.resume": {DEPARTMENT_OFFICER: _roles(REVIEWER, DECIDER)},
    "case.deliver": {DEPARTMENT_OFFICER: _roles(ACCEPTOR)},
    "case.complete": {DEPARTMENT_OFFICER: _roles(ACCEPTOR)},
    # 统一窗口出件: a window result handed out at the counter of ANY department (ADR 0026)
    "case.hand_out": {
        DEPARTMENT_OFFICER: _roles(ACCEPTOR, COUNTER),
        BRANCH_OFFICER: _roles(COUNTER),
        HELPER: _roles(COUNTER),
        OTHER_OFFICER: _roles(COUNTER),
    },  # fmt: skip
    # the amounts of an assessed matter's fees (payment.assessed), while unpaid
    "case.assess_fees": {DEPARTMENT_OFFICER: _roles(ACCEPTOR, DECIDER)},
    # the originals checked against the uploaded copies: those who accept or review the case
    "case.originals_received": {DEPARTMENT_OFFICER: _roles(ACCEPTOR, REVIEWER)},
    # a parallel department decides its own branch, never the lead's case
    "branch.approve": {BRANCH_OFFICER: _roles(DECIDER), BRANCH_SYSTEM: _SYSTEM},
    "branch.deny": {BRANCH_OFFICER: _roles(DECIDER), BRANCH_SYSTEM: _SYSTEM},
    # a department's system mirrors a case it handles itself: creates it (a matter of its own) and
    # reports its steps (only ever on its own mirrored cases, found by its own case id)
    "case.mirror": {DEPARTMENT_SYSTEM: _SYSTEM},
    # officers' lists and the supervisor's reads (without a case: the relation to one's own department)
    "counter.list_helped": {DEPARTMENT_OFFICER: _roles(COUNTER)},  # the cases a counter officer applied for
    "worklist.read": {DEPARTMENT_OFFICER: _READERS, SUPERVISOR: _OVERSIGHT, PLATFORM_ADMIN: _roles(ADMIN)},
    "supervision.read": {DEPARTMENT_OFFICER: _OVERSIGHT, SUPERVISOR: _OVERSIGHT, PLATFORM_ADMIN: _OVERSIGHT},
    # the platform-wide working-day calendar: the platform admin only, never a department admin
    "calendar.write": {PLATFORM_ADMIN: _roles(ADMIN)},
    # 零填报 (ADR 0027): a matter's form filled from the caller's own verified data (no case yet)
    "matter.prefill": _APPLYING,
    # 秒批 sampling: the department's deciders review sampled automatic decisions; oversight reads them
    "sample.list": {DEPARTMENT_OFFICER: _roles(DECIDER, ADMIN), SUPERVISOR: _OVERSIGHT, PLATFORM_ADMIN: _roles(ADMIN)},
    "case.sample_review": {DEPARTMENT_OFFICER: _roles(DECIDER, ADMIN)},
}
ACTIONS: Final = tuple(TABLE)
# Actions on one case (checked with the case's relation; a caller who cannot read it gets 404).
CASE_ACTIONS: Final = frozenset(a for a in ACTIONS if a.startswith(("case.", "branch.")) and a not in
                                {"case.submit", "case.list_mine"})  # fmt: skip
# The state-machine actions officers take through POST /cases/{case_no}/actions.
OFFICER_STEPS: Final = (
    "accept", "reject", "request_correction", "review", "approve", "deny", "extend", "suspend", "resume", "deliver",
    "complete", "originals_received",
)  # fmt: skip
APPLICANT_STEPS: Final = ("resubmit", "withdraw", "request_pickup")
# Refused as if absent (404) even to those who may read the case: a material is shown to those
# who handle it, and to nobody else is it said to exist.
HIDDEN_WHEN_REFUSED: Final = frozenset({"case.read_material"})
# The decisions a department system may push (contracts/departments.py DecisionAction): on the
# lead case as ``case.<action>``, on its own pending branch as ``branch.<action>``.
SYSTEM_STEPS: Final = ("accept", "reject", "request_correction", "approve", "deny")
BRANCH_STEPS: Final = ("approve", "deny")
# A system's refusal names what is not its own: the matter (mirroring) or the case.
_SYSTEM_RULES: Final = {"case.mirror": "not_own_matter"}


@dataclass(frozen=True)
class Decision:
    """The answer of the table: allowed, or the status, problem type, rule and reason of the refusal."""

    allowed: bool
    status: int = 200
    type_: str = ""
    rule: str = ""
    detail: str = ""

    def problem(self) -> Problem:
        if self.status == 404:
            return Problem(404, "not-found", "Not found", self.detail or "no such case")
        return Problem(self.status, self.type_, "Not allowed", self.detail, rule=self.rule)


def _holds(cell: frozenset[str], roles: Iterable[str]) -> bool:
    return "*" in cell or bool(cell & set(roles))


def permitted(action: str, relation: str, roles: Iterable[str]) -> bool:
    """Whether the table has a cell for (action, relation) that the roles satisfy."""
    cell = TABLE[action].get(relation)
    return cell is not None and _holds(cell, roles)


def decide(action: str, relation: str, roles: Iterable[str]) -> Decision:
    """The table's answer for one caller. Unknown actions are a programming error (KeyError)."""
    roles = tuple(roles)
    cells = TABLE[action]
    if permitted(action, relation, roles):
        return Decision(True)
    on_a_case = action in CASE_ACTIONS
    if SYSTEM_ROLE in roles:  # a push is answered by its settlement, not by a 404: name what is not its own
        rule = _SYSTEM_RULES.get(action, "not_own_case")
        return Decision(False, 403, "forbidden", rule, f"{action}: not for a department system that is {relation}")
    if relation == AGENT_OUTSIDE_MANDATE:
        return Decision(False, 403, "forbidden", "mandate_scope", "the mandate does not cover this matter in caseflow")
    if on_a_case and (relation == NONE or action in HIDDEN_WHEN_REFUSED or not permitted("case.read", relation, roles)):
        return Decision(False, 404, "not-found", "visible", "no such case")
    if relation in cells:
        needed = ", ".join(sorted(cells[relation]))
        return Decision(False, 403, "role-not-allowed", "role", f"{action} needs one of the roles {needed}")
    where = ", ".join(sorted(cells)) or "nobody"
    return Decision(False, 403, "forbidden", "relation", f"{action} is for: {where} (you are: {relation})")


def check(action: str, relation: str, roles: Iterable[str]) -> None:
    """Raise the refusal's problem unless the table allows the action."""
    decision = decide(action, relation, roles)
    if not decision.allowed:
        raise decision.problem()


def mandate_covers(principal: Principal, matter_codes: Iterable[str]) -> bool:
    """An agent's mandate covers caseflow for (any of) these matters: ``*``, ``caseflow`` or
    ``caseflow:<matter code>``."""
    scopes = set(principal.scopes)
    return bool({"*", "caseflow"} & scopes) or any(f"caseflow:{code}" in scopes for code in matter_codes)


def own_relation(principal: Principal, *, matter_codes: Iterable[str] | None = None) -> str:
    """The caller's relation where there is no case (submitting, uploading, lists, supervision,
    the calendar): applicants and agents relate to their own would-be cases, officers to their
    own department (or, above every department, as supervisor or platform admin)."""
    if principal.kind == "officer":
        if principal.department == PLATFORM_DEPARTMENT:
            return PLATFORM_ADMIN
        if principal.department in SUPERVISION_CENTRES:
            return SUPERVISOR
        return DEPARTMENT_OFFICER if principal.department else NONE
    if principal.kind not in {"person", "enterprise"}:
        return NONE
    if principal.actor is None:
        return APPLICANT
    if matter_codes is None:  # no particular matter: a mandate for any part of caseflow
        covered = any(s in {"*", "caseflow"} or s.startswith("caseflow:") for s in principal.scopes)
    else:
        covered = mandate_covers(principal, matter_codes)
    return AGENT if covered else AGENT_OUTSIDE_MANDATE


def case_relation(
    principal: Principal,
    *,
    applicant: str,
    department: str,
    branch_departments: Iterable[str],
    matter_code: str,
    helped_by: str | None = None,
) -> str:
    """The caller's relation to one case (its applicant, lead department, parallel departments)."""
    if principal.kind == "officer":
        if principal.department == department:
            return DEPARTMENT_OFFICER
        if principal.department in set(branch_departments):
            return BRANCH_OFFICER
        if principal.department in SUPERVISION_CENTRES or principal.department == PLATFORM_DEPARTMENT:
            return own_relation(principal)
        if helped_by is not None and principal.subject == helped_by:
            return HELPER
        return OTHER_OFFICER if principal.department else NONE
    if principal.kind not in {"person", "enterprise"} or principal.subject != applicant:
        return NONE
    if principal.actor is None:
        return APPLICANT
    return AGENT if mandate_covers(principal, [matter_code]) else AGENT_OUTSIDE_MANDATE


def require(principal: Principal, action: str, *, relation: str | None = None,
            matter_codes: Iterable[str] | None = None) -> str:  # fmt: skip
    """Check an action that has no case (or whose relation the caller computed): the calendar
    route calls ``require(principal, "calendar.write")``. Returns the relation it checked."""
    relation = relation or own_relation(principal, matter_codes=matter_codes)
    check(action, relation, principal.roles)
    return relation


def system_relation(department: str, *, case_department: str, branch_departments: Iterable[str]) -> str:
    """A department system's relation (``department``: the pushing department, as exchange verified
    it) to a case, or without a case to a matter (``case_department``: the matter's department)."""
    if department == case_department:
        return DEPARTMENT_SYSTEM
    return BRANCH_SYSTEM if department in set(branch_departments) else NONE


def sees_every_department(relation: str) -> bool:
    """Supervisors and the platform admin read across departments (their reads are not scoped)."""
    return relation in {SUPERVISOR, PLATFORM_ADMIN}
