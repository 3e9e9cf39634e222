"""Moving a case: the officers' steps, the applicant's resubmission and withdrawal, and the
system's (timers, other services' events). Who may act is checked by ``cases.access.authorize``
before anything here runs; what may happen is domain/states.py; the clocks are recomputed."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from contracts.events import caseflow as contract
from kit.auth import Principal
from kit.errors import Problem, field_problem
from kit.events import envelope
from services.caseflow import branches, calendars, notifications, steps
from services.caseflow.adapters.licences import CheckedLicence
from services.caseflow.cases import fees, licences
from services.caseflow.cases.access import authorize
from services.caseflow.cases.common import (
    Context,
    base_fields,
    dumps,
    matter_of_case,
    recompute_clocks,
    record_anomaly,
)
from services.caseflow.cases.submission import check_materials, verified_names
from services.caseflow.domain import states
from services.caseflow.domain.application import fee_mismatch
from services.caseflow.domain.case_clock import extension_limit
from services.caseflow.domain.form import FormInvalid, check_changes
from services.caseflow.domain.shipments import original_materials
from services.caseflow.models import Case, CaseBranch, CasePause
from services.caseflow.schemas import ActionRequest, ResubmitRequest

MIRRORED = "department"  # Case.origin of a case mirrored from a department's own system (ADR 0021)

ANOMALY_TEXT = {
    "decision_without_review": "{action} by {actor} without a review",
    "fee_mismatch": "{action} by {actor}: fees paid differ from the matter's fees",
}


class SecondCorrectionRefused(Exception):
    """Raised after the refusal was decided; the route records the anomaly in its own transaction."""

    def __init__(self, case_id: int, case_no: str, department: str) -> None:
        self.case_id, self.case_no, self.department = case_id, case_no, department


def parse_version(if_match: str | None, *, required: bool) -> int | None:
    """The case version from ``If-Match`` (``"3"``, ``W/"3"`` or ``3``)."""
    if if_match is None:
        if required:
            raise Problem(428, "precondition-required", "If-Match required", "send If-Match: <case version>")
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 9:
        raise field_problem("If-Match", "integer", "the case version is an integer")
    return int(value)


def _refusal(exc: states.TransitionError, case: Case) -> Problem:
    if isinstance(exc, states.PartyNotAllowed):
        return Problem(403, "role-not-allowed", "Not allowed", str(exc), rule="party", state=case.state)
    if isinstance(exc, states.AlreadyExtended):
        return Problem(409, "already-extended", "Already extended", str(exc), state=case.state)
    if isinstance(exc, states.OriginalsReceived):
        return Problem(409, "originals-received", "Originals received", str(exc), state=case.state)
    if isinstance(exc, states.NoOriginals):
        return Problem(409, "no-originals", "No originals", str(exc), state=case.state)
    if isinstance(exc, states.BranchesPending):
        return Problem(409, "branches-pending", "Parallel branches pending", str(exc), state=case.state,
                       pending=list(exc.pending))  # fmt: skip
    return Problem(409, "illegal-transition", "Not possible in this state", str(exc), state=case.state)


def _require(value: Any, field: str, message: str) -> None:
    if not value:
        raise field_problem(field, "required", message)


def _open_pause(case: Case, *, correction: bool) -> CasePause | None:
    """The correction pause (or the Art. 45 suspension) still running; pauses are loaded."""
    return next((p for p in case.pauses if p.ended_on is None and (p.reason == "correction") == correction), None)


def party_of(roles: tuple[str, ...]) -> str:
    """The state machine's party for the roles an action is taken with."""
    if states.SYSTEM in roles:
        return states.SYSTEM
    return states.APPLICANT if states.APPLICANT in roles else states.OFFICER


def case_facts(case: Case, matter: dict[str, Any], pending: list[str]) -> dict[str, Any]:
    """What the state machine needs to know of the case besides its state."""
    return dict(
        instant=matter.get("kind") == "instant",
        suspended_from=case.suspended_from,
        corrections=case.correction_count,
        extended=case.extension_days > 0,
        pending_branches=tuple(pending),
        originals_received=case.originals_received_on is not None,
        needs_originals=bool(original_materials(matter)),
    )


async def apply_action(session: AsyncSession, ctx: Context, case: Case, **kwargs: Any) -> Case:
    """Move the case by one action (see ``_apply_action``); a concurrent winner gives 409."""
    old_state = case.state
    try:
        return await _apply_action(session, ctx, case, **kwargs)
    except StaleDataError as exc:  # UPDATE … WHERE version = :loaded matched nothing
        raise version_conflict(old_state) from exc


