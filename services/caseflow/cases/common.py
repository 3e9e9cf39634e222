"""What every case use case shares: the context, clocks, events, anomalies, the matter a case runs under."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import caseflow as contract
from kit.driver import Driver, Query, Transaction
from kit.errors import Problem
from kit.events import CloudEvent, envelope
from services.caseflow.adapters.licences import LicenceService, SandboxLicences
from services.caseflow.case_numbers import CaseNumberBlocks
from services.caseflow.domain.bundles import bundle_matter
from services.caseflow.domain.calendar import WorkdayCalendar
from services.caseflow.domain.case_clock import STEP_OF_STATE, case_deadlines, deadline_json
from services.caseflow.domain.clock import Pause
from services.caseflow.matters import Matter, get_matter, get_matter_on
from services.caseflow.models import Case, CasePause, SupervisionWarning, outbox
from services.caseflow.settings import Settings


@dataclass
class Context:
    """What the service functions need besides the session: settings, the case-number blocks of this
    process, the licence service adapter, and the current time."""

    settings: Settings
    numbers: CaseNumberBlocks = field(repr=False)
    now: Any = None  # callable returning an aware datetime; tests replace it
    licences: LicenceService = field(default_factory=SandboxLicences, repr=False)

    def current_time(self) -> datetime:
        return self.now() if self.now is not None else datetime.now(UTC)

    def today(self) -> date:
        return self.current_time().astimezone(ZoneInfo(self.settings.timezone)).date()


def dumps(value: Any) -> str:
    """JSON as the case columns store it (sorted keys, Chinese kept readable)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _insert(session: AsyncSession):
    """The dialect's INSERT (both have ON CONFLICT DO NOTHING)."""
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


def not_found() -> Problem:
    return Problem(404, "not-found", "Not found", "no such case")


def _approved_on(case: Case) -> date | None:
    return case.decided_on if case.state in {"approved", "delivering", "completed"} else None


# set_clocks' results by what they are computed from: the calendar and matter objects (by identity:
# both are shared and never changed, and each entry holds them, so their ids are not reused while
# it lives) and the case's facts. The cases of one matter received on one day share their clocks:
# computing them took a twentieth of a submission's CPU.
_Clocks = tuple[str | None, date | None, bool, str]
_CLOCKS: dict[tuple[Any, ...], tuple[WorkdayCalendar, dict, _Clocks]] = {}


def set_clocks(calendar: WorkdayCalendar, case: Case, matter: dict, pauses: list[CasePause]) -> None:
    """Recompute every clock of the case from its facts and pauses; store the running one."""
    approved_on = _approved_on(case)
    facts = (case.state, case.received_on, case.resubmitted_on, case.accepted_on, approved_on, case.extension_days,
             tuple((p.started_on, p.ended_on, p.reason) for p in pauses))  # fmt: skip
    key = (id(calendar), id(matter), facts)
    found = _CLOCKS.get(key)
    if found is None or found[0] is not calendar or found[1] is not matter:
        clocks = case_deadlines(
            calendar,
            matter=matter,
            state=case.state,
            received_on=case.received_on,
            resubmitted_on=case.resubmitted_on,
            accepted_on=case.accepted_on,
            approved_on=approved_on,
            pauses=[Pause(start=p.started_on, end=p.ended_on, reason=p.reason) for p in pauses],
            extension_days=case.extension_days,
        )
        step = STEP_OF_STATE.get(case.state)
        running = clocks.get(step) if step else None
        computed = (
            step if running is not None else None,
            running.due if running else None,
            any(d.provisional for d in clocks.values()),
            dumps({name: deadline_json(d) for name, d in clocks.items()}),
        )
        if len(_CLOCKS) >= 1024:  # a bound, not an eviction policy: calendars and matters change rarely
            _CLOCKS.clear()
        found = _CLOCKS[key] = (calendar, matter, computed)
    case.clock_step, case.due_on, case.due_provisional, case.deadlines = found[2]


