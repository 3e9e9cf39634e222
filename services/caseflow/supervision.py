"""电子监察: the timer that applies Art. 32 and raises yellow/red warnings, and the statistics.

``run_supervision_once`` (with the stuck shipments of cases/shipments.py) is safe with several replicas: each case is handled in its own short
transaction that claims the row with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (another replica
busy with it → skipped this round), and the ledger's UNIQUE (case, step, level) makes a warning
that two runs both decide to raise exist once, with one event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events import caseflow as contract
from kit.errors import Problem
from kit.events import envelope
from kit.pagination import PageQuery
from kit.tasks import BackgroundLoop
from services.caseflow import calendars
from services.caseflow.cases import Context, _insert, apply_action, fees, recompute_provisional
from services.caseflow.cases.shipments import raise_stuck
from services.caseflow.domain import access, states
from services.caseflow.domain.calendar import WorkdayCalendar
from services.caseflow.domain.case_clock import deadline_from_json, yellow_threshold
from services.caseflow.domain.clock import is_deemed_accepted, warning_level
from services.caseflow.models import Case, CaseBranch, CaseEvent, SupervisionWarning, outbox

log = logging.getLogger("yiwang.caseflow.supervision")


async def _claim(session: AsyncSession, case_id: int, wanted_states) -> Case | None:
    query = select(Case).where(Case.id == case_id, Case.state.in_(wanted_states))
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return (await session.execute(query)).scalar_one_or_none()


def warning_horizon(today: date, yellow_at_days: int) -> date:
    """The latest due date that can be yellow today: ``yellow_at_days`` working days span at most
    that many weeks plus the longest official holiday (Spring Festival: 8–9 days off in a row), so
    the timer reads only cases due by then, not every open case of the city."""
    return today + timedelta(days=yellow_at_days * 7 // 5 + 2 + 14)


async def _deem_accept(sessionmaker: async_sessionmaker[AsyncSession], ctx: Context, today: date) -> int:
    """Art. 32: no notice within 5 working days of receipt → accepted as of the day of receipt."""
    receipt = func.coalesce(Case.resubmitted_on, Case.received_on)
    async with sessionmaker() as session:
        calendar = await calendars.load(session)
        candidates = (
            await session.execute(
                select(Case.id, Case.received_on, Case.resubmitted_on).where(
                    Case.state.in_(tuple(states.AWAITING_ACCEPTANCE)),
                    receipt < today - timedelta(days=5),  # 5 working days are at least 5 days
                )
            )
        ).all()
    done = 0
    for case_id, received_on, resubmitted_on in candidates:
        receipt = resubmitted_on or received_on
        if not is_deemed_accepted(calendar, receipt, today):
            continue
        try:
            async with sessionmaker() as session, session.begin():
                case = await _claim(session, case_id, tuple(states.AWAITING_ACCEPTANCE))
                if case is None:
                    continue  # another replica has it, or it moved on
                await apply_action(
                    session, ctx, case, action="deem_accept", roles=("system",), actor="system",
                    expected_version=None,
                    system_detail={"rule": "Art. 32: no acceptance, rejection or correction notice within "
                                           "5 working days of receipt; accepted as of the day of receipt",
                                   "receipt": receipt.isoformat()},
                )  # fmt: skip
                done += 1
        except Problem as exc:  # a concurrent run changed it first
            log.info("deemed acceptance of case %s skipped: %s", case_id, exc.detail)
    return done


async def _raise_warnings(
    sessionmaker: async_sessionmaker[AsyncSession], ctx: Context, calendar: WorkdayCalendar, today: date
) -> int:
    horizon = warning_horizon(today, ctx.settings.yellow_at_days)
    already_red = exists().where(
        SupervisionWarning.case_id == Case.id, SupervisionWarning.step == Case.clock_step,
        SupervisionWarning.level == "red",
    )  # fmt: skip
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(Case.id, Case.clock_step, Case.deadlines).where(
                    Case.clock_step.is_not(None), Case.due_on <= horizon, ~already_red
                )
            )
        ).all()
    raised = 0
    yellow_at = ctx.settings.yellow_at_days
    for case_id, step, deadlines in rows:
        data = json.loads(deadlines).get(step)
        if not data:
            continue
        deadline = deadline_from_json(data)
        level = warning_level(calendar, deadline, today, yellow_at=yellow_threshold(deadline.limit_days, yellow_at))
        if level == "none":
            continue
        async with sessionmaker() as session, session.begin():
            case = await _claim(session, case_id, tuple(states.STATES))
            if case is None or case.clock_step != step:
                continue
            raised += await _record_warnings(
                session, ctx, case=case, department=case.department, step=step, level=level, deadline=deadline,
                detail=f"{step} due {deadline.due} ({deadline.rule})",
            )  # fmt: skip
    raised += await _raise_branch_warnings(sessionmaker, ctx, calendar, today)
    return raised


async def _record_warnings(
    session: AsyncSession, ctx: Context, *, case: Case, department: str, step: str, level: str, deadline, detail: str
) -> int:
    """Write the warning (and, for red, the yellow it passed through) into the ledger once each,
    and emit an event for each row actually inserted. Returns how many were new."""
    raised = 0
    for each in ["yellow", "red"] if level == "red" else ["yellow"]:
        result = await session.execute(
            _insert(session)(SupervisionWarning)
            .values(
                case_id=case.id,
                case_no=case.case_no,
                department=department,
                step=step,
                level=each,
                due_on=deadline.due,
                raised_at=ctx.current_time(),
                detail=detail,
            )  # fmt: skip
            .on_conflict_do_nothing()
        )
        if result.rowcount:
            raised += 1
            event = contract.SupervisionWarning(
                case_no=case.case_no, department=department, step=step, level=each, due=deadline.due,
                raised_at=ctx.current_time(),
            )  # fmt: skip
            await outbox.add(session, envelope(event, subject=case.case_no))
    return raised


async def _raise_branch_warnings(
    sessionmaker: async_sessionmaker[AsyncSession], ctx: Context, calendar: WorkdayCalendar, today: date
) -> int:
    """Parallel branches have deadlines of their own: warned per branch, to the branch's department."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(CaseBranch.id, CaseBranch.deadline)
                .join(Case, Case.id == CaseBranch.case_id)
                .where(
                    CaseBranch.state == "pending",
                    CaseBranch.due_on <= warning_horizon(today, ctx.settings.yellow_at_days),
                    Case.state.not_in(tuple(states.TERMINAL)),  # a withdrawn case's branch is nobody's work
                )
            )
        ).all()
    raised = 0
    for branch_id, data in rows:
        deadline = deadline_from_json(json.loads(data))
        yellow_at = yellow_threshold(deadline.limit_days, ctx.settings.yellow_at_days)
        level = warning_level(calendar, deadline, today, yellow_at=yellow_at)
        if level == "none":
            continue
        async with sessionmaker() as session, session.begin():
            query = select(CaseBranch, Case).join(Case, Case.id == CaseBranch.case_id).where(CaseBranch.id == branch_id)
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(of=CaseBranch, skip_locked=True)
            found = (await session.execute(query)).first()
            if found is None or found[0].state != "pending":
                continue
            branch, case = found
            step = f"branch:{branch.department}"
            raised += await _record_warnings(
                session, ctx, case=case, department=branch.department, step=step, level=level, deadline=deadline,
                detail=f"parallel branch due {deadline.due}",
            )  # fmt: skip
    return raised