async def _apply_action(
    session: AsyncSession,
    ctx: Context,
    case: Case,
    *,
    action: str,
    roles: tuple[str, ...],
    actor: str,
    expected_version: int | None,
    body: Any = None,
    principal: Principal | None = None,
    system_detail: dict[str, Any] | None = None,
    checked_licences: dict[int, CheckedLicence] | None = None,
) -> Case:
    """Move the case by one action: guard, effects, clocks, timeline and event, in the caller's
    transaction. ``roles`` says which party acts (``("system",)``, ``("applicant",)`` or an
    officer's roles, already checked against domain/access.py). A stale ``expected_version`` (or a
    concurrent winner) gives 409."""
    check_version(case, expected_version)
    matter = await matter_of_case(session, case)
    await case.awaitable_attrs.pauses  # loaded before any change (no lazy load half-way)
    pending = await branches.pending_departments(session, case.id) if action == "approve" else []
    new_state = next_state(case, matter, action, roles, pending)

    # One UPDATE of the case row, at the flush below: no autoflush half-way (each would bump the version).
    with session.no_autoflush:
        now = ctx.current_time()
        today = ctx.today()
        old_state = case.state
        detail: dict[str, Any] = dict(system_detail or {})
        if action == "resubmit":
            await _resubmit(session, ctx, case, matter, body, principal, detail, today, checked_licences)
        anomaly = effects(case, matter, action, actor, body, detail, today)
        case.state = new_state
        case.updated_at = now
        await recompute_clocks(session, await calendars.load(session), case, matter)
    made: list[CaseBranch] = []
    # A mirrored case (ADR 0021) is handled whole in its department's own system: no branches here.
    if (action in {"accept", "deem_accept"} and new_state == "accepted" and matter.get("parallel_departments")
            and case.origin != MIRRORED):  # fmt: skip
        made = branches.fan_out(session, await calendars.load(session), case, matter, case.accepted_on)
        detail["branches"] = [b.department for b in made]
    if action == "withdraw":
        for branch in await branches.branches_of(session, case.id):
            if branch.state == "pending":
                branch.state = "cancelled"
    step = step_of(case, matter, action, actor, old_state, detail, getattr(body, "reason", None), now, made)
    await steps.move(session, case, step)  # UPDATE … WHERE version = :loaded: a concurrent winner → 409
    if anomaly:
        await record_anomaly(session, case_id=case.id, case_no=case.case_no, department=case.department,
                             step=anomaly, detail=ANOMALY_TEXT[anomaly].format(action=action, actor=actor), at=now)  # fmt: skip
    return case


def check_version(case: Case, expected_version: int | None) -> None:
    """409 when the caller's If-Match is not the case's version."""
    if expected_version is not None and case.version != expected_version:
        raise Problem(409, "version-conflict", "The case changed",
                      f"the case is at version {case.version}, not {expected_version}", state=case.state,
                      version=case.version)  # fmt: skip


def version_conflict(state: str) -> Problem:
    """Another action moved the case between its load and this step's version-checked write."""
    return Problem(409, "version-conflict", "The case changed", "another action changed the case first", state=state)


def next_state(case: Case, matter: dict[str, Any], action: str, roles: tuple[str, ...], pending: list[str]) -> str:
    """The state the action moves the case to, or the refusal (the state machine's, the fees')."""
    try:
        new_state = states.transition(case.state, action, party_of(roles), **case_facts(case, matter, pending))
    except states.SecondCorrection as exc:
        raise SecondCorrectionRefused(case.id, case.case_no, case.department) from exc
    except states.TransitionError as exc:
        raise _refusal(exc, case) from exc
    fees.guard(case, matter, action)  # 网上缴费: the step waits for the fees (ADR 0026)
    return new_state


def step_of(case: Case, matter: dict[str, Any], action: str, actor: str, old_state: str, detail: dict[str, Any],
            reason: str | None, now: datetime, made: list[CaseBranch]) -> steps.Step:  # fmt: skip
    """The step's timeline line, message and events, once the case holds its new state and clocks."""
    deadlines = json.loads(case.deadlines)
    if action == "extend" and "decision" in deadlines:
        detail["new_due"] = deadlines["decision"]["due"]
    events = _events(case, matter, action, base_fields(case, actor, now), reason, detail, deadlines, made)
    return steps.Step(
        steps.line(case, now, action, actor, old_state, case.state, dumps(detail)),
        message=notifications.message(case, action, detail, now),
        events=[envelope(data, subject=case.case_no) for data in events],
    )


