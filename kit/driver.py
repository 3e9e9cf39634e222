"""Core statements run on the database driver itself, for hot paths (issue 15, ADR 0036).

SQLAlchemy builds the statements (from the models' tables: no hand-kept SQL or column lists) and
compiles each once per dialect; on PostgreSQL they then run on an asyncpg pool of the service's
own, with none of SQLAlchemy's per-execution work (execution context, parameter and result
wrapping, greenlet hops) — on this machine that work cost more CPU than the statement's round trip.
On SQLite (``make run``) the same statements run through the engine as before: one code path for
the service, tested on both databases.

    _CASE = Query(select(cases.c.case_no, cases.c.state).where(cases.c.id == bindparam("id")))
    row = await driver.fetchrow(_CASE, {"id": 7})          # row["case_no"], or None
    async with driver.transaction() as tx:                   # writes: one transaction
        await tx.execute(_INSERT, {...})
    async with driver.single() as tx:                        # a write of one statement
        await tx.execute(_INSERT, {...})                     # (no BEGIN and COMMIT on PostgreSQL)

Rows are read by column name (``row["state"]``) on both databases. Values are what SQLAlchemy
would give: the bind and result processors of the statement's types (a ``TypeDecorator``, JSON)
are applied, and asyncpg decodes JSON as SQLAlchemy's own asyncpg dialect does. A statement the
driver cannot take as compiled (an expanding ``IN``) is refused when it is first compiled — use
``= ANY(:array)``. Statements leave no session state behind (no ``SET`` or session advisory lock:
``SET LOCAL`` and ``pg_advisory_xact_lock`` end with their transaction) — the pool does not reset
a connection it gets back. Python-side column defaults (``default=``, ``onupdate=``) are SQLAlchemy's
execution-time work and are not applied here: give every value (server defaults still apply).
Driver errors are raised wrapped in SQLAlchemy's ``DBAPIError``, so the kit's
handlers answer them as before (a refused value → 422 problem, a lost connection → 503).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from kit.pgpool import Pool

Row = Mapping[Any, Any]  # read by column name
_NO_VALUE = object()


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # Per positional parameter: its name, its value when the statement fixed it, its bind processor.
    binds: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    # Per result column: its key; the columns whose type has a result processor (None when none has).
    keys: tuple[str, ...]
    results: tuple[tuple[str, Callable[[Any], Any]], ...] | None

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, fixed, process in self.binds:
            value = params[name] if fixed is _NO_VALUE else fixed
            values.append(process(value) if process is not None else value)
        return values

    def row(self, record: asyncpg.Record) -> Row:
        if self.results is None:
            return record  # an asyncpg Record is read by column name already
        row = dict(zip(self.keys, record.values(), strict=True))
        for key, process in self.results:  # usually one or two columns of a row (a timestamp)
            row[key] = process(row[key])
        return row


class Query:
    """A Core statement (select, insert, update, delete, with named ``bindparam``\\ s), compiled
    once per dialect on first use."""

    __slots__ = ("statement", "_compiled")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return found


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled = cast(ClauseElement, statement).compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("an expanding IN cannot run on the driver; use = ANY(:array)")
    if getattr(compiled, "escaped_bind_names", None):
        raise ValueError(f"parameter names the driver cannot take: {sorted(compiled.escaped_bind_names)}")
    binds = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        if bind.callable is not None:
            raise ValueError(f"parameter {name!r} has a callable value; pass the value")
        fixed = _NO_VALUE if bind.required else bind.effective_value
        binds.append((name, fixed, bind.type.dialect_impl(dialect).bind_processor(dialect)))
    # A SELECT's columns, or an INSERT/UPDATE/DELETE's RETURNING columns (empty without one).
    columns = list(getattr(statement, "exported_columns", ()))
    keys = tuple(column.key for column in columns)
    processors = [(column.key, column.type.dialect_impl(dialect).result_processor(dialect, None)) for column in columns]
    processed = tuple((key, process) for key, process in processors if process is not None)
    return _Compiled(compiled.string, tuple(binds), keys, processed or None)


def _wrapped(sql: str, error: BaseException) -> DBAPIError:
    """As SQLAlchemy raises it, so the kit's handlers see the same error either way."""
    return DBAPIError(sql, None, error)  # type: ignore[arg-type]


