"""统一窗口出件: a result delivered at the window is handed out at the counter of ANY department (the
hall's comprehensive window), not only by the deciding department (ADR 0026).

Who may is domain/access.py's ``case.hand_out`` (a counter officer from any relation to the case;
the department's own acceptor too). What must hold: delivery at the window; approved (or being
delivered); the result licence issued where the result is a licence; the fees paid where they are
due before delivery. The receiver is the applicant, or another person whose ID number is checked
(GB 11643) and kept only masked. It completes the case through the state machine's ``complete``
(If-Match: the case version) and adds the line ``hand_out`` (统一窗口出件). A retry after success
(the case completed by a hand-out to the same receiver) gets the same answer and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import Problem, RuleViolation, field_problem
from kit.masking import mask_id_number, mask_name
from kit.subject_ids import validate_id_number
from kit.text import text_problem
from services.caseflow import steps
from services.caseflow.cases import fees
from services.caseflow.cases.access import authorize
from services.caseflow.cases.common import Context, dumps, matter_of_case
from services.caseflow.cases.licences import issued_licence
from services.caseflow.cases.transitions import apply_action, parse_version, refuse_if_mirrored
from services.caseflow.models import Case

LABEL = "统一窗口出件"
READY_STATES = ("approved", "delivering")


def receiver_of(case: Case, body: Any, *, today) -> dict[str, Any]:
    """Who received the result, as the timeline keeps it: the applicant (its verified name), or
    another person — name and ID number masked, the number checked first (GB 11643)."""
    if body.receiver == "applicant":
        return {"received_by": "applicant", "name": case.applicant_name}
    name = (body.name or "").strip()
    if not name:
        raise field_problem("name", "required", "the name of the person who receives the result")
    bad = text_problem(name, multiline=False)
    if bad is not None:
        raise field_problem("name", *bad)
    if not body.id_number:
        raise field_problem("id_number", "required", "the ID number of the person who receives the result")
    try:
        number = validate_id_number(body.id_number, today=today)
    except RuleViolation as exc:
        raise field_problem("id_number", exc.rule, exc.message) from None
    return {"received_by": "other", "name": mask_name(name), "id_number": mask_id_number(number)}


async def readiness(session: AsyncSession, case: Case) -> list[str]:
    """What still keeps the result from the window (empty: it may be handed out now)."""
    waiting = []
    if json.loads(case.delivery or "{}").get("method") != "window":
        waiting.append("window_delivery")
    if case.state not in READY_STATES:
        waiting.append("approved")
    matter = await matter_of_case(session, case)
    if fees.blocks(case, matter, "hand_out"):
        waiting.append("fees_paid")
    result = matter.get("result") or {}
    if (result.get("form") == "licence" and result.get("licence_type") and case.origin == "platform"
            and await issued_licence(session, case.id) is None):  # fmt: skip
        waiting.append("licence_issued")
    return waiting


_REFUSALS = {
    "window_delivery": (409, "not-window-delivery", "the result of this case is not delivered at the window"),
    "approved": (409, "illegal-transition", "only an approved result is handed out"),
    "fees_paid": (409, "fees-unpaid", "the fees are not paid yet"),
    "licence_issued": (409, "result-not-ready", "the result licence has not been issued yet"),
}


def _handed_out_to(case: Case, receiver: dict[str, Any]) -> bool:
    """The case was completed by a hand-out to this receiver (a retry of it)."""
    if case.state != "completed":
        return False
    return any(line.action == "hand_out" and json.loads(line.detail).get("receiver") == receiver
               for line in case.timeline)  # fmt: skip


async def hand_out(session: AsyncSession, ctx: Context, principal: Principal, case_no: str, body: Any,
                   if_match: str | None) -> Case:  # fmt: skip
    case = (await authorize(session, principal, "case.hand_out", case_no)).case
    refuse_if_mirrored(case)
    receiver = receiver_of(case, body, today=ctx.today())
    if _handed_out_to(case, receiver):
        return case  # natural idempotence: the same hand-out again
    version = parse_version(if_match, required=True)
    waiting = await readiness(session, case)
    if waiting:
        status, type_, detail = _REFUSALS[waiting[0]]
        raise Problem(status, type_, "Not ready for the window", detail, rule=waiting[0], state=case.state,
                      waiting_for=waiting)  # fmt: skip
    note = {"via": "hand_out", "window": principal.department}
    await apply_action(session, ctx, case, action="complete", roles=principal.roles, actor=principal.subject,
                       expected_version=version, system_detail=note)  # fmt: skip
    detail = {"label": LABEL, "receiver": receiver, "window": principal.department}
    line = steps.line(case, ctx.current_time(), "hand_out", principal.subject, case.state, case.state, dumps(detail))
    await steps.write(session, case, steps.Step(line))
    return case


async def hand_out_sheet(session: AsyncSession, principal: Principal, case_no: str) -> dict[str, Any]:
    """What the window sees before handing out: the case, the applicant's masked name, readiness."""
    case = (await authorize(session, principal, "case.hand_out", case_no)).case
    return await sheet_out(session, case)


async def sheet_out(session: AsyncSession, case: Case) -> dict[str, Any]:
    handed = next((json.loads(line.detail) for line in reversed(case.timeline) if line.action == "hand_out"), None)
    return {
        "case_no": case.case_no,
        "matter": case.matter_name,
        "department": case.department,
        "applicant": mask_name(case.applicant_name) if case.applicant_name else None,
        "state": case.state,
        "version": case.version,
        "waiting_for": await readiness(session, case) if case.state != "completed" else [],
        "handed_out": handed,
        "completed_on": case.completed_on.isoformat() if case.completed_on else None,
    }