def effects(case: Case, matter: dict[str, Any], action: str, actor: str, body: Any, detail: dict[str, Any],
            today: date) -> str | None:  # fmt: skip
    """What the action changes on the case besides its state (a resubmission's form and materials
    are ``_resubmit``'s); the anomaly it reveals, if any."""
    reason = getattr(body, "reason", None)
    if action in {"reject", "deny"}:
        _require(reason, "reason", f"{'a rejection' if action == 'reject' else 'a denial'} states its reasons")
        case.decision_reason = reason
        detail["reason"] = reason
    if action == "request_correction":
        items = body.items if isinstance(body, ActionRequest) else None
        _require(items, "items", "list ALL missing or faulty materials in this one notice")
        known = {m["name"] for m in matter.get("materials", [])} | {"form"}
        unknown = [i.material for i in items if i.material not in known and not i.material.startswith("form.")]
        if unknown:
            raise field_problem("items", "known_material", f"not materials of this matter: {', '.join(unknown)}")
        case.correction_count += 1
        case.correction_items = dumps([i.model_dump() for i in items])
        case.pauses.append(CasePause(case_id=case.id, reason="correction", started_on=today))
        detail["items"] = [i.model_dump() for i in items]
    elif action in {"accept", "deem_accept"}:
        if action == "deem_accept":
            case.accepted_on = case.resubmitted_on or case.received_on  # Art. 32: as of receipt
            case.deemed_accepted = True
        else:
            case.accepted_on = today
        if matter.get("kind") == "instant":
            case.decided_on = today
    elif action == "review":
        case.reviewed = True
    elif action in {"approve", "deny"}:
        case.decided_on = today
        if action == "approve" and reason:
            case.decision_reason = reason  # a grant's reasons are kept, like a denial's
            detail["reason"] = reason
        running = json.loads(case.deadlines).get("decision")
        detail["decision_due"] = running["due"] if running else None  # for the on-time rate
        # A mirrored case's review happens in the department's own system (no progress step reports it).
        has_review_step = case.origin != MIRRORED and any(
            "reviewer" in s.get("roles", []) for s in matter.get("steps", [])
        )
        if not case.reviewed and has_review_step:
            return "decision_without_review"
        # The self-declared fees_paid_yuan; a case paying through payment is checked by its events (cases/fees.py).
        if action == "approve" and case.fees_status is None and fee_mismatch(matter, case.fees_paid_yuan):
            return "fee_mismatch"
    elif action == "suspend":
        suspension = body.suspension if isinstance(body, ActionRequest) else None
        expected = body.expected_days if isinstance(body, ActionRequest) else None
        _require(suspension, "suspension", "name the Art. 45 procedure (hearing, testing, expert_review, …)")
        _require(expected, "expected_days", "the applicant is told how long it will take (working days)")
        case.suspended_from = case.state
        case.pauses.append(CasePause(case_id=case.id, reason=suspension, started_on=today,
                                     expected_days=expected, note=reason))  # fmt: skip
        detail.update(suspension=suspension, expected_days=expected, reason=reason)
    elif action == "resume":
        pause = _open_pause(case, correction=False)
        if pause is not None:
            pause.ended_on = today
        case.suspended_from = None
    elif action == "extend":
        _require(reason, "reason", "the applicant is told the reason for the extension (Art. 42)")
        case.extension_days = extension_limit(matter)
        case.extension_reason = reason
        detail.update(days=case.extension_days, reason=reason, approved_by=actor)
    elif action == "complete":
        # Art. 44's delivery clock closes with the case: kept on the line for the on-time rate. Completed
        # by express's signature, the case is completed on the day of the signature (the carrier's time),
        # never before the decision nor after today, however late the event arrives.
        running = json.loads(case.deadlines).get("delivery")
        detail["delivery_due"] = running["due"] if running else None
        signed = detail.get("signed_on")
        completed = date.fromisoformat(signed) if signed else today
        case.completed_on = min(max(completed, case.decided_on or completed), today)
    elif action == "originals_received":
        case.originals_received_on = today
        detail["received_on"] = today.isoformat()
    elif action == "withdraw":
        for pause in case.pauses:
            if pause.ended_on is None:
                pause.ended_on = today
    return None


