"""POST /imports: an issuing department's existing licences, streamed as NDJSON.

The body is read line by line as it arrives (never held whole); each line is checked on its own
(``domain.import_rows``); valid rows are written in batches of ``import_batch_size``, each batch
one transaction with its ``issued`` events (source ``import``): on PostgreSQL by COPY, licences and
outbox rows, after one lookup of the batch's identifiers (one array parameter, the unique index).
While a batch is written the next one is read and checked — one batch in flight, in file order, so
the database's work and this process's overlap (docs/benchmarks.md, Licence). A row is in or out,
never half: a batch that loses a race on an identifier (another import at the same time) is
written again row by row, each in a savepoint. Re-importing an identifier that exists is the rule ``duplicate``.
The report: how many were imported and, per rejected row, its line, field, rule and message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import String, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.auth import Principal
from kit.errors import Problem
from services.licence import catalogue
from services.licence.catalogue import TypeInfo
from services.licence.context import Context
from services.licence.domain import access
from services.licence.domain.import_rows import ImportRow, RowRejected, check_row
from services.licence.issuance import Draft, issued_event, licence_row, reserve_serials
from services.licence.models import Issuer, Licence, outbox

MAX_REPORTED = 10_000  # rejected rows listed in the report (the count is always complete)


@dataclass
class Report:
    imported: int = 0
    rejected_count: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, line: int, field_: str, rule: str, message: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REPORTED:
            self.rejected.append({"line": line, "field": field_, "rule": rule, "message": message})

    def body(self) -> dict[str, Any]:
        return {"imported": self.imported, "rejected_count": self.rejected_count,
                "rejected": sorted(self.rejected, key=lambda r: r["line"])}  # fmt: skip


async def lines_of(chunks: AsyncIterator[bytes], max_line_bytes: int) -> AsyncIterator[tuple[int, bytes | None]]:
    """(line number, line) from a byte stream; None for a line longer than ``max_line_bytes``."""
    buffer = b""
    number = 0
    overlong = False
    async for chunk in chunks:
        # Split each chunk once (slicing the rest of the buffer off after every line would copy
        # the chunk once per line); only the unfinished last piece is carried over.
        pieces = (buffer + chunk).split(b"\n") if buffer else chunk.split(b"\n")
        buffer = pieces.pop()
        for line in pieces:
            number += 1
            yield number, (None if overlong or len(line) > max_line_bytes else line)
            overlong = False
        if len(buffer) > max_line_bytes:
            overlong, buffer = True, b""
    if buffer.strip() or overlong:
        number += 1
        yield number, (None if overlong else buffer)


class Importer:
    """One import run of one officer's department."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], ctx: Context, *, issuer: Issuer,
                 types: dict[str, TypeInfo], officer: str) -> None:  # fmt: skip
        self.sessionmaker = sessionmaker
        self.ctx = ctx
        self.issuer = issuer
        self.types = types
        self.officer = officer
        self.report = Report()
        self.pending: list[tuple[int, ImportRow]] = []
        self.seen: set[str] = set()  # identifiers earlier in this file
        self.writing: asyncio.Task[None] | None = None
        self.today = ctx.today()

    def add(self, line: int, raw: bytes | None) -> bool:
        """Check one line; True when a batch is ready to be written."""
        if raw is None:
            self.report.reject(
                line, "line", "line_length", f"longer than {self.ctx.settings.import_max_line_bytes} bytes"
            )
            return False
        if not raw.strip():
            return False  # blank lines separate nothing and count as nothing
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            self.report.reject(line, "line", "json", "not a JSON object")
            return False
        try:
            row = check_row(
                value, types=self.types, department=self.issuer.department, issuer_code=self.issuer.issuer_code,
                division_code=self.issuer.division_code, today=self.today,
            )  # fmt: skip
        except RowRejected as exc:
            self.report.reject(line, exc.field, exc.rule, exc.message)
            return False
        if row.identifier is not None:
            if row.identifier in self.seen:
                self.report.reject(line, "identifier", "duplicate", "the same identifier appears earlier in the file")
                return False
            self.seen.add(row.identifier)
        self.pending.append((line, row))
        return len(self.pending) >= self.ctx.settings.import_batch_size

    def _draft(self, row: ImportRow) -> Draft:
        return Draft(
            info=self.types[row.licence_type], issuer=self.issuer, holder=row.holder,
            holder_code_type=row.holder_code_type, holder_name=row.holder_name, data=row.data,
            issued_on=row.issued_on, valid_from=row.valid_from, valid_until=row.valid_until, source="import",
            case_no=None, issued_by=self.officer,
        )  # fmt: skip

    async def flush(self) -> None:
        """Hand the pending rows to the writer. One batch is written while the next is read and
        checked (the database works on its core while this process parses); batches are still
        written one at a time, in file order, each in its own transaction."""
        batch, self.pending = self.pending, []
        await self.drain()
        if batch:
            self.writing = asyncio.create_task(self._flush(batch))

    async def drain(self) -> None:
        """Wait for the batch being written (its failure is raised here)."""
        writing, self.writing = self.writing, None
        if writing is not None:
            await writing

    async def _flush(self, batch: list[tuple[int, ImportRow]]) -> None:
        """Write one batch: existing identifiers are duplicates, the rest go in one transaction."""
        fresh: list[tuple[int, ImportRow]] = []
        try:
            async with self.sessionmaker() as session, session.begin():
                fresh = await self._fresh(session, batch)
                if fresh:
                    await self._write(session, fresh)
            self.report.imported += len(fresh)
        except (IntegrityError, UniqueViolationError):
            await self._write_one_by_one(fresh)

    async def _fresh(self, session: AsyncSession, batch: list[tuple[int, ImportRow]]) -> list[tuple[int, ImportRow]]:
        given = [row.identifier for _, row in batch if row.identifier is not None]
        existing: set[str] = set()
        if given:
            if _postgres(session):
                # One array parameter (one prepared statement whatever the batch's size), and the
                # unique index even while the table's statistics still say "empty" (an import into
                # a new table would otherwise scan it whole for every batch: quadratic).
                await session.execute(text("SET LOCAL enable_seqscan = off"))
                ids = bindparam("ids", given, type_=ARRAY(String))
                query = select(Licence.identifier).where(Licence.identifier == any_(ids))
            else:
                query = select(Licence.identifier).where(Licence.identifier.in_(given))
            existing = set((await session.execute(query)).scalars())
        fresh = []
        for line, row in batch:
            if row.identifier in existing:
                self.report.reject(line, "identifier", "duplicate", "a licence with this identifier exists")
            else:
                fresh.append((line, row))
        return fresh

    async def _rows(self, session: AsyncSession, batch: list[tuple[int, ImportRow]]) -> list[dict[str, Any]]:
        years: dict[int, int] = {}
        for _, row in batch:
            years[row.issued_on.year] = years.get(row.issued_on.year, 0) + 1
        next_serial = {
            year: await reserve_serials(session, issuer=self.issuer.department, year=year, count=count)
            for year, count in years.items()
        }
        now = self.ctx.current_time()
        rows = []
        for _, row in batch:
            serial = next_serial[row.issued_on.year]
            next_serial[row.issued_on.year] += 1
            values = licence_row(self._draft(row), serial=serial, identifier=row.identifier, number=row.number, now=now)
            values["status"] = row.status
            rows.append(values)
        return rows

    async def _write(self, session: AsyncSession, batch: list[tuple[int, ImportRow]]) -> None:
        rows = await self._rows(session, batch)
        now = self.ctx.current_time()
        events = [outbox.row(issued_event(values, now)) for values in rows]
        if _postgres(session) and len(rows) > 1:
            # COPY: the fastest way into PostgreSQL, in this transaction (the serials' UPDATE above
            # began it); a unique violation aborts it whole, like the INSERT it replaces.
            connection = (await (await session.connection()).get_raw_connection()).driver_connection
            assert connection is not None
            await _copy(connection, "licences", rows)
            await _copy(connection, "outbox", events)
        else:
            await session.execute(Licence.__table__.insert(), rows)
            await session.execute(outbox.table.insert(), events)
        outbox.touched(session)

    async def _write_one_by_one(self, batch: list[tuple[int, ImportRow]]) -> None:
        async with self.sessionmaker() as session, session.begin():
            for line, row in batch:
                try:
                    async with session.begin_nested():
                        await self._write(session, [(line, row)])
                    self.report.imported += 1
                except IntegrityError:
                    self.report.reject(line, "identifier", "duplicate", "a licence with this identifier exists")


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _copy(connection: Any, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    await connection.copy_records_to_table(table, columns=columns, records=[tuple(row.values()) for row in rows])


async def run_import(sessionmaker: async_sessionmaker[AsyncSession], ctx: Context, principal: Principal,
                     chunks: AsyncIterator[bytes]) -> dict[str, Any]:  # fmt: skip
    """Check the caller, then stream, check and write; the report."""
    async with sessionmaker() as session:
        types = await catalogue.all_types(session)
        issuer = await session.get(Issuer, principal.department) if principal.department else None
    issued_types = [info.code for info in types.values() if principal.department in info.issuers]
    relation = access.issuing_relation(principal, issuers=[principal.department] if issued_types else [])
    access.check("licence.import", relation, principal.roles)
    if issuer is None:  # pragma: no cover - a department issuing types is an issuer
        raise Problem(403, "forbidden", "Not allowed", "your department is not an issuer", rule="relation")
    importer = Importer(sessionmaker, ctx, issuer=issuer, types=types, officer=principal.subject)
    try:
        async for line, raw in lines_of(chunks, ctx.settings.import_max_line_bytes):
            if importer.add(line, raw):
                await importer.flush()
        await importer.flush()
        await importer.drain()
    finally:
        if importer.writing is not None:  # the client went away: the batch in hand is not left running
            importer.writing.cancel()
            await asyncio.gather(importer.writing, return_exceptions=True)
    return importer.report.body()
