"""Reading cases: the detail an applicant or officer sees (with the actions they may take), their
lists, the worklist, and the public progress page behind the query code."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from operator import attrgetter, itemgetter
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Date, Integer, bindparam, exists, false, func, or_, select, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.driver import Driver, Query
from kit.masking import mask_name
from kit.pagination import PageQuery
from services.caseflow.branches import branch_out, branches_of
from services.caseflow.cases import fees, query_codes
from services.caseflow.cases.access import relation_to
from services.caseflow.cases.common import Context, matter_of_case, not_found
from services.caseflow.cases.evaluations import evaluation_out
from services.caseflow.cases.fees import fees_out
from services.caseflow.cases.licences import issued_licence, licence_out, public_licence_out
from services.caseflow.cases.pickups import pickup_out, public_shipment_out, shipment_out, shipments_of
from services.caseflow.cases.transitions import case_facts
from services.caseflow.domain import access, states
from services.caseflow.domain.case_number import valid_case_number
from services.caseflow.models import (
    OPEN_CASES,
    Case,
    CaseBranch,
    CaseEvent,
    CaseLicence,
    CasePause,
    CaseShipment,
    Evaluation,
)

# Timeline lines that are records, not steps of the case: not on the public progress page.
NOT_STEPS = frozenset({"material_read", "printed"})


def row_view(row: Mapping[str, Any]) -> SimpleNamespace:
    """A row the driver read (by column name) as the ``*_out`` functions read the ORM's objects:
    by attribute. One answer for both, so the JSON cannot drift between the two paths."""
    return SimpleNamespace(**row)


def _summary(case_no: str, matter_code: str, matter_version: int, matter_name: str, department: str, state: str,
             version: int, received_on: date, clock_step: str | None, due_on: date | None, due_provisional: bool,
             updated_at: datetime) -> dict[str, Any]:  # fmt: skip
    """A case in a list (schemas.CaseSummary), from the values of ``SUMMARY_COLUMNS`` in their order."""
    return {
        "case_no": case_no,
        "matter": {"code": matter_code, "version": matter_version, "name": matter_name},
        "department": department,
        "state": state,
        "version": version,
        "received_on": received_on.isoformat(),
        "clock_step": clock_step,
        "due_on": due_on.isoformat() if due_on else None,
        "due_provisional": due_provisional,
        "updated_at": updated_at.isoformat(),
    }


# What a case in a list shows: a list selects these rather than whole cases (issue 15).
SUMMARY_COLUMNS = (
    Case.case_no, Case.matter_code, Case.matter_version, Case.matter_name, Case.department, Case.state,
    Case.version, Case.received_on, Case.clock_step, Case.due_on, Case.due_provisional, Case.updated_at,
)  # fmt: skip
_SUMMARY_KEYS = tuple(column.key for column in SUMMARY_COLUMNS)
_summary_attributes = attrgetter(*_SUMMARY_KEYS)
_summary_values = itemgetter(*_SUMMARY_KEYS)


def summary_out(case: Case | Row[Any] | SimpleNamespace) -> dict[str, Any]:
    """A case in a list: number, matter, state, version and the running clock (a ``Case``, or a
    row of ``SUMMARY_COLUMNS``)."""
    return _summary(*_summary_attributes(case))


def summary_of_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """``summary_out`` of a row of ``SUMMARY_COLUMNS`` read by key (the driver's rows: no attribute
    view per row on the hot lists)."""
    return _summary(*_summary_values(row))


def offered_actions(case: Case, matter: dict[str, Any], *, relation: str, roles: tuple[str, ...],
                    pending: list[str]) -> list[str]:  # fmt: skip
    """Exactly the steps the caller would be let take now: the access table's cells for the
    caller, intersected with what the state machine accepts for this case's facts. A mirrored
    case offers none: its department's system reports its steps (ADR 0021)."""
    if case.origin == "department":
        return []
    if relation in {access.APPLICANT, access.AGENT}:
        party, steps = states.APPLICANT, access.APPLICANT_STEPS
    else:
        party, steps = states.OFFICER, access.OFFICER_STEPS
    possible = set(states.allowed_actions(case.state, party, **case_facts(case, matter, pending)))
    return [a for a in steps if a in possible and access.permitted(f"case.{a}", relation, roles)
            and not fees.blocks(case, matter, a)]  # fmt: skip


