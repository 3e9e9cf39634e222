"""Caseflow's case events → webhooks to the departments the case belongs to (ADR 0020).

- ``case.submitted``: the case's (lead) department is recorded in ``case_departments``; it gets
  ``case.submitted``.
- ``case.accepted``: the case's own department (when the submission was not seen, e.g. a case
  from before exchange) and each of its ``branches`` are recorded; the case's department gets
  ``case.accepted``.
- ``case.branch_assigned``: the branch department is recorded; it gets ``case.branch_assigned``.
- ``case.resubmitted`` (corrections answered) and ``case.withdrawn``: the case's (lead) department
  is recorded from the event itself, then every recorded department of the case gets it.

Events of one case may be applied out of the stream's order (ADR 0030): two exchange replicas
share the durable and apply at once, two caseflow relays publish at once, a failed attempt is
retried after later messages. So no handler relies on an earlier one: each records the departments
its own event names. A withdrawal applied before the submission still reaches the lead department
(then ``case.submitted`` follows with a higher ``sequence``; the payload's ``at`` tells the true
order); a branch department recorded only by an acceptance applied after the withdrawal is not told
of it.

A department's system is never told of a step its own system took (actor ``system:<DEPT>``: the
cases it mirrors, the decisions it pushed). A department only ever receives cases it is recorded
for: its own or a branch's. The lead department is recorded from every event that names it, so
what happens before acceptance (a correction answered — corrections come before acceptance, Art.
32 —, a withdrawal) reaches it; branches are known from acceptance on. ``source_id`` is the
CloudEvent id and the department, so an event consumed again queues nothing twice (the inbox
already stops it; this holds even when an operator replays the stream through a new consumer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.caseflow import (
    CaseAccepted,
    CaseBranchAssigned,
    CaseResubmitted,
    CaseSubmitted,
    CaseWithdrawn,
)
from kit.consumer import Handler
from kit.events import CloudEvent
from services.exchange.deliveries import case_key, enqueue
from services.exchange.models import CaseDepartment

SUBMITTED = CaseSubmitted.event_type
ACCEPTED = CaseAccepted.event_type
BRANCH_ASSIGNED = CaseBranchAssigned.event_type
RESUBMITTED = CaseResubmitted.event_type
WITHDRAWN = CaseWithdrawn.event_type
CASE_EVENT_TYPES = (SUBMITTED, ACCEPTED, BRANCH_ASSIGNED, RESUBMITTED, WITHDRAWN)


async def record(session: AsyncSession, *, case_no: str, department: str, lead_department: str, matter_code: str,
                 applicant: str | None, at: datetime) -> CaseDepartment:  # fmt: skip
    """The department's row for the case (made once; a later event may bring the applicant)."""
    row = await session.get(CaseDepartment, (case_no, department))
    if row is None:
        row = CaseDepartment(case_no=case_no, department=department, lead_department=lead_department,
                             matter_code=matter_code, applicant=applicant, added_at=at)  # fmt: skip
        session.add(row)
        await session.flush()
    elif row.applicant is None and applicant:
        row.applicant = applicant
    return row


def case_data(row: CaseDepartment, *, case_no: str, matter_code: str, state: str, at: datetime) -> dict[str, Any]:
    """``WebhookCaseData`` for the department of ``row`` (its sequence is numbered by enqueue)."""
    return {
        "case_no": case_no, "matter_code": matter_code, "department": row.department,
        "lead_department": row.lead_department, "state": state, "applicant": row.applicant or "", "at": at,
    }  # fmt: skip


def own_echo(actor: str, department: str) -> bool:
    """The step was the department's own system's (a decision it pushed, a case it mirrors): it
    is not told what it did itself (ADR 0020)."""
    return actor == f"system:{department}"


async def _send(session: AsyncSession, event: CloudEvent, row: CaseDepartment, webhook_type: str, *,
                case_no: str, matter_code: str, state: str, at: datetime, actor: str) -> None:  # fmt: skip
    if own_echo(actor, row.department):
        return
    await enqueue(
        session, department=row.department, type=webhook_type, source_id=f"{event.id}:{row.department}",
        ordering_key=case_key(case_no),
        data=case_data(row, case_no=case_no, matter_code=matter_code, state=state, at=at), at=at,
    )  # fmt: skip


async def on_submitted(session: AsyncSession, event: CloudEvent) -> None:
    """Record the case's (lead) department; tell it."""
    data = CaseSubmitted.model_validate(event.data)
    lead = await record(session, case_no=data.case_no, department=data.department, lead_department=data.department,
                        matter_code=data.matter_code, applicant=data.applicant, at=data.at)  # fmt: skip
    await _send(session, event, lead, "case.submitted", case_no=data.case_no, matter_code=data.matter_code,
                state=data.state, at=data.at, actor=data.actor)  # fmt: skip


async def on_accepted(session: AsyncSession, event: CloudEvent) -> None:
    """Record the case's departments; tell its own department."""
    data = CaseAccepted.model_validate(event.data)
    facts = dict(case_no=data.case_no, lead_department=data.department, matter_code=data.matter_code,
                 applicant=data.applicant, at=data.at)  # fmt: skip
    lead = await record(session, department=data.department, **facts)  # type: ignore[arg-type]
    for branch in data.branches:
        if branch != data.department:
            await record(session, department=branch, **facts)  # type: ignore[arg-type]
    await _send(session, event, lead, "case.accepted", case_no=data.case_no, matter_code=data.matter_code,
                state=data.state, at=data.at, actor=data.actor)  # fmt: skip


async def on_branch_assigned(session: AsyncSession, event: CloudEvent) -> None:
    """Record the branch department; tell it."""
    data = CaseBranchAssigned.model_validate(event.data)
    row = await record(session, case_no=data.case_no, department=data.branch_department,
                       lead_department=data.department, matter_code=data.matter_code, applicant=data.applicant,
                       at=data.at)  # fmt: skip
    await _send(session, event, row, "case.branch_assigned", case_no=data.case_no, matter_code=data.matter_code,
                state=data.state, at=data.at, actor=data.actor)  # fmt: skip


def _to_every_department(model: type[CaseResubmitted] | type[CaseWithdrawn], webhook_type: str) -> Handler:
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        data = model.model_validate(event.data)
        await record(session, case_no=data.case_no, department=data.department, lead_department=data.department,
                     matter_code=data.matter_code, applicant=None, at=data.at)  # fmt: skip
        rows = (
            await session.execute(
                select(CaseDepartment).where(CaseDepartment.case_no == data.case_no).order_by(CaseDepartment.department)
            )
        ).scalars().all()  # fmt: skip
        for row in rows:
            await _send(session, event, row, webhook_type, case_no=data.case_no, matter_code=data.matter_code,
                        state=data.state, at=data.at, actor=data.actor)  # fmt: skip

    handle.__name__ = f"on_{webhook_type.replace('.', '_')}"
    return handle


def case_handlers() -> dict[str, Handler]:
    """Event type → handler, for the consumer of ``caseflow.case.>``."""
    return {
        SUBMITTED: on_submitted,
        ACCEPTED: on_accepted,
        BRANCH_ASSIGNED: on_branch_assigned,
        RESUBMITTED: _to_every_department(CaseResubmitted, "case.resubmitted"),
        WITHDRAWN: _to_every_department(CaseWithdrawn, "case.withdrawn"),
    }