async def _resubmit(session: AsyncSession, ctx: Context, case: Case, matter: dict[str, Any], body: Any,
                    principal: Principal | None, detail: dict[str, Any], today: date,
                    checked_licences: dict[int, CheckedLicence] | None) -> None:  # fmt: skip
    """补正: the changed form fields (the whole form checked again) and the replaced materials."""
    pause = _open_pause(case, correction=True)
    if pause is not None:
        pause.ended_on = today
    case.resubmitted_on = today
    if not isinstance(body, ResubmitRequest):
        return
    verified = verified_names(principal)[0] if principal is not None else None
    try:
        form = check_changes(matter.get("form_fields", []), json.loads(case.form), body.form, verified_name=verified)
    except FormInvalid as invalid:
        raise Problem(422, "validation", "Request is not valid", invalid.errors[0]["message"],
                      errors=invalid.errors) from None  # fmt: skip
    case.form = dumps(form)
    if body.materials and principal is not None:
        replaced = await check_materials(session, ctx, principal, matter, body.materials, partial=True,
                                         holder=case.applicant, case_no=case.case_no, checked=checked_licences)  # fmt: skip
        names = {m["name"] for m in replaced}
        case.materials = dumps([m for m in json.loads(case.materials) if m["name"] not in names] + replaced)
    detail["changed"] = sorted(body.form) + [m.name for m in body.materials]


def _events(case: Case, matter: dict[str, Any], action: str, fields: dict[str, Any], reason: str | None,
            detail: dict[str, Any], deadlines: dict[str, Any], made: list[CaseBranch] | None = None) -> list[Any]:  # fmt: skip
    """The events the step publishes (the contracts in contracts/events/caseflow.py)."""
    if action in {"accept", "deem_accept"}:
        # The department's system needs the applicant; each parallel department its branch (exchange).
        accepted = contract.CaseAccepted(**fields, accepted_on=case.accepted_on, deemed=case.deemed_accepted,
                                         applicant=case.applicant, branches=[b.department for b in made or []])  # fmt: skip
        assigned = [contract.CaseBranchAssigned(**fields, branch_department=b.department, applicant=case.applicant,
                                                due_on=b.due_on) for b in made or []]  # fmt: skip
        return [accepted, _approved(case, fields, matter, None)] if case.state == "approved" else [accepted, *assigned]
    if action == "reject":
        return [contract.CaseRejected(**fields, reason=reason)]
    if action == "request_correction":
        return [contract.CaseCorrectionRequested(**fields, items=detail["items"])]
    if action == "resubmit":
        return [contract.CaseResubmitted(**fields)]
    if action == "review":
        return [contract.CaseReviewed(**fields)]
    if action == "approve":
        return [_approved(case, fields, matter, reason)]
    if action == "deny":
        return [contract.CaseDenied(**fields, reason=reason)]
    if action == "suspend":
        return [contract.CaseSuspended(**fields, reason=detail["suspension"], expected_days=detail["expected_days"])]
    if action == "resume":
        return [contract.CaseResumed(**fields)]
    if action == "extend":
        due = detail.get("new_due")
        return [contract.CaseExtended(**fields, days=case.extension_days, reason=reason,
                                      new_due=date.fromisoformat(due) if due else None)]  # fmt: skip
    if action == "deliver":
        delivery = json.loads(case.delivery)
        if delivery.get("method") != "ems":
            return []
        due = deadlines.get("delivery", {}).get("due")
        return [contract.CaseDeliveryRequested(
            **fields, applicant=case.applicant, recipient=delivery["recipient"], phone=delivery["phone"],
            address=delivery["address"], division_code=delivery.get("division_code"),
            due=date.fromisoformat(due) if due else None,
        )]  # fmt: skip
    if action == "complete":
        return [contract.CaseCompleted(**fields)]
    if action == "withdraw":
        return [contract.CaseWithdrawn(**fields)]
    return []


def _approved(case: Case, fields: dict[str, Any], matter: dict[str, Any], reason: str | None) -> contract.CaseApproved:
    # A mirrored case's certificate is the department's own (it pushes licence.issued): none issued here.
    licence_type = (matter.get("result") or {}).get("licence_type") if case.origin != MIRRORED else None
    licence = {"applicant_kind": case.applicant_kind, "applicant_name": case.applicant_name,
               "form": json.loads(case.form)} if licence_type else {}  # fmt: skip
    return contract.CaseApproved(**fields, applicant=case.applicant, approved_on=case.decided_on, reason=reason,
                                 result_licence_type=licence_type, **licence)  # fmt: skip