async def run_supervision_once(
    sessionmaker: async_sessionmaker[AsyncSession], ctx: Context, now: datetime | None = None
) -> dict[str, int]:
    """One round: deemed acceptances first (they start decision clocks), then warnings, then
    shipments the carrier has not picked up in time (``express_stuck_hours``)."""
    if now is not None:
        ctx = dataclasses.replace(ctx, now=lambda: now)
    today = ctx.today()
    deemed = await _deem_accept(sessionmaker, ctx, today)
    async with sessionmaker() as session:
        calendar = await calendars.load(session)
    raised = await _raise_warnings(sessionmaker, ctx, calendar, today)
    stuck = await raise_stuck(sessionmaker, ctx)
    unrefunded = await fees.raise_unrefunded(sessionmaker, ctx)
    return {"deemed_accepted": deemed, "warnings": raised, "stuck_shipments": stuck, "fees_not_refunded": unrefunded}


class SupervisionTimer(BackgroundLoop):
    """Each round: deadlines made provisional before a calendar year was loaded (through any
    replica) are recomputed once the year is seen, then ``run_supervision_once``."""

    task_name = "supervision-timer"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], ctx: Context) -> None:
        self.sessionmaker = sessionmaker
        self.ctx = ctx
        self.calendar_years: frozenset[int] | None = None  # as of this timer's last recompute

    async def recompute_if_calendar_changed(self) -> int | None:
        """Recompute provisional deadlines when the declared calendar years differ from last round."""
        async with self.sessionmaker() as session, session.begin():
            years = (await calendars.load(session)).declared_years
            if years == self.calendar_years:
                return None
            recomputed = await recompute_provisional(session)
        self.calendar_years = years
        return recomputed

    async def run(self) -> None:
        while True:
            try:
                await self.recompute_if_calendar_changed()
                await run_supervision_once(self.sessionmaker, self.ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away, not migrated yet: try again next round
                log.warning("supervision round failed: %s", type(exc).__name__)
            await asyncio.sleep(self.ctx.settings.supervision_interval_seconds)


# ---- reading ------------------------------------------------------------------------------------
def _scope(principal) -> str | None:
    """The department a supervisor sees (the access table decides who reads); None = all."""
    relation = access.require(principal, "supervision.read")
    return None if access.sees_every_department(relation) else principal.department


async def list_warnings(
    session: AsyncSession, principal, *, department: str | None, level: str | None, pages: PageQuery
) -> dict[str, Any]:
    scope = _scope(principal)
    query = select(SupervisionWarning)
    if scope is not None:
        query = query.where(SupervisionWarning.department == scope)
    elif department:
        query = query.where(SupervisionWarning.department == department)
    if level:
        query = query.where(SupervisionWarning.level == level)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await session.execute(query.order_by(SupervisionWarning.id.desc()).offset(pages.offset).limit(pages.limit))
    ).scalars()
    return pages.answer(
        total,
        [
            {
                "case_no": w.case_no,
                "department": w.department,
                "step": w.step,
                "level": w.level,
                "due_on": w.due_on.isoformat() if w.due_on else None,
                "raised_at": w.raised_at.isoformat(),
                "detail": w.detail,
            }  # fmt: skip
            for w in rows
        ],
    )