async def detail_out(session: AsyncSession, case: Case, principal: Principal, *, with_query_code: bool = False,
                     relation: str | None = None) -> dict:  # fmt: skip
    """The case with everything an applicant or officer sees: pauses, timeline, branches, evaluation."""
    matter = await matter_of_case(session, case)
    parallel = bool(matter.get("parallel_departments"))
    return detail_of(
        case,
        matter=matter,
        relation=relation or await relation_to(session, principal, case),
        shipments=await shipments_of(session, case.id),
        roles=principal.roles,
        pauses=list(await case.awaitable_attrs.pauses),
        timeline=list(await case.awaitable_attrs.timeline),
        branches=await branches_of(session, case.id) if parallel else [],
        evaluation=await session.get(Evaluation, case.id) if case.state == "completed" else None,
        with_query_code=with_query_code,
        licence=licence_out(await issued_licence(session, case.id)) if case.decided_on else None,
        fees_row=await fees.fees_of(session, case.id) if case.fees_status else None,
    )


def detail_of(
    case: Case,
    *,
    matter: dict[str, Any],
    relation: str,
    roles: tuple[str, ...],
    pauses: list[CasePause],
    timeline: list[CaseEvent],
    branches: list[CaseBranch],
    evaluation: Evaluation | None,
    with_query_code: bool,
    licence: dict[str, Any] | None = None,
    shipments: list[CaseShipment] | None = None,
    fees_row: Any = None,
) -> dict[str, Any]:
    """The case detail (schemas.CaseDetail) from what is loaded."""
    out = summary_out(case)
    pending = [b.department for b in branches if b.state == "pending"]
    out.update(
        applicant={
            "subject": case.applicant,
            "kind": case.applicant_kind,
            "name": case.applicant_name,
            "agent": case.agent,
            "agent_name": case.agent_name,
        },  # fmt: skip
        form=json.loads(case.form),
        materials=json.loads(case.materials),
        delivery=json.loads(case.delivery),
        correction_items=json.loads(case.correction_items) if case.correction_items else None,
        decision_reason=case.decision_reason,
        accepted_on=case.accepted_on.isoformat() if case.accepted_on else None,
        deemed_accepted=case.deemed_accepted,
        decided_on=case.decided_on.isoformat() if case.decided_on else None,
        completed_on=case.completed_on.isoformat() if case.completed_on else None,
        extension={"days": case.extension_days, "reason": case.extension_reason} if case.extension_days else None,
        pauses=[
            {
                "reason": p.reason,
                "started_on": p.started_on.isoformat(),
                "ended_on": p.ended_on.isoformat() if p.ended_on else None,
                "expected_days": p.expected_days,
                "note": p.note,
            }  # fmt: skip
            for p in pauses
        ],
        deadlines=json.loads(case.deadlines),
        timeline=[
            {
                "at": e.at.isoformat(),
                "action": e.action,
                "actor": e.actor,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "detail": json.loads(e.detail),
            }  # fmt: skip
            for e in timeline
        ],
        allowed_actions=offered_actions(case, matter, relation=relation, roles=roles, pending=pending),
        branches=[branch_out(b) for b in branches],
        evaluation=evaluation_out(evaluation) if evaluation else None,
        licence=licence,
        originals_received_on=case.originals_received_on.isoformat() if case.originals_received_on else None,
        shipments=[shipment_out(s) for s in shipments or []],
        pickups=[pickup_out(s, relation) for s in shipments or [] if s.pickup_id],
        channel=case.channel,
        helper={"subject": case.helped_by, "name": case.helper_name} if case.helped_by else None,
        fees=fees_out(fees_row),
    )
    if with_query_code:
        out["query_code"] = case.query_code
    return out