def refuse_if_mirrored(case: Case) -> None:
    """A mirrored case moves only by its department's pushes: the platform's own steps would part
    it from the department's record (409, rule ``mirrored``)."""
    if case.origin == MIRRORED:
        raise Problem(409, "mirrored-case", "Handled in the department's own system",
                      "the department's system reports this case's steps", rule="mirrored", state=case.state)  # fmt: skip


async def officer_action(
    session: AsyncSession, ctx: Context, principal: Principal, case_no: str, body: ActionRequest, if_match: str | None
) -> Case:
    """An officer's step on the lead case (domain/access.py: ``case.<action>``), If-Match required."""
    version = parse_version(if_match, required=True)
    case = (await authorize(session, principal, f"case.{body.action}", case_no)).case
    refuse_if_mirrored(case)
    return await apply_action(
        session, ctx, case, action=body.action, roles=principal.roles, actor=principal.subject,
        expected_version=version, body=body, principal=principal,
    )  # fmt: skip


async def applicant_action(
    session: AsyncSession,
    ctx: Context,
    principal: Principal,
    case_no: str,
    action: str,
    body: ResubmitRequest | None,
    if_match: str | None,
) -> Case:
    """The applicant's (or its agent's, within the mandate) resubmission or withdrawal."""
    version = parse_version(if_match, required=False)
    case = (await authorize(session, principal, f"case.{action}", case_no)).case
    refuse_if_mirrored(case)
    checked = await _licences_outside_the_transaction(session, ctx, case, action, body, version)
    return await apply_action(
        session, ctx, case, action=action, roles=(states.APPLICANT,), actor="applicant",
        expected_version=version, body=body, principal=principal, checked_licences=checked,
    )  # fmt: skip


async def _licences_outside_the_transaction(session: AsyncSession, ctx: Context, case: Case, action: str,
                                            body: ResubmitRequest | None,
                                            version: int | None) -> dict[int, CheckedLicence] | None:  # fmt: skip
    """A resubmission's e-licences, asked about before the case is changed, with the read
    transaction ended: nothing is written yet and the case's version check catches a concurrent
    change. None when there is nothing to ask or the step will be refused anyway (asked nothing)."""
    if action != "resubmit" or body is None or not body.materials:
        return None
    if version is not None and version != case.version:
        return None
    matter = await matter_of_case(session, case)
    wanted = licences.wanted(matter, body.materials)
    if not wanted or action not in states.allowed_actions(case.state, states.APPLICANT, **case_facts(case, matter, [])):
        return None
    await session.commit()
    try:
        return await licences.check_all(ctx.licences, wanted, holder=case.applicant, case_no=case.case_no)
    except licences.LicencesRefused as refused:
        raise refused.problem from None


async def recompute_provisional(session: AsyncSession) -> int:
    """After a calendar year is loaded: recompute every open case whose deadline was provisional."""
    calendar = await calendars.load(session)
    open_cases = (
        await session.execute(
            select(Case).where(Case.due_provisional.is_(True), Case.state.not_in(tuple(states.TERMINAL)))
        )
    ).scalars()
    count = 0
    for case in open_cases:
        await recompute_clocks(session, calendar, case, await matter_of_case(session, case))
        count += 1
    await session.flush()
    return count


async def complete_by_event(session: AsyncSession, ctx: Context, case_no: str, *, action: str, note: dict) -> None:
    """Express or licence told us something about a case: apply it as the system, if still possible."""
    case = (await session.execute(select(Case).where(Case.case_no == case_no))).scalar_one_or_none()
    if case is None:
        return
    try:
        await apply_action(session, ctx, case, action=action, roles=(states.SYSTEM,), actor="system",
                           expected_version=None, system_detail=note)  # fmt: skip
    except Problem:
        return  # already completed, withdrawn, …: nothing to do


async def note_on_timeline(session: AsyncSession, ctx: Context, case_no: str, action: str, note: dict) -> None:
    """A line on the case's timeline that changes nothing else (a licence issued, a material read)."""
    case = (await session.execute(select(Case).where(Case.case_no == case_no))).scalar_one_or_none()
    if case is not None:
        entry = steps.line(case, ctx.current_time(), action, "system", case.state, case.state, dumps(note))
        await steps.write(session, case, steps.Step(entry))