def _new_entry(department: str) -> dict[str, Any]:
    return {"department": department, "volume": 0, "in_hand": 0, "online": 0, "decided": 0, "on_time": 0,
            "working_days": 0, "yellow": 0, "red": 0, "anomaly": 0}  # fmt: skip


async def statistics(session: AsyncSession, principal, *, department: str | None) -> list[dict[str, Any]]:
    """Per department: volume, in hand, warnings, on-time rate and average working days of decided
    work (acceptance → decision), online share. A department's work is the cases it leads and the
    parallel branches (并联审批, bundles) it decides for other departments' cases: a branch counts
    once for its department, decided on time when by its own due date, in hand while pending."""
    scope = _scope(principal)
    wanted = scope or department
    query = select(Case)
    if wanted:
        query = query.where(Case.department == wanted)
    cases = list((await session.execute(query)).scalars())
    branch_query = select(CaseBranch, Case.online, Case.state).join(Case, Case.id == CaseBranch.case_id)
    if wanted:
        branch_query = branch_query.where(CaseBranch.department == wanted)
    branch_rows = (await session.execute(branch_query)).all()
    warnings_query = select(SupervisionWarning.department, SupervisionWarning.level, func.count()).group_by(
        SupervisionWarning.department, SupervisionWarning.level
    )
    if wanted:
        warnings_query = warnings_query.where(SupervisionWarning.department == wanted)
    warnings = (await session.execute(warnings_query)).all()
    # When each decided case's decision was due (the last due date its clock had).
    calendar = await calendars.load(session)
    decided_due: dict[int, date | None] = {}
    for case in cases:
        if case.decided_on is not None and case.accepted_on is not None:
            last = (
                await session.execute(
                    select(CaseEvent.detail).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
                )
            ).scalars()
            decided_due[case.id] = None
            for detail in last:
                due = json.loads(detail).get("decision_due")
                if due:
                    decided_due[case.id] = date.fromisoformat(due)
    out: dict[str, dict[str, Any]] = {}
    for case in cases:
        entry = out.setdefault(case.department, _new_entry(case.department))
        entry["volume"] += 1
        entry["online"] += int(case.online)
        entry["in_hand"] += int(case.state not in states.TERMINAL)
        if case.decided_on is not None and case.accepted_on is not None:
            entry["decided"] += 1
            days, _ = calendar.workdays_between(case.accepted_on, case.decided_on)
            entry["working_days"] += days
            due = decided_due.get(case.id)
            entry["on_time"] += int(due is None or case.decided_on <= due)
    for branch, online, case_state in branch_rows:
        entry = out.setdefault(branch.department, _new_entry(branch.department))
        entry["volume"] += 1
        entry["online"] += int(online)
        entry["in_hand"] += int(branch.state == "pending" and case_state not in states.TERMINAL)
        if branch.decided_on is not None:
            entry["decided"] += 1
            days, _ = calendar.workdays_between(branch.started_on, branch.decided_on)
            entry["working_days"] += days
            entry["on_time"] += int(branch.due_on is None or branch.decided_on <= branch.due_on)
    for dept, level, count in warnings:
        if level in {"yellow", "red", "anomaly"}:
            # A department with warnings but nothing in the period's cases still shows (its warnings count).
            out.setdefault(dept, _new_entry(dept))[level] = count
    result = []
    for entry in sorted(out.values(), key=lambda e: e["department"]):
        decided = entry.pop("decided")
        on_time = entry.pop("on_time")
        days = entry.pop("working_days")
        online = entry.pop("online")
        entry.update(
            decided=decided,
            on_time_rate=round(on_time / decided, 4) if decided else None,
            average_working_days=round(days / decided, 2) if decided else None,
            online_share=round(online / entry["volume"], 4) if entry["volume"] else None,
        )
        result.append(entry)
    return result
