"""A case read on the driver (kit.driver) for a hot step: the case row with its timeline in one
statement, held as a ``PlainCase`` the domain functions take as a ``Case``, and what its answer
shows besides, read only when the case has it.

The statement also says whether the case has pauses, shipments and an issued licence, so the
common step (a case with none of them) reads nothing more. ``values`` keeps the row as read: a
step writes the columns that differ from it (``changed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import bindparam, exists, insert, select, update

from kit.driver import Driver, Query, Transaction
from services.caseflow.cases.licences import licence_out
from services.caseflow.domain.case_number import valid_case_number
from services.caseflow.models import Case, CaseEvent, CaseFees, CaseLicence, CasePause, CaseShipment, Evaluation

_CASES = Case.__table__
_LINES = CaseEvent.__table__
_PAUSES = CasePause.__table__
_SHIPMENTS = CaseShipment.__table__
_LICENCES = CaseLicence.__table__
_CASE_COLUMNS = [c.key for c in _CASES.columns]
_LINE_COLUMNS = [c.key for c in _LINES.columns if c.key != "case_id"]
_LINE_LABELS = [(c, f"line_{c}") for c in _LINE_COLUMNS]
_UPDATABLE = [c for c in _CASE_COLUMNS if c not in {"id", "version"}]
_PAUSE_COLUMNS = [c.key for c in _PAUSES.columns if not c.primary_key]


_NO_VALUES = dict.fromkeys(_CASE_COLUMNS)


class PlainCase(SimpleNamespace):
    """A case held as plain attributes — every column of ``cases`` (None unless given) and its
    ``pauses`` — for a hot path that reads and writes its rows itself: the domain functions read
    and set a ``Case``'s attributes, and take this as one. Built without the ORM's instrumentation
    (a transient ``Case`` cost ~45 µs to build, measured; this ~1 µs); its lines are plain too
    (``steps.line``)."""


def plain_case(**values: Any) -> Case:
    """A ``PlainCase`` of these column values (the others None), with no pauses yet."""
    case = PlainCase(**_NO_VALUES)
    case.pauses = []
    case.__dict__.update(values)
    return cast(Case, case)


def _of_case(table: Any) -> Any:
    return table.c.case_id == bindparam("case_id")


# The case and a row per timeline line (oldest first; one row with no line for a case without).
_CASE = Query(
    select(
        *_CASES.columns,
        exists().where(_PAUSES.c.case_id == _CASES.c.id).label("has_pauses"),
        exists().where(_SHIPMENTS.c.case_id == _CASES.c.id).label("has_shipments"),
        exists().where(_LICENCES.c.case_id == _CASES.c.id).label("has_licence"),
        *[_LINES.c[c].label(f"line_{c}") for c in _LINE_COLUMNS],
    )
    .outerjoin(_LINES, _LINES.c.case_id == _CASES.c.id)
    .where(_CASES.c.case_no == bindparam("case_no"))
    .order_by(_LINES.c.id)
)
_CASE_PAUSES = Query(select(_PAUSES).where(_of_case(_PAUSES)).order_by(_PAUSES.c.id))
_INSERT_PAUSE = Query(insert(_PAUSES).values({c: bindparam(f"p_{c}") for c in _PAUSE_COLUMNS}))
_END_PAUSE = Query(update(_PAUSES).where(_PAUSES.c.id == bindparam("pause_id")).values(ended_on=bindparam("p_ended")))
# What reading.detail_out reads besides (the same rows, in the same order).
_SHIPMENTS_OF = Query(select(_SHIPMENTS).where(_of_case(_SHIPMENTS)).order_by(_SHIPMENTS.c.id))
_LICENCE_OF = Query(select(_LICENCES).where(_of_case(_LICENCES)).order_by(_LICENCES.c.id.desc()).limit(1))
_FEES_OF = Query(select(CaseFees.__table__).where(_of_case(CaseFees.__table__)))
_EVALUATION_OF = Query(select(Evaluation.__table__).where(_of_case(Evaluation.__table__)))


@dataclass
class LoadedCase:
    """The case (its pauses loaded when it has any), its timeline, and the row as read."""

    case: Case
    values: dict[str, Any]
    timeline: list[CaseEvent]
    has_shipments: bool
    has_licence: bool
    pauses_ended: dict[int, Any] = field(default_factory=dict)  # each loaded pause's ended_on, by id

    def pauses_changed(self) -> bool:
        """Whether the step started a pause or ended one (``store_pauses`` has something to write)."""
        return any(p.id is None or p.ended_on != self.pauses_ended[p.id] for p in self.case.pauses)

    def changed(self) -> dict[str, Any]:
        """The case's columns the step changed (its version is the step's write's to set)."""
        case, values = self.case, self.values
        return {c: getattr(case, c) for c in _UPDATABLE if getattr(case, c) != values[c]}


async def load_case_on(db: Driver, case_no: str) -> LoadedCase | None:
    """The case with its timeline and pauses (reads outside any transaction), or None."""
    if not valid_case_number(case_no):
        return None
    rows = await db.fetch(_CASE, {"case_no": case_no})
    if not rows:
        return None
    first = rows[0]
    values = {c: first[c] for c in _CASE_COLUMNS}
    case = plain_case(**values)
    timeline = [
        cast(CaseEvent, SimpleNamespace(case_id=case.id, **{c: row[label] for c, label in _LINE_LABELS}))
        for row in rows
        if row["line_id"] is not None
    ]
    loaded = LoadedCase(case, values, timeline, bool(first["has_shipments"]), bool(first["has_licence"]))
    if first["has_pauses"]:
        case.pauses = [CasePause(**row) for row in await db.fetch(_CASE_PAUSES, {"case_id": case.id})]
        loaded.pauses_ended = {pause.id: pause.ended_on for pause in case.pauses}
    return loaded


async def store_pauses(tx: Transaction, loaded: LoadedCase) -> None:
    """The pauses a step started (inserted) or ended (their end stored): ``pauses_changed``."""
    for pause in loaded.case.pauses:
        if pause.id is None:
            await tx.execute(_INSERT_PAUSE, {f"p_{c}": getattr(pause, c) for c in _PAUSE_COLUMNS})
        elif pause.ended_on != loaded.pauses_ended[pause.id]:
            await tx.execute(_END_PAUSE, {"pause_id": pause.id, "p_ended": pause.ended_on})


async def answer_parts(db: Driver, loaded: LoadedCase) -> dict[str, Any]:
    """What ``reading.detail_of`` shows besides the case, its pauses and timeline (as
    ``reading.detail_out`` reads it; a case under parallel departments is not read here)."""
    case, key = loaded.case, {"case_id": loaded.case.id}
    licence = None
    if case.decided_on and loaded.has_licence:
        licence = await db.fetchrow(_LICENCE_OF, key)
    fees = await db.fetchrow(_FEES_OF, key) if case.fees_status else None
    evaluation = await db.fetchrow(_EVALUATION_OF, key) if case.state == "completed" else None
    shipments = await db.fetch(_SHIPMENTS_OF, key) if loaded.has_shipments else []
    return {
        "shipments": [CaseShipment(**row) for row in shipments],
        "licence": licence_out(CaseLicence(**licence)) if licence is not None else None,
        "fees_row": CaseFees(**fees) if fees is not None else None,
        "evaluation": Evaluation(**evaluation) if evaluation is not None else None,
    }