# The public progress page in one statement (a row per timeline line, oldest first, behind the
# query-code slot), and the two rarer parts read only when the case has them. Built once (issue 15).
_PROGRESS = query_codes.GuardedRead(
    select(
        Case.id, Case.case_no, Case.query_code, Case.matter_name, Case.department, Case.applicant_name,
        Case.state, Case.received_on, Case.due_on, Case.decided_on,
        exists().where(CaseShipment.case_id == Case.id).label("shipped"),
        CaseEvent.id.label("event_id"), CaseEvent.at, CaseEvent.action, CaseEvent.to_state,
    )
    .outerjoin(CaseEvent, CaseEvent.case_id == Case.id)
    .where(Case.case_no == bindparam("case_no")),
    present="id", order_by="event_id",
)  # fmt: skip
_PUBLIC_LICENCE = Query(
    select(CaseLicence.identifier, CaseLicence.licence_type)
    .where(CaseLicence.case_id == bindparam("case_id"))
    .order_by(CaseLicence.id.desc())
    .limit(1)
)
_PUBLIC_SHIPMENTS = Query(
    select(CaseShipment.kind, CaseShipment.waybill, CaseShipment.status, CaseShipment.updated_at)
    .where(CaseShipment.case_id == bindparam("case_id"))
    .order_by(CaseShipment.id)
)


async def progress(db: Driver, ctx: Context, case_no: str, code: str) -> dict[str, Any]:
    """Public progress (J7): case number plus query code; no personal data beyond a masked name.
    Wrong codes are counted per case number (query_codes); past the limit every try is refused."""
    if not valid_case_number(case_no):
        raise not_found()
    code = code.upper()
    wrong_tries, window_start, rows = await _PROGRESS.fetch(db, ctx, case_no, code, {"case_no": case_no})
    right = bool(rows) and hmac.compare_digest(rows[0]["query_code"].encode(), code.encode())
    query_codes.check_limit(ctx, wrong_tries + right, window_start)  # this try counts, right or wrong
    if not right:
        raise not_found()
    case = rows[0]
    licence = None
    if case["decided_on"]:
        licence = await db.fetchrow(_PUBLIC_LICENCE, {"case_id": case["id"]})
    shipments = await db.fetch(_PUBLIC_SHIPMENTS, {"case_id": case["id"]}) if case["shipped"] else []
    return {
        "case_no": case["case_no"],
        "matter": case["matter_name"],
        "department": case["department"],
        "applicant": mask_name(case["applicant_name"]) if case["applicant_name"] else None,
        "state": case["state"],
        "received_on": case["received_on"].isoformat(),
        "due_on": case["due_on"].isoformat() if case["due_on"] else None,
        "licence": public_licence_out(licence),
        "shipments": [public_shipment_out(s) for s in shipments],
        "steps": [
            {"at": e["at"].isoformat(), "action": e["action"], "to_state": e["to_state"]}
            for e in rows
            if e["action"] is not None and e["action"] not in NOT_STEPS
        ],  # fmt: skip
    }


def _mine(principal: Principal):
    """The cases the caller's list shows: its own, and for an agent those its mandate covers."""
    query = select(Case).where(Case.applicant == principal.subject)
    if principal.actor is not None and not {"*", "caseflow"} & set(principal.scopes):
        covered = [s.removeprefix("caseflow:") for s in principal.scopes if s.startswith("caseflow:")]
        query = query.where(Case.matter_code.in_(covered))
    return query


async def my_cases(session: AsyncSession, principal: Principal, *, state: str | None, pages: PageQuery):
    """The caller's cases, newest first (``case.list_mine``)."""
    access.require(principal, "case.list_mine")
    query = _mine(principal)
    if state:
        query = query.where(Case.state == state)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(Case.id.desc()).offset(pages.offset).limit(pages.limit))).scalars()
    return pages.answer(total, [summary_out(c) for c in rows])


# States each role works on (the worklist).
WORKLIST_COUNT_CAP = 1000
WORK_OF_ROLE = {
    "acceptor": ("submitted", "resubmitted", "approved", "delivering"),
    "reviewer": ("accepted", "suspended"),
    "decider": ("accepted", "reviewed", "suspended"),
    "supervisor": tuple(s for s in states.STATES if s not in states.TERMINAL),
    "admin": tuple(s for s in states.STATES if s not in states.TERMINAL),
}


