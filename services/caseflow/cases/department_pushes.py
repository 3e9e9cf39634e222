"""A department's own system acting on caseflow (部门系统对接, ADR 0021), from exchange's events.

- ``exchange.department.case_decision``: the department's system takes an officer's step on a
  platform case of its own department (accept, reject, request_correction, approve, deny), or
  approves / denies its own pending branch, under the same rules: domain/access.py's table (role
  ``department_system``) and the same transition code as ``POST /cases/{no}/actions``, applied to
  the case as it is (no version check).
- ``exchange.department.case_progress``: a case the department handles in its own system is
  mirrored: ``received`` creates a platform case (number, query code, clocks, the applicant told),
  every other step moves it through the same state machine.

Every push ends in exactly one ``caseflow.push.settled`` (applied with the case number, or refused
with the problem), written to the outbox in the transaction of its effect; the consumer's inbox
makes a redelivery change nothing. A refusal rolls back to a savepoint: nothing of the step stays.
The department is the one exchange verified (the event's ``department``), never one in ``data``;
its name on the timeline is the catalog's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import caseflow as contract
from contracts.events.exchange import DepartmentCaseDecision, DepartmentCaseProgress
from kit.consumer import PoisonEvent
from kit.errors import Problem, RuleViolation
from kit.events import CloudEvent, envelope
from kit.subject_ids import validate_id_number, validate_uscc
from services.caseflow import calendars, notifications, steps
from services.caseflow.case_numbers import reserve_one_in
from services.caseflow.cases.access import load_case
from services.caseflow.cases.branch_actions import decide_branch
from services.caseflow.cases.common import Context, base_fields, dumps, matter_of_case, record_anomaly, set_clocks
from services.caseflow.cases.transitions import MIRRORED, SecondCorrectionRefused, apply_action
from services.caseflow.domain import access, pushes, states
from services.caseflow.domain.case_number import make_case_number, make_query_code
from services.caseflow.matters import get_matter
from services.caseflow.models import Case, MatterDefinition, outbox
from services.caseflow.schemas import ActionRequest

log = logging.getLogger("yiwang.caseflow.pushes")

DECISION = DepartmentCaseDecision.event_type
PROGRESS = DepartmentCaseProgress.event_type


async def on_case_decision(session: AsyncSession, ctx: Context, event: CloudEvent) -> None:
    """Apply a department system's decision on a platform case, and settle the push."""
    push = _parse(DepartmentCaseDecision, event)
    await _settle(session, ctx, push, "case.decision", lambda moment: _decide(session, moment, push))


async def on_case_progress(session: AsyncSession, ctx: Context, event: CloudEvent) -> None:
    """Mirror a step of a case the department handles in its own system, and settle the push."""
    push = _parse(DepartmentCaseProgress, event)
    await _settle(session, ctx, push, "case.progress", lambda moment: _progress(session, moment, push))


def _parse(model: type[BaseModel], event: CloudEvent) -> Any:
    """The forwarded push. Exchange checked it against the same contract; an event that still fails
    it cannot be answered (no push to settle): the consumer dead-letters it for an operator."""
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        raise PoisonEvent(f"not a {model.__name__}: {exc.error_count()} errors") from exc


async def _settle(session: AsyncSession, ctx: Context, push: Any, push_type: str, apply: Any) -> None:
    """Run ``apply`` (→ the case number) inside a savepoint; settle the push with its outcome."""
    now = ctx.current_time()
    problem: dict[str, Any] | None = None
    case_no: str | None = None
    try:
        async with session.begin_nested():
            case_no = await apply(_Moment(ctx, push.occurred_at, now))
    except Problem as refused:
        if refused.type_ == "version-conflict":
            raise  # an officer moved the case at the same moment: the consumer tries again on the new state
        problem = pushes.push_problem(refused)
    except _SecondCorrection as second:
        problem = pushes.push_problem(second.problem)
        # As for an officer: the attempt is an anomaly on the supervisor's ledger, kept.
        refused_case = second.refused
        await record_anomaly(session, case_id=refused_case.case_id, case_no=refused_case.case_no,
                             department=refused_case.department, step="second_correction",
                             detail=f"request_correction by {pushes.system_actor(push.department)}: a second notice",
                             at=now)  # fmt: skip
    outcome = "refused" if problem else "applied"
    settled = contract.CasePushSettled(
        push_id=push.push_id, department=push.department, event_id=push.event_id, push_type=push_type,
        outcome=outcome, problem=problem, case_no=case_no, at=now,
    )  # fmt: skip
    await outbox.add(session, envelope(settled, subject=case_no or push.push_id))
    log.info("push %s (%s) of %s: %s%s", push.push_id, push_type, push.department, outcome,
             f" ({problem['rule']})" if problem else "")  # fmt: skip