class _Executor(ABC):
    """fetch/fetchrow/fetchval/execute against one place statements run."""

    @abstractmethod
    async def fetch(self, query: Query, params: Mapping[str, Any] | None = None) -> list[Row]: ...

    async def fetchrow(self, query: Query, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.fetch(query, params)
        return rows[0] if rows else None

    async def fetchval(self, query: Query, params: Mapping[str, Any] | None = None) -> Any:
        row = await self.fetchrow(query, params)
        return None if row is None else next(iter(row.values()))

    @abstractmethod
    async def execute(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        """Runs a statement that returns no rows; how many rows it changed."""


_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class _AsyncpgExecutor(_Executor):
    """Statements on one connection (a transaction's)."""

    def __init__(self, connection: asyncpg.Connection, dialect: Dialect) -> None:
        self._connection = connection
        self._dialect = dialect

    async def _run(self, method: str, query: Query, params: Mapping[str, Any] | None) -> tuple[_Compiled, Any]:
        """The compiled statement and what the connection's ``method`` answered for it."""
        compiled = query.compiled(self._dialect)
        try:
            answer = await getattr(self._connection, method)(compiled.sql, *compiled.arguments(params or {}))
        except _DRIVER_ERRORS as error:
            raise _wrapped(compiled.sql, error) from error
        return compiled, answer

    async def fetch(self, query: Query, params: Mapping[str, Any] | None = None) -> list[Row]:
        compiled, records = await self._run("fetch", query, params)
        return records if compiled.results is None else [compiled.row(record) for record in records]

    async def fetchrow(self, query: Query, params: Mapping[str, Any] | None = None) -> Row | None:
        compiled, record = await self._run("fetchrow", query, params)
        return None if record is None else compiled.row(record)

    async def execute(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        _, status = await self._run("execute", query, params)
        count = status.rpartition(" ")[2]
        return int(count) if count.isdigit() else 0


class _PoolExecutor(_AsyncpgExecutor):
    """Statements outside a transaction (autocommit), each on a connection taken from the pool
    for it and given back after it."""

    def __init__(self, pool: Pool, dialect: Dialect) -> None:
        self._pool = pool
        self._dialect = dialect

    async def _run(self, method: str, query: Query, params: Mapping[str, Any] | None) -> tuple[_Compiled, Any]:
        compiled = query.compiled(self._dialect)
        arguments = compiled.arguments(params or {})
        connection = await _acquire(self._pool)
        interrupted = True
        try:
            answer = await getattr(connection, method)(compiled.sql, *arguments)
            interrupted = False
        except asyncpg.PostgresError as error:  # the server refused the statement: the connection is fine
            interrupted = False
            raise _wrapped(compiled.sql, error) from error
        except (asyncpg.InterfaceError, OSError) as error:
            raise _wrapped(compiled.sql, error) from error
        finally:
            self._pool.release(connection, interrupted=interrupted)
        return compiled, answer


async def _acquire(pool: Pool) -> asyncpg.Connection:
    try:
        return await pool.acquire()
    except _DRIVER_ERRORS as error:
        raise _wrapped("connect", error) from error


class _EngineExecutor(_Executor):
    """SQLite: the statement through SQLAlchemy, on the transaction's connection or, outside one,
    on a pooled connection of its own (reads; ``execute`` commits)."""

    def __init__(self, engine: AsyncEngine, connection: AsyncConnection | None = None) -> None:
        self._engine = engine
        self._connection = connection

    async def fetch(self, query: Query, params: Mapping[str, Any] | None = None) -> list[Row]:
        if self._connection is not None:
            return list((await self._connection.execute(query.statement, dict(params or {}))).mappings().all())
        async with self._engine.connect() as connection:
            return list((await connection.execute(query.statement, dict(params or {}))).mappings().all())

    async def execute(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        if self._connection is not None:
            return max((await self._connection.execute(query.statement, dict(params or {}))).rowcount, 0)
        async with self._engine.begin() as connection:
            return max((await connection.execute(query.statement, dict(params or {}))).rowcount, 0)


class _Through(_Executor):
    """Statements run by the executor ``_through()`` names."""

    @abstractmethod
    def _through(self) -> _Executor: ...

    async def fetch(self, query: Query, params: Mapping[str, Any] | None = None) -> list[Row]:
        return await self._through().fetch(query, params)

    async def fetchrow(self, query: Query, params: Mapping[str, Any] | None = None) -> Row | None:
        return await self._through().fetchrow(query, params)

    async def execute(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        return await self._through().execute(query, params)


class Transaction(_Through):
    """The statements of one transaction (``Driver.transaction``); committed when the block ends
    without an exception, rolled back otherwise."""

    def __init__(self, executor: _Executor) -> None:
        self._executor = executor
        self.info: dict[str, Any] = {}  # what the statements' authors note for the commit hooks
        self.after_commit: list[Callable[[], None]] = []

    def _through(self) -> _Executor:
        return self._executor


class _OneStatement(_Executor):
    """``Driver.single``'s executor: one statement, then refuses; ``ran`` once it succeeded."""

    def __init__(self, executor: _Executor) -> None:
        self._executor = executor
        self._taken = False
        self.ran = False

    def _take(self) -> _Executor:
        if self._taken:
            raise RuntimeError("Driver.single() takes one statement: use transaction() for more")
        self._taken = True
        return self._executor

    async def fetch(self, query: Query, params: Mapping[str, Any] | None = None) -> list[Row]:
        rows = await self._take().fetch(query, params)
        self.ran = True
        return rows

    async def fetchrow(self, query: Query, params: Mapping[str, Any] | None = None) -> Row | None:
        row = await self._take().fetchrow(query, params)
        self.ran = True
        return row

    async def execute(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        count = await self._take().execute(query, params)
        self.ran = True
        return count


class Driver(_Through):
    """A service's statements on its database's driver: ``app.state.driver`` (``kit.deps.Db``).
    Its own ``fetch``/``fetchrow`` are reads outside any transaction (autocommit on PostgreSQL: no
    BEGIN and COMMIT around them); statements that write go in ``transaction()`` or ``execute``."""

    def __init__(self, engine: AsyncEngine, *, pool_size: int = 10) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.pool_size = pool_size
        self._pool: Pool | None = None
        self._outer: _Executor = _EngineExecutor(engine)
        self.on_commit: list[Callable[[Transaction], None]] = []

    @property
    def is_postgresql(self) -> bool:
        return self.dialect.name == "postgresql"

    async def start(self) -> None:
        if not self.is_postgresql or self._pool is not None:
            return
        # Connections are opened as requests need them and closed after 10 s idle: beside the
        # engine's pools (which keep theirs) this one holds only what a burst uses, so many
        # processes on one server (tests, replicas) stay within its max_connections. Under load a
        # connection is reused long before; past pool_size requests wait, never overflow.
        self._pool = Pool(self._connect, max_size=self.pool_size, idle_seconds=10)
        self._outer = _PoolExecutor(self._pool, self.dialect)

    async def _connect(self) -> asyncpg.Connection:
        url = self.engine.url.set(drivername="postgresql")
        connection = await asyncpg.connect(dsn=url.render_as_string(hide_password=False))
        try:
            await _json_codecs(connection)
        except BaseException:
            connection.terminate()
            raise
        return connection

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            self._outer = _EngineExecutor(self.engine)
            await pool.close()

    def _through(self) -> _Executor:
        if _open_transaction.get() is self:
            # N requests each holding a connection and waiting for a second one hang the pool.
            raise RuntimeError("a statement on the driver inside its own transaction: use the transaction's")
        return self._outer

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One transaction; ``on_commit`` hooks (the outbox relay's wake-up) run after it commits.
        Inside it, statements go through it: the driver's own ``fetch``/``execute`` refuse (a
        second pooled connection while holding one is how a pool deadlocks under load)."""
        token = _open_transaction.set(self)
        try:
            async with self._transaction() as transaction:
                yield transaction
        finally:
            _open_transaction.reset(token)
        self._committed(transaction)

    @asynccontextmanager
    async def single(self) -> AsyncIterator[Transaction]:
        """A write that is one statement (a data-modifying CTE may write several tables), atomic on
        its own: on PostgreSQL it runs in autocommit — no BEGIN and COMMIT, two round trips fewer
        than ``transaction()`` — and is committed when it returns; on SQLite in a transaction as
        ``transaction()``. A second statement in the block is refused (RuntimeError). The
        ``on_commit`` hooks run after the block once the statement succeeded, even when the block
        then raises: what it wrote stays written on PostgreSQL (on SQLite the block's exception
        rolls it back, and no hook runs)."""
        if self._pool is None:
            async with self.transaction() as transaction:
                transaction._executor = _OneStatement(transaction._executor)
                yield transaction
            return
        one = _OneStatement(_PoolExecutor(self._pool, self.dialect))
        transaction = Transaction(one)
        token = _open_transaction.set(self)
        try:
            yield transaction
        finally:
            _open_transaction.reset(token)
            if one.ran:
                self._committed(transaction)

    def _committed(self, transaction: Transaction) -> None:
        """What runs once ``transaction`` has committed: the ``on_commit`` hooks, then its own."""
        for hook in self.on_commit:
            hook(transaction)
        for then in transaction.after_commit:
            then()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        if self._pool is None:
            async with self.engine.begin() as engine_connection:
                yield Transaction(_EngineExecutor(self.engine, engine_connection))
            return
        pool = self._pool
        connection = await _acquire(pool)
        interrupted = True  # until the transaction has ended one way or the other
        try:
            tx = connection.transaction()
            try:
                await tx.start()
            except _DRIVER_ERRORS as error:
                raise _wrapped("BEGIN", error) from error
            try:
                yield Transaction(_AsyncpgExecutor(connection, self.dialect))
            except BaseException as failure:
                if not connection.is_closed():
                    await tx.rollback()
                    interrupted = not isinstance(failure, Exception)  # cancelled: drop the connection
                raise
            try:
                await tx.commit()
            except _DRIVER_ERRORS as error:
                raise _wrapped("COMMIT", error) from error
            interrupted = False
        finally:
            pool.release(connection, interrupted=interrupted)


_open_transaction: ContextVar[Driver | None] = ContextVar("kit_driver_open_transaction", default=None)


async def _json_codecs(connection: asyncpg.Connection) -> None:
    """JSON as SQLAlchemy's asyncpg dialect sets it up: its JSON types serialise the value
    themselves (bind processor), the connection decodes results."""
    for name in ("json", "jsonb"):
        await connection.set_type_codec(name, encoder=str, decoder=json.loads, schema="pg_catalog", format="text")