@dataclass(frozen=True)
class _WorklistShape:
    """Which filters a worklist statement has (its parameters carry the values)."""

    states: tuple[str, ...]  # what the caller's roles work on (and the state asked for)
    own_department: bool  # an officer of one department (oversight sees every department)
    with_branches: bool  # a decider: also the pending parallel branches of its department
    matter_code: bool
    overdue: bool
    due_before: bool


@dataclass(frozen=True)
class _WorklistQueries:
    page: Query  # the page, with the (capped) total as a column of every row
    count: Query  # the total alone, for a page past the end


@cache
def _worklist_queries(shape: _WorklistShape) -> _WorklistQueries:
    """The worklist's statements for one shape, built once: a handful of shapes exist, the states
    coming from the roles (an expanding IN does not run on the driver; these are fixed values)."""
    in_states = or_(false(), *(Case.state == state for state in shape.states))
    # The literal open-cases predicate lets both databases use the partial worklist index.
    query = select(*SUMMARY_COLUMNS).where(text(OPEN_CASES), in_states)
    if shape.own_department:
        own = Case.department == bindparam("department")
        if shape.with_branches:
            branch_cases = select(CaseBranch.case_id).where(
                CaseBranch.department == bindparam("department"), CaseBranch.state == "pending"
            )
            own = or_(own, Case.id.in_(branch_cases))
        query = query.where(own)
    if shape.matter_code:
        query = query.where(Case.matter_code == bindparam("matter_code"))
    if shape.overdue:
        query = query.where(Case.due_on < bindparam("overdue_on", type_=Date()))
    if shape.due_before:
        query = query.where(Case.due_on <= bindparam("due_before", type_=Date()))
    # Counting a department's whole backlog on every page costs more than the page; past
    # WORKLIST_COUNT_CAP the total is reported as that cap with "total_capped": true.
    # The count rides on the page as a column (one statement; both databases evaluate the
    # uncorrelated subquery once) and is asked alone only when the page is past the end.
    capped = query.with_only_columns(Case.id).limit(WORKLIST_COUNT_CAP + 1).subquery()
    counted = select(func.count().label("worklist_total")).select_from(capped)
    page = (
        query.add_columns(counted.scalar_subquery().label("worklist_total"))
        .order_by(Case.due_on.asc().nulls_last(), Case.id)
        .offset(bindparam("offset", type_=Integer()))
        .limit(bindparam("limit", type_=Integer()))
    )
    return _WorklistQueries(Query(page), Query(counted))


async def worklist(
    db: Driver,
    principal: Principal,
    *,
    state: str | None,
    matter_code: str | None,
    overdue_on: date | None,
    due_before: date | None,
    pages: PageQuery,
) -> dict[str, Any]:
    """The officer's department's cases their roles act on, nearest deadline first (the columns a
    list shows, on the driver)."""
    relation = access.require(principal, "worklist.read")
    wanted = tuple(sorted({s for role in principal.roles for s in WORK_OF_ROLE.get(role, ())}))
    if state:
        wanted = tuple(s for s in wanted if s == state)
    own_department = not access.sees_every_department(relation)
    queries = _worklist_queries(_WorklistShape(
        states=wanted, own_department=own_department,
        with_branches=own_department and "decider" in principal.roles, matter_code=bool(matter_code),
        overdue=bool(overdue_on), due_before=bool(due_before),
    ))  # fmt: skip
    params = {"department": principal.department, "matter_code": matter_code,
              "overdue_on": overdue_on, "due_before": due_before, "offset": pages.offset, "limit": pages.limit}  # fmt: skip
    rows = await db.fetch(queries.page, params)
    if rows:
        total = rows[0]["worklist_total"]
    else:
        total = await db.fetchval(queries.count, params) if pages.offset else 0
    return pages.answer(
        min(total, WORKLIST_COUNT_CAP), [summary_of_row(row) for row in rows],
        total_capped=total > WORKLIST_COUNT_CAP,
    )  # fmt: skip
