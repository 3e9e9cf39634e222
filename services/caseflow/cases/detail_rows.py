"""The case detail read from rows on the driver (kit.driver, issue 15): what ``GET /cases/{case_no}``
answers, the same JSON as ``reading.detail_out`` gives from the ORM's objects, in one statement for
most cases and two for the rest.

The first statement is the case's row joined to its timeline (a row per line, oldest first), with
a flag per rarer part saying whether the case has any; who may see the case is decided from it,
with the same rules as ``access.authorize`` (``relation_under`` and domain/access.py's table), so a
caller who may not see it costs no more. The second, read only when a flag and the detail both
want it, is every rarer part of the case at once — pauses, shipments, parallel branches, issued
licences, the evaluation, the fees — as one UNION ALL whose columns are each part table's own
(NULL in the other parts' rows). Both statements are built once from the tables: no column list is
kept by hand. The rows are then given to ``reading.detail_of``, which builds the detail for the
ORM path too (read by attribute: ``reading.row_view``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Table, bindparam, cast, exists, null, select, union_all

from kit.auth import Principal
from kit.driver import Driver, Query
from services.caseflow.cases.access import relation_under
from services.caseflow.cases.common import matter_of_case_on, not_found
from services.caseflow.cases.licences import licence_out
from services.caseflow.cases.reading import detail_of, row_view
from services.caseflow.domain import access
from services.caseflow.domain.case_number import valid_case_number
from services.caseflow.models import (
    Case,
    CaseBranch,
    CaseEvent,
    CaseFees,
    CaseLicence,
    CasePause,
    CaseShipment,
    Evaluation,
)

_CASES: Table = Case.__table__
_EVENTS: Table = CaseEvent.__table__
_EVENT = "event_"  # the timeline's columns in the case's statement: event_at, event_action, ...
_EVENT_KEYS = tuple(c.key for c in _EVENTS.c if c.key != "case_id")
_CASE_KEYS = tuple(_CASES.c.keys())

# The rarer parts of a case, each a table keyed by case_id, in the order of the UNION's columns.
_PAUSES, _SHIPMENTS, _BRANCHES, _LICENCES, _EVALUATION, _FEES = PARTS = tuple(
    model.__table__ for model in (CasePause, CaseShipment, CaseBranch, CaseLicence, Evaluation, CaseFees)
)


def _has(table: Table) -> str:
    return f"has_{table.name}"


def _in_part(table: Table, key: str) -> str:
    return f"{table.name}__{key}"


_CASE = Query(
    select(
        _CASES,
        *(_EVENTS.c[key].label(_EVENT + key) for key in _EVENT_KEYS),
        *(exists().where(part.c.case_id == _CASES.c.id).label(_has(part)) for part in PARTS),
    )
    .outerjoin(_EVENTS, _EVENTS.c.case_id == _CASES.c.id)
    .where(_CASES.c.case_no == bindparam("case_no"))
    .order_by(_EVENTS.c.id)
)


def _parts_statement() -> Query:
    """One SELECT per part table, each with every part's columns (its own, typed NULLs for the
    others'), in id order within each part."""
    columns = [(table, column) for table in PARTS for column in table.c]
    selects = [
        select(*(
            (column if table is part else cast(null(), column.type)).label(_in_part(table, column.key))
            for table, column in columns
        )).where(part.c.case_id == bindparam("case_id"))
        for part in PARTS
    ]  # fmt: skip
    parts = union_all(*selects)
    # Each row has one part's id (the others' are NULL): ordering by every id column orders each
    # part by its own id, whichever side of the values NULL sorts on.
    ids = [parts.selected_columns[_in_part(t, "id")] for t in PARTS if "id" in t.c]
    return Query(parts.order_by(*ids))


_PARTS = _parts_statement()


def _part(row: Mapping[str, Any], table: Table) -> SimpleNamespace:
    return row_view({column.key: row[_in_part(table, column.key)] for column in table.c})


async def read_detail(
    db: Driver, principal: Principal, case_no: str, *, with_query_code: bool
) -> tuple[dict[str, Any], int]:
    """The case as the caller may see it (schemas.CaseDetail) and its version; 404 for a caller
    who may not read it (``case.read``), as for a case that does not exist."""
    rows = await db.fetch(_CASE, {"case_no": case_no}) if valid_case_number(case_no) else []
    if not rows:
        raise not_found()
    first = rows[0]
    case = row_view({key: first[key] for key in _CASE_KEYS})
    matter = await matter_of_case_on(db, case)
    relation = relation_under(principal, case, matter)
    access.check("case.read", relation, principal.roles)
    # The parts the detail shows, as reading.detail_out reads them: when the case has any.
    wanted = {
        _PAUSES: True,
        _SHIPMENTS: True,
        _BRANCHES: bool(matter.get("parallel_departments")),
        _LICENCES: bool(case.decided_on),
        _EVALUATION: case.state == "completed",
        _FEES: bool(case.fees_status),
    }
    parts: dict[Table, list[SimpleNamespace]] = {table: [] for table in PARTS}
    if any(want and first[_has(table)] for table, want in wanted.items()):
        for row in await db.fetch(_PARTS, {"case_id": case.id}):
            table = next(t for t in PARTS if row[_in_part(t, "case_id")] is not None)
            parts[table].append(_part(row, table))
    shown = {table: items if wanted[table] else [] for table, items in parts.items()}
    timeline = [
        row_view({key: row[_EVENT + key] for key in _EVENT_KEYS}) for row in rows if row[_EVENT + "id"] is not None
    ]
    detail = detail_of(
        case,
        matter=matter,
        relation=relation,
        roles=principal.roles,
        pauses=shown[_PAUSES],
        timeline=timeline,
        branches=shown[_BRANCHES],
        evaluation=next(iter(shown[_EVALUATION]), None),
        with_query_code=with_query_code,
        licence=licence_out(shown[_LICENCES][-1]) if shown[_LICENCES] else None,
        shipments=shown[_SHIPMENTS],
        fees_row=next(iter(shown[_FEES]), None),
    )
    return detail, case.version
