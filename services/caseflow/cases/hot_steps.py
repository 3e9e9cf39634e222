"""An officer's step on the driver (kit.driver, issue 15).

The case is read in one statement outside any transaction (``case_rows``), the step is decided by
``transitions``' own functions (who may act, the state machine, the fees, the effects, the clocks,
the line, message and events), and written: on PostgreSQL the case's version-checked UPDATE with
its line, message and events as one statement in autocommit (``steps.writing``: no BEGIN or
COMMIT round trip); a step that also starts or ends a pause, or reveals an anomaly, writes those
with it in one transaction. A concurrent action that moved the case after it was read leaves that
UPDATE matching nothing: 409, nothing written. The answer is built from what was read and written.
A case under parallel departments (its branches: fanned out on acceptance, waited for on
approval) takes ``transitions.officer_action`` on the session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kit.auth import Principal
from kit.driver import Driver
from services.caseflow import calendars, steps
from services.caseflow.cases import case_rows, reading
from services.caseflow.cases.access import relation_under
from services.caseflow.cases.common import Context, matter_of_case_on, not_found, record_anomaly_on, set_clocks
from services.caseflow.cases.transitions import (
    ANOMALY_TEXT,
    check_version,
    effects,
    next_state,
    parse_version,
    refuse_if_mirrored,
    step_of,
    version_conflict,
)
from services.caseflow.domain import access
from services.caseflow.schemas import ActionRequest


@dataclass
class Stepped:
    """The case's answer after the step (schemas.CaseDetail) and its new version (the ETag)."""

    answer: dict[str, Any]
    version: int


async def officer_action_on(
    db: Driver, ctx: Context, principal: Principal, case_no: str, body: ActionRequest, if_match: str | None
) -> Stepped | None:
    """``transitions.officer_action`` on the driver; None when the case takes the session path."""
    version = parse_version(if_match, required=True)
    loaded = await case_rows.load_case_on(db, case_no)
    if loaded is None:
        raise not_found()
    case = loaded.case
    matter = await matter_of_case_on(db, case)
    if matter.get("parallel_departments"):
        return None
    relation = relation_under(principal, case, matter)
    await _step(db, ctx, principal, loaded, matter, relation, body, version)
    answer = reading.detail_of(case, matter=matter, relation=relation, roles=principal.roles, pauses=list(case.pauses),
                               timeline=loaded.timeline, branches=[], with_query_code=False,
                               **await case_rows.answer_parts(db, loaded))  # fmt: skip
    return Stepped(answer, case.version)


async def _step(db: Driver, ctx: Context, principal: Principal, loaded: case_rows.LoadedCase, matter: dict[str, Any],
                relation: str, body: ActionRequest, version: int | None) -> None:  # fmt: skip
    """Decide the step on the case as read, and write it: the case's version-checked UPDATE with
    the step's line, message and events — one statement in autocommit on PostgreSQL — and, in a
    transaction with it when there are any, the pauses it started or ended and its anomaly."""
    case, action, actor = loaded.case, body.action, principal.subject
    access.check(f"case.{action}", relation, principal.roles)
    refuse_if_mirrored(case)
    check_version(case, version)
    new_state = next_state(case, matter, action, principal.roles, [])  # no branches without parallel departments

    now, today = ctx.current_time(), ctx.today()
    old_state = case.state
    detail: dict[str, Any] = {}
    anomaly = effects(case, matter, action, actor, body, detail, today)
    case.state = new_state
    case.updated_at = now
    set_clocks(await calendars.load_on(db), case, matter, list(case.pauses))
    step = step_of(case, matter, action, actor, old_state, detail, body.reason, now, [])
    async with steps.writing(db, one_statement=not (anomaly or loaded.pauses_changed())) as tx:
        if not await steps.move_on(db, tx, case, loaded.changed(), step):
            raise version_conflict(old_state)
        await case_rows.store_pauses(tx, loaded)
        if anomaly:
            await record_anomaly_on(db, tx, case_id=case.id, case_no=case.case_no, department=case.department,
                                    step=anomaly, detail=ANOMALY_TEXT[anomaly].format(action=action, actor=actor),
                                    at=now)  # fmt: skip
    loaded.timeline.append(step.line)