class _SecondCorrection(Exception):
    def __init__(self, refused: SecondCorrectionRefused, problem: Problem) -> None:
        self.refused, self.problem = refused, problem


@dataclasses.dataclass
class _Moment:
    """The context a push's step runs in: the service's, with the step's own time (see ``at``)."""

    ctx: Context
    occurred_at: datetime
    now: datetime

    def at(self, case: Case | None) -> Context:
        when = pushes.step_time(self.occurred_at, now=self.now, not_before=case.updated_at if case else None)
        return dataclasses.replace(self.ctx, now=lambda: when)


# ---- decisions on platform cases ---------------------------------------------------------------
async def _decide(session: AsyncSession, moment: _Moment, push: DepartmentCaseDecision) -> str:
    data = push.data
    case = await load_case(session, data.case_no)
    if case is None:
        raise pushes.refusal("not-found", "Not found", "no such case", rule="not_found", field="data.case_no")
    matter = await matter_of_case(session, case)
    relation = access.system_relation(push.department, case_department=case.department,
                                      branch_departments=matter.get("parallel_departments", []))  # fmt: skip
    on_branch = relation == access.BRANCH_SYSTEM and data.action in access.BRANCH_STEPS
    action = f"branch.{data.action}" if on_branch else f"case.{data.action}"
    access.check(action, relation, (access.SYSTEM_ROLE,))
    body = _body(data.action, data.reason, data.items)
    ctx = moment.at(case)
    actor = pushes.system_actor(push.department)
    if on_branch:
        await decide_branch(session, ctx, case, push.department, action=data.action, reason=body.reason, actor=actor,
                            version=None)  # fmt: skip
    else:
        await _move(session, ctx, case, data.action, states.OFFICER, actor, body,
                    await _named(session, push, matter))  # fmt: skip
    return case.case_no


def _body(action: str, reason: str | None, items: list[Any] | None) -> ActionRequest:
    """The push's step as an officer's request: caseflow's own checks of its text (one-line safe
    text, lengths, material names) refuse what an officer could not send either."""
    values: dict[str, Any] = {"action": action}
    if reason is not None:
        values["reason"] = reason
    if items is not None:
        values["items"] = [item.model_dump() for item in items]
    try:
        return ActionRequest.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error.get("loc", ()))
        inner = (error.get("ctx") or {}).get("error")
        rule = inner.rule if isinstance(inner, RuleViolation) else str(error.get("type", "invalid"))
        raise Problem(422, "validation", "Request is not valid", f"{field}: {error.get('msg', 'invalid')}",
                      errors=[{"field": field, "rule": rule, "message": str(error.get("msg", "invalid"))}]) from None  # fmt: skip


async def _move(session: AsyncSession, ctx: Context, case: Case, action: str, party: str, actor: str,
                body: ActionRequest | None, detail: dict[str, Any]) -> None:  # fmt: skip
    """The transition an officer's (or the applicant's) step takes, by the department's system."""
    roles = (states.APPLICANT,) if party == states.APPLICANT else (access.SYSTEM_ROLE,)
    try:
        await apply_action(session, ctx, case, action=action, roles=roles, actor=actor, expected_version=None,
                           body=body, system_detail=detail)  # fmt: skip
    except SecondCorrectionRefused as refused:
        problem = Problem(409, "second-correction", "Second correction request",
                          "the case was already sent back once for corrections; all items are told in one notice",
                          rule="transition", state=case.state)  # fmt: skip
        raise _SecondCorrection(refused, problem) from None


