"""What every step of a case writes besides the case row: its line on the timeline, the message
to the applicant and the events it publishes — and, for a submission, the case row itself.

Statements, not rows, are what a step costs here: each one through SQLAlchemy and asyncpg is
about 0.4 ms of CPU whatever it carries (measured: the line, message and event as one statement
took 2.1 ms with BEGIN and COMMIT, as three statements 4.2 ms). So on PostgreSQL a step is ONE
statement: its inserts are data-modifying CTEs, generated from the tables at import (typed with
casts, since a parameter in a SELECT list has no column to take its type from). A submission's
CTEs hang off the case INSERT … ON CONFLICT DO NOTHING RETURNING id: if the Idempotency-Key was
taken, nothing at all is written. An officer's step hangs them off the case UPDATE … WHERE
version = <the version read> RETURNING id: if another action moved the case first, nothing is
written and the step fails as the ORM's own flush would. SQLite runs the same writes one by one.
(Built with SQLAlchemy's insert().cte() instead, the statement was compiled afresh on every
call and was no faster than three statements; hence the generated text.) The statement runs on
the session's own driver connection, inside its transaction (ADR 0033).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
from sqlalchemy import Dialect, Table, TextClause, bindparam, func, insert, inspect, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import attributes
from sqlalchemy.orm.exc import StaleDataError

from kit.driver import Driver, Query, Transaction
from kit.events import CloudEvent
from services.caseflow.models import Blob, Case, CaseEvent, CaseFees, Notification, outbox

CASES = Case.__table__
LINES = CaseEvent.__table__
MESSAGES = Notification.__table__
FEES = cast(Table, CaseFees.__table__)
BLOBS = cast(Table, Blob.__table__)
INSERT_LINE = insert(LINES)
INSERT_MESSAGE = insert(MESSAGES)
SQLITE_INSERT_CASE = (
    sqlite_insert(CASES).on_conflict_do_nothing(index_elements=["applicant", "idempotency_key"]).returning(CASES.c.id)
)
_CASE_COLUMNS = [c.key for c in CASES.columns if c.key != "id"]
_UPDATABLE = frozenset(_CASE_COLUMNS) - {"version"}
_MAPPED = frozenset(inspect(Case).attrs.keys())  # columns and relationships
_LINE_COLUMNS = [c.key for c in LINES.columns if c.key not in {"id", "case_id"}]
_MESSAGE_COLUMNS = [c.key for c in MESSAGES.columns if c.key not in {"id", "case_id"}]
_FEE_COLUMNS = [c.key for c in FEES.columns if c.key != "case_id"]
# Every column but the id; one that Outbox.row leaves out is inserted as NULL (its default).
_OUTBOX_COLUMNS = [c.key for c in outbox.table.columns if not c.primary_key]
_PG = postgresql.dialect()


@dataclass
class Step:
    """One step's writes: its timeline line, the applicant's message (if any), its events."""

    line: CaseEvent
    message: dict[str, Any] | None = None
    events: list[CloudEvent] = field(default_factory=list)


def line(case: Case, at: Any, action: str, actor: str, from_state: str | None, to_state: str, detail: str) -> CaseEvent:
    """A timeline line of the case (not added to the session: ``write`` inserts it); of a case
    held as plain attributes (a hot path's, ``case_rows.PlainCase``), a plain line too."""
    if isinstance(case, Case):
        return CaseEvent(case_id=case.id, at=at, action=action, actor=actor, from_state=from_state, to_state=to_state,
                         detail=detail)  # fmt: skip
    return cast(CaseEvent, SimpleNamespace(id=None, case_id=case.id, at=at, action=action, actor=actor,
                                           from_state=from_state, to_state=to_state, detail=detail))  # fmt: skip


# ---- PostgreSQL: one statement ---------------------------------------------------------------
def _typed(table: Table, columns: list[str], prefix: str) -> str:
    return ", ".join(f"CAST(:{prefix}{c} AS {table.c[c].type.compile(dialect=_PG)})" for c in columns)


def _insert_sql(table: Table, columns: list[str], prefix: str, case_id: str) -> str:
    """INSERT of one row whose case_id is ``case_id`` (a parameter, or the id of the new case)."""
    return (f"INSERT INTO {table.name} (case_id, {', '.join(columns)}) "
            f"SELECT {case_id}, {_typed(table, columns, prefix)}")  # fmt: skip


def _owned_guard() -> str:
    """The condition that every upload a submission references is its applicant's own."""
    ids, owner = BLOBS.c.id, BLOBS.c.owner
    return (f"(SELECT count(*) FROM {BLOBS.name} WHERE {ids.name} = ANY(CAST(:g_blobs AS "
            f"{ids.type.compile(dialect=_PG)}[])) AND {owner.name} = {_typed(BLOBS, [owner.name], 'g_')}) "
            "= CAST(:g_count AS INTEGER)")  # fmt: skip


@cache
def _step_sql(with_message: bool, events: int, case_row: str | tuple[str, ...] | None, *, owned: bool = False,
              fees: bool = False) -> TextClause:  # fmt: skip
    """The step's inserts as CTEs; ``case_row`` is "new" (insert the case), the columns to update
    (update the case, version-checked), or None (the case row is not touched). A new case may be
    inserted only if its uploads are its applicant's (``owned``), and with its fees row (``fees``)."""
    if case_row == "new":
        values = _typed(CASES, _CASE_COLUMNS, "c_")
        rows = f"SELECT {values} WHERE {_owned_guard()}" if owned else f"VALUES ({values})"
        ctes = [f"source AS (INSERT INTO cases ({', '.join(_CASE_COLUMNS)}) {rows} "
                "ON CONFLICT (applicant, idempotency_key) DO NOTHING RETURNING id)"]  # fmt: skip
        case_id, source = "id", " FROM source"
    elif case_row:
        assignments = ", ".join(f"{c} = {_typed(CASES, [c], 'u_')}" for c in (*case_row, "version"))
        ctes = [f"source AS (UPDATE cases SET {assignments} WHERE id = CAST(:case_id AS INTEGER) "
                "AND version = CAST(:expected_version AS INTEGER) RETURNING id)"]  # fmt: skip
        case_id, source = "id", " FROM source"
    else:
        ctes, case_id, source = [], "CAST(:case_id AS INTEGER)", ""
    ctes.append(f"line AS ({_insert_sql(LINES, _LINE_COLUMNS, 'l_', case_id)}{source})")
    if with_message:
        ctes.append(f"message AS ({_insert_sql(MESSAGES, _MESSAGE_COLUMNS, 'm_', case_id)}{source})")
    if fees:
        ctes.append(f"fees AS ({_insert_sql(FEES, _FEE_COLUMNS, 'f_', case_id)}{source})")
    if events:
        # One INSERT of every event, in the step's order (the outbox id is the relay's order): as a
        # CTE each, PostgreSQL ran the later CTEs first, so a step's second event got the lower id.
        rows = " UNION ALL ".join(f"SELECT {_typed(outbox.table, _OUTBOX_COLUMNS, f'o{index}_')}{source}"
                                  for index in range(events))  # fmt: skip
        ctes.append(f"events AS (INSERT INTO outbox ({', '.join(_OUTBOX_COLUMNS)}) {rows})")
    return text(f"WITH {', '.join(ctes)} SELECT {'id FROM source' if case_row else '1'}")


def _named(prefix: str, columns: list[str]) -> tuple[tuple[str, str], ...]:
    """(column, its parameter's name) for each column: the names made once, not per call."""
    return tuple((c, f"{prefix}{c}") for c in columns)


_LINE_PARAMS = _named("l_", _LINE_COLUMNS)
_MESSAGE_PARAMS = _named("m_", _MESSAGE_COLUMNS)
_NEW_CASE_PARAMS = _named("c_", _CASE_COLUMNS)
_CHANGED_PARAMS = dict(_named("u_", sorted(_UPDATABLE)))
_FEE_PARAMS = _named("f_", _FEE_COLUMNS)
_EVENT_PARAMS: list[tuple[tuple[str, str], ...]] = []  # per event index, grown as steps need


def _params(step: Step) -> dict[str, Any]:
    params = {name: getattr(step.line, c) for c, name in _LINE_PARAMS}
    if step.message is not None:
        message = step.message
        for c, name in _MESSAGE_PARAMS:
            params[name] = message.get(c)
    while len(_EVENT_PARAMS) < len(step.events):
        _EVENT_PARAMS.append(_named(f"o{len(_EVENT_PARAMS)}_", _OUTBOX_COLUMNS))
    for names, event in zip(_EVENT_PARAMS, step.events, strict=False):
        row = outbox.row(event)
        for c, name in names:
            params[name] = row.get(c)
    return params


def _new_case_params(values: dict[str, Any], step: Step) -> dict[str, Any]:
    """A new case's parameters: its columns' values, the step's."""
    params = _params(step)
    for column, name in _NEW_CASE_PARAMS:
        params[name] = values[column]
    return params


def _changed_params(case_id: int, version: int, changed: dict[str, Any], step: Step) -> dict[str, Any]:
    """A version-checked step's parameters: the case's changed columns, its version + 1, the step's."""
    params = _params(step)
    params.update(case_id=case_id, expected_version=version, u_version=version + 1)
    for column, value in changed.items():
        params[_CHANGED_PARAMS[column]] = value
    return params


@cache
def _positional(statement: TextClause, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """The statement as the driver takes it ($1…$n) and its parameters' names in that order."""
    compiled = statement.compile(dialect=dialect)
    return compiled.string, tuple(compiled.positiontup or ())


async def _run(session: AsyncSession, statement: TextClause, params: dict[str, Any]) -> Any:
    """The statement's first value (None: no row), in the session's transaction, executed by the
    driver itself: SQLAlchemy's execution of a 40-parameter text statement (parameter processing,
    execution context, result wrapping) cost more CPU than the statement's round trip. Its
    parameters are untyped either way, so the driver receives the same values. A transaction the
    session has not begun yet (no statement so far) is begun by running this one through it."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None or not driver.is_in_transaction():
        return (await session.execute(statement, params)).scalar_one_or_none()
    sql, names = _positional(statement, connection.dialect)
    try:
        return await driver.fetchval(sql, *[params[name] for name in names])
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        # As SQLAlchemy would raise it: the kit answers a refused value (SQLSTATE 22) with a problem.
        raise DBAPIError(sql, None, error) from error


# ---- both databases --------------------------------------------------------------------------
def _is_postgresql(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


async def _each(session: AsyncSession, case_id: int, step: Step) -> None:
    await session.execute(INSERT_LINE, {"case_id": case_id, **{c: getattr(step.line, c) for c in _LINE_COLUMNS}})
    if step.message is not None:
        await session.execute(INSERT_MESSAGE, {**step.message, "case_id": case_id})
    for event in step.events:
        await outbox.add(session, event)


async def write(session: AsyncSession, case: Case, step: Step) -> None:
    """Insert the step's line, message and events in the caller's transaction (the case row is
    not touched), and show the line on the case's timeline if it is loaded."""
    if _is_postgresql(session):
        statement = _step_sql(step.message is not None, len(step.events), None)
        await _run(session, statement, {"case_id": case.id, **_params(step)})
        if step.events:
            outbox.touched(session)
    else:
        await _each(session, case.id, step)
    _show(case, step)


def _show(case: Case, step: Step) -> None:
    """The line on the case's loaded timeline, so a response needs no read-back."""
    if "timeline" not in inspect(case).unloaded:
        attributes.set_committed_value(case, "timeline", [*case.timeline, step.line])


async def move(session: AsyncSession, case: Case, step: Step) -> None:
    """Store what changed on the case (version-checked) and write the step.

    On PostgreSQL, when the case row is all that is pending, this is one statement; anything else
    pending (new pauses, branches) goes through the ORM's flush first. A concurrent action that
    moved the case first raises ``StaleDataError``, with nothing written."""
    state = inspect(case)
    # The attributes set since load: what InstanceState.unmodified leaves out (reading each
    # attribute's history instead cost 1.4 ms a call, measured).
    changed = {key: getattr(case, key) for key in _UPDATABLE.difference(state.unmodified)}
    others_pending = bool(session.new) or any(obj is not case for obj in session.dirty)
    if not (_is_postgresql(session) and changed) or others_pending:
        await session.flush()  # the ORM's UPDATE … WHERE version = :loaded (StaleDataError if beaten)
        await write(session, case, step)
        return
    columns = tuple(sorted(changed))
    params = _changed_params(case.id, case.version, changed, step)
    with session.no_autoflush:  # the case's changes are in this statement, not in a flush
        if await _run(session, _step_sql(step.message is not None, len(step.events), columns), params) is None:
            raise StaleDataError(f"case {case.case_no} changed first (version {case.version} is gone)")
    _mark_stored(session, case, version=case.version + 1)
    if step.events:
        outbox.touched(session)
    _show(case, step)


def _mark_stored(session: AsyncSession, case: Case, *, version: int) -> None:
    """The session holds the case as the statement stored it, so commit has nothing to flush for
    it (left "modified", the ORM walked all 40 columns' history at commit: 0.66 ms, measured).
    SQLAlchemy has no public "mark clean": expiring the whole object is the public way to forget
    its pending changes, and its loaded values (now the stored ones) are put back as committed."""
    loaded = {key: value for key, value in inspect(case).dict.items() if key in _MAPPED}
    loaded["version"] = version
    session.expire(case)
    for key, value in loaded.items():
        attributes.set_committed_value(case, key, value)


async def insert_case(session: AsyncSession, case: Case, step: Step) -> int | None:
    """Insert the new case with its first step; its id, or None (and nothing written) when its
    (applicant, Idempotency-Key) is already taken."""
    values = {c: getattr(case, c) for c in _CASE_COLUMNS}
    if _is_postgresql(session):
        statement = _step_sql(step.message is not None, len(step.events), "new")
        case_id = await _run(session, statement, _new_case_params(values, step))
        if case_id is not None and step.events:
            outbox.touched(session)
    else:
        case_id = (await session.execute(SQLITE_INSERT_CASE, values)).scalar_one_or_none()
        if case_id is not None:
            await _each(session, case_id, step)
    if case_id is not None:
        _numbered(case, step, case_id)
    return case_id


def _numbered(case: Case, step: Step, case_id: int) -> None:
    """The new case's id on the case and on what its step wrote (both ways of inserting)."""
    case.id = step.line.case_id = case_id
    if step.message is not None:
        step.message["case_id"] = case_id


# ---- on the driver (kit.driver): a hot path's writes ----------------------------------------
# The same writes, for a case held as a plain (transient) ``Case`` the caller loaded from rows:
# on PostgreSQL the one combined statement — ``writing`` runs it in autocommit, with no BEGIN and
# COMMIT round trips — on SQLite the statements one by one in a transaction.
_SQLITE_INSERT_CASE = Query(SQLITE_INSERT_CASE)
_SQLITE_LINE = Query(INSERT_LINE)
_SQLITE_MESSAGE = Query(INSERT_MESSAGE)
_SQLITE_FEES = Query(insert(FEES))
# SQLite only (the statement runs through the engine there; the driver refuses an expanding IN).
_SQLITE_OWNED = Query(
    select(func.count())
    .select_from(BLOBS)
    .where(BLOBS.c.id.in_(bindparam("ids", expanding=True)), BLOBS.c.owner == bindparam("owner"))
)


def writing(db: Driver, *, one_statement: bool = True) -> AbstractAsyncContextManager[Transaction]:
    """Where a hot path's writes go: a step whose writes are this module's one statement
    (``one_statement``) runs it in autocommit on PostgreSQL (``Driver.single``: atomic on its own,
    two round trips fewer); anything more, and SQLite's statements one by one, in a transaction."""
    return db.single() if one_statement and db.is_postgresql else db.transaction()


@cache
def _step_query(with_message: bool, events: int, case_row: str | tuple[str, ...] | None, *, owned: bool = False,
                fees: bool = False) -> Query:  # fmt: skip
    return Query(_step_sql(with_message, events, case_row, owned=owned, fees=fees))


async def _each_on(tx: Transaction, case_id: int, step: Step) -> None:
    await tx.execute(_SQLITE_LINE, {"case_id": case_id, **{c: getattr(step.line, c) for c in _LINE_COLUMNS}})
    if step.message is not None:
        await tx.execute(_SQLITE_MESSAGE, {**step.message, "case_id": case_id})
    for event in step.events:
        await outbox.add_to(tx, event)


async def insert_case_on(db: Driver, tx: Transaction, case: Case, step: Step, *, fees: CaseFees | None = None,
                         owned: tuple[str, list[str]] | None = None) -> int | None:  # fmt: skip
    """``insert_case`` on the driver (in ``writing(db)``), with the case's ``fees`` row when it owes
    fees: the new case's id, or None with nothing written when its (applicant, Idempotency-Key) is
    already taken — or when ``owned`` (owner, upload ids) names an upload that is not the owner's."""
    values = {c: getattr(case, c) for c in _CASE_COLUMNS}
    ids = sorted(set(owned[1])) if owned is not None else []
    if db.is_postgresql:
        query = _step_query(step.message is not None, len(step.events), "new", owned=owned is not None,
                            fees=fees is not None)  # fmt: skip
        params = _new_case_params(values, step)
        if owned is not None:
            params.update(g_blobs=ids, g_owner=owned[0], g_count=len(ids))
        if fees is not None:
            for column, name in _FEE_PARAMS:
                params[name] = getattr(fees, column)
        case_id = await tx.fetchval(query, params)
        if case_id is not None and step.events:
            tx.info["outbox_dirty"] = True  # the relay wakes at commit (kit.outbox)
    else:
        if owned is not None and await tx.fetchval(_SQLITE_OWNED, {"ids": ids, "owner": owned[0]}) != len(ids):
            return None
        case_id = await tx.fetchval(_SQLITE_INSERT_CASE, values)
        if case_id is not None:
            await _each_on(tx, case_id, step)
            if fees is not None:
                await tx.execute(_SQLITE_FEES, {**{c: getattr(fees, c) for c in _FEE_COLUMNS}, "case_id": case_id})
    if case_id is not None:
        _numbered(case, step, case_id)
        if fees is not None:
            fees.case_id = case_id
    return case_id


async def move_on(db: Driver, tx: Transaction, case: Case, changed: dict[str, Any], step: Step) -> bool:
    """``move`` in a driver transaction: store the ``changed`` columns of the case with its version
    + 1, where the version is still the one loaded, and write the step. False, with nothing written,
    when another action moved the case first."""
    if not changed:
        raise ValueError("a step changes the case (at least its updated_at)")
    version = case.version
    if db.is_postgresql:
        params = _changed_params(case.id, version, changed, step)
        query = _step_query(step.message is not None, len(step.events), tuple(sorted(changed)))
        if await tx.fetchval(query, params) is None:
            return False
        if step.events:
            tx.info["outbox_dirty"] = True
    else:
        statement = (
            update(CASES)
            .where(CASES.c.id == bindparam("case_id"), CASES.c.version == bindparam("expected_version"))
            .values({**changed, "version": version + 1})
        )
        if not await tx.execute(Query(statement), {"case_id": case.id, "expected_version": version}):
            return False
        await _each_on(tx, case.id, step)
    case.version = version + 1
    return True