async def recompute_clocks(session: AsyncSession, calendar: WorkdayCalendar, case: Case, matter: dict) -> None:
    """``set_clocks`` with the case's pauses (loaded if they are not yet)."""
    set_clocks(calendar, case, matter, list(await case.awaitable_attrs.pauses))


async def add_event(session: AsyncSession, case: Case, data: Any) -> None:
    await outbox.add(session, envelope(data, subject=case.case_no))


def base_fields(case: Case, actor: str, at: datetime) -> dict[str, Any]:
    return dict(
        case_no=case.case_no,
        matter_code=case.matter_code,
        matter_version=case.matter_version,
        department=case.department,
        state=case.state,
        at=at,
        actor=actor,
    )


async def record_anomaly(session: AsyncSession, *, case_id: int, case_no: str, department: str, step: str,
                         detail: str, at: datetime) -> bool:  # fmt: skip
    """Write a process anomaly to the supervision ledger once per case and kind; emit it if new."""
    insert = _insert(session)
    values = _anomaly_row(case_id=case_id, case_no=case_no, department=department, step=step, detail=detail, at=at)
    result = await session.execute(insert(SupervisionWarning).values(values).on_conflict_do_nothing())
    if result.rowcount:
        await outbox.add(session, _anomaly_event(values))
        return True
    return False


_WARNINGS = SupervisionWarning.__table__
_WARNING_COLUMNS = [c.key for c in _WARNINGS.columns if not c.primary_key]
# record_anomaly's insert for the driver, per dialect (parameters named apart from the columns).
_ANOMALY_ON = {
    name: Query(insert(_WARNINGS).values({c: bindparam(f"w_{c}") for c in _WARNING_COLUMNS}).on_conflict_do_nothing())
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


async def record_anomaly_on(db: Driver, tx: Transaction, *, case_id: int, case_no: str, department: str, step: str,
                            detail: str, at: datetime) -> bool:  # fmt: skip
    """``record_anomaly`` in a hot path's transaction on the driver."""
    values = _anomaly_row(case_id=case_id, case_no=case_no, department=department, step=step, detail=detail, at=at)
    if await tx.execute(_ANOMALY_ON[db.dialect.name], {f"w_{c}": values[c] for c in _WARNING_COLUMNS}):
        await outbox.add_to(tx, _anomaly_event(values))
        return True
    return False


def _anomaly_row(*, case_id: int, case_no: str, department: str, step: str, detail: str,
                 at: datetime) -> dict[str, Any]:  # fmt: skip
    return {"case_id": case_id, "case_no": case_no, "department": department, "step": step, "level": "anomaly",
            "due_on": None, "raised_at": at, "detail": detail}  # fmt: skip


def _anomaly_event(row: dict[str, Any]) -> CloudEvent:
    event = contract.SupervisionWarning(case_no=row["case_no"], department=row["department"], step=row["step"],
                                        level="anomaly", due=None, raised_at=row["raised_at"])  # fmt: skip
    return envelope(event, subject=row["case_no"])


async def matter_of_case(session: AsyncSession, case: Case) -> dict[str, Any]:
    """The matter a case runs under: its pinned version, widened to its bundle for a bundle case."""
    return await _matter_under(case, lambda code, version: get_matter(session, code, version, include_retired=True))


async def matter_of_case_on(db: Driver, case: Case, tx: Transaction | None = None) -> dict[str, Any]:
    """``matter_of_case`` for a hot path on the driver (the same cache; read in ``tx`` when given)."""
    return await _matter_under(
        case, lambda code, version: get_matter_on(db, code, version, include_retired=True, tx=tx)
    )


async def _matter_under(case: Case, get: Callable[[str, int], Awaitable[Matter | None]]) -> dict[str, Any]:
    if case.bundle:
        pinned = json.loads(case.bundle)
        members = [await get(m["code"], m["version"]) for m in pinned["matters"]]
        if all(members):
            return bundle_matter(pinned, [m.definition for m in members if m is not None])
    definition = await get(case.matter_code, case.matter_version)
    return definition.definition if definition else {}