async def _named(session: AsyncSession, push: Any, matter: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the timeline line says of the pushing system: its department's name from the catalog
    (the case's own matter version when it is that department's, else the newest matter version of
    that department that carries one), the push's ids."""
    name = matter.get("department_name") if matter and matter.get("department") == push.department else None
    if name is None:
        rows = await session.execute(
            select(MatterDefinition.definition).where(MatterDefinition.department == push.department)
            .order_by(MatterDefinition.received_at.desc()).limit(5)
        )  # fmt: skip
        names = (json.loads(definition).get("department_name") for (definition,) in rows)
        name = next((n for n in names if n), None)
    return {"by": {"department": push.department, "name": name}, "push_id": push.push_id,
            "event_id": push.event_id}  # fmt: skip


# ---- progress of cases handled in the department's own system ----------------------------------
async def _progress(session: AsyncSession, moment: _Moment, push: DepartmentCaseProgress) -> str:
    data = push.data
    query = select(Case).where(Case.department == push.department,
                               Case.department_case_id == data.department_case_id)  # fmt: skip
    case = (await session.execute(query)).scalar_one_or_none()
    if data.step == pushes.RECEIVED:
        if case is not None:
            raise pushes.refusal("illegal-transition", "Not possible in this state",
                                 f"this department case was received already (case {case.case_no}, {case.state})",
                                 rule="transition", field="data.step")  # fmt: skip
        return await _mirror(session, moment, push)
    if case is None:
        raise pushes.refusal("not-found", "Not found", "no case was received under this department case id",
                             rule="not_found", field="data.department_case_id")  # fmt: skip
    access.check("case.mirror", access.DEPARTMENT_SYSTEM, (access.SYSTEM_ROLE,))  # found by its own department
    if data.matter_code != case.matter_code:
        raise pushes.refusal("validation", "Request is not valid", f"the case is for {case.matter_code}",
                             rule="same_matter", field="data.matter_code")  # fmt: skip
    if data.applicant != case.applicant:
        raise pushes.refusal("validation", "Request is not valid", "the case has another applicant",
                             rule="same_applicant", field="data.applicant")  # fmt: skip
    action, party = pushes.step_action(data.step)
    body = (
        _body(action, data.reason, data.items)
        if action in {"reject", "deny", "request_correction", "approve"}
        else None
    )
    await case.awaitable_attrs.pauses
    await _move(session, moment.at(case), case, action, party, pushes.system_actor(push.department), body,
                await _named(session, push, await matter_of_case(session, case)))  # fmt: skip
    return case.case_no


def _checked_applicant(kind: str, subject: str) -> str:
    """The applicant's subject id, its check character verified (GB 11643 / GB 32100)."""
    try:
        return validate_id_number(subject) if kind == "person" else validate_uscc(subject)
    except RuleViolation as violation:
        raise pushes.refusal("validation", "Request is not valid", violation.message, rule=violation.rule,
                             field="data.applicant") from None  # fmt: skip


async def _mirror(session: AsyncSession, moment: _Moment, push: DepartmentCaseProgress) -> str:
    """``received``: the platform case mirroring the department's, with its number and query code,
    its clocks as any case's, and the applicant told like at a submission."""
    data = push.data
    definition = await get_matter(session, data.matter_code)
    if definition is None:
        raise pushes.refusal("validation", "Request is not valid", "no published matter with this code",
                             rule="published", field="data.matter_code")  # fmt: skip
    relation = access.system_relation(push.department, case_department=definition.department, branch_departments=())
    access.check("case.mirror", relation, (access.SYSTEM_ROLE,))
    matter = definition.definition
    if data.applicant_kind not in matter.get("audience", ["person", "enterprise"]):
        raise pushes.refusal("forbidden", "Not allowed", f"this matter does not serve {data.applicant_kind} applicants",
                             rule="audience", field="data.applicant_kind")  # fmt: skip
    applicant = _checked_applicant(data.applicant_kind, data.applicant)
    ctx = moment.at(None)
    now = ctx.current_time()
    today = now.astimezone(ZoneInfo(ctx.settings.timezone)).date()
    division = matter.get("division_code") or ctx.settings.default_division
    case_no = make_case_number(division, today, await reserve_one_in(session, division, today))
    actor = pushes.system_actor(push.department)
    case = Case(
        case_no=case_no, query_code=make_query_code(), matter_code=definition.code,
        matter_version=definition.version, matter_name=definition.name, department=definition.department,
        applicant=applicant, applicant_kind=data.applicant_kind,
        # The push's word is no verified source of a name, and caseflow has none other: no name.
        applicant_name=None, agent_name=None, contact_phone=None, agent=None, state="submitted", version=1,
        suspended_from=None, correction_count=0, extension_days=0, extension_reason=None, reviewed=False,
        online=False,  # handled at the department's own counter
        delivery=dumps({"method": "window"}), form=dumps({}), materials=dumps([]), correction_items=None,
        decision_reason=None, fees_paid_yuan=None, received_on=today, resubmitted_on=None, accepted_on=None,
        deemed_accepted=False, decided_on=None, completed_on=None, idempotency_key=None,
        request_hash=hashlib.sha256(f"{push.department}\n{data.department_case_id}".encode()).hexdigest(),
        bundle=None, origin=MIRRORED, department_case_id=data.department_case_id, created_at=now, updated_at=now,
        channel="department", helped_by=None, helper_name=None, fees_status=None,
    )  # fmt: skip
    set_clocks(await calendars.load(session), case, matter, [])
    submitted = contract.CaseSubmitted(**base_fields(case, actor, now), applicant=applicant, delivery="window",
                                       received_on=today, channel="department")  # fmt: skip
    detail = {**await _named(session, push, matter), "department_case_id": data.department_case_id}
    step = steps.Step(
        steps.line(case, now, "receive", actor, None, "submitted", dumps(detail)),
        message=notifications.message(case, "mirror", {}, now),
        events=[envelope(submitted, subject=case_no)],
    )
    await steps.insert_case(session, case, step)
    return case_no


HANDLERS = {DECISION: on_case_decision, PROGRESS: on_case_progress}
