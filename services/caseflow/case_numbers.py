"""Handing out case-number sequences without making every submission wait for the last one.

The counter row per (division, day) is the one place all submissions of a city meet. Taken inside
the submission's transaction, its row lock was held until that transaction committed, so
submissions ran one after another (measured: 16 connections, 15 of them waiting on that lock).
Instead each process reserves a block of numbers in a short transaction of its own and hands
them out from memory. Numbers stay unique across replicas and restarts and increase within a
process; a block left unused by a restart, or a number whose submission failed, is a gap
(docs/adr/0008-caseflow-hot-path.md). A number drawn by a submission that turned out to be a
retry (its Idempotency-Key was taken) is given back and handed out next, so retries consume none
(docs/adr/0011-caseflow-trust.md).
"""

from __future__ import annotations

import asyncio
import heapq
from datetime import date
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kit.driver import Driver, Query
from services.caseflow.models import CaseNumberSequence

_counter = CaseNumberSequence.__table__


def _reserving(insert) -> Insert:
    """Reserve ``:count`` numbers of ``:day`` for ``:division`` (``:more`` = ``:count``: named apart
    from the value it adds to, as the driver needs); returns the last one reserved."""
    return (
        insert(cast(Table, _counter))
        .values(division=bindparam("division"), day=bindparam("day"), last=bindparam("count"))
        .on_conflict_do_update(index_elements=["division", "day"], set_={"last": _counter.c.last + bindparam("more")})
        .returning(_counter.c.last)
    )


_RESERVE = {"postgresql": _reserving(pg_insert), "sqlite": _reserving(sqlite_insert)}
_RESERVE_ON = {name: Query(statement) for name, statement in _RESERVE.items()}  # the same on the driver


def _reserve_params(division: str, day: date, count: int) -> dict[str, Any]:
    return {"division": division, "day": day, "count": count, "more": count}


async def reserve_one_in(session: AsyncSession, division: str, day: date) -> int:
    """One number drawn inside the caller's transaction (a consumer's, which already writes: on
    SQLite a second connection would wait on its lock). Rare paths only: the counter row stays
    locked until that transaction ends (ADR 0021: mirrored cases)."""
    statement = _RESERVE[session.bind.dialect.name]
    return (await session.execute(statement, _reserve_params(division, day, 1))).scalar_one()


async def reserve(engine: AsyncEngine, division: str, day: date, count: int) -> int:
    """Reserve ``count`` numbers of the day for the division; returns the last one reserved."""
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return (
            await connection.execute(_RESERVE[engine.dialect.name], _reserve_params(division, day, count))
        ).scalar_one()


async def reserve_on(driver: Driver, division: str, day: date, count: int) -> int:
    """``reserve`` on the driver: one statement in autocommit on PostgreSQL (through SQLAlchemy's
    engine it cost more CPU than the block's submissions' own statements together, measured)."""
    async with driver.single() as tx:
        return int(await tx.fetchval(_RESERVE_ON[driver.dialect.name], _reserve_params(division, day, count)))


class CaseNumberBlocks:
    """One per process and database: the next sequence number per (division, day); blocks are
    reserved on ``driver`` when it is given (the service's), else through ``engine``."""

    def __init__(self, engine: AsyncEngine, block: int, driver: Driver | None = None) -> None:
        self.engine = engine
        self.driver = driver
        self.block = block
        self._next: dict[tuple[str, date], tuple[int, int]] = {}  # key -> (next to give, last reserved)
        self._returned: dict[tuple[str, date], list[int]] = {}  # key -> heap of numbers given back
        self._lock = asyncio.Lock()

    def give_back(self, division: str, day: date, sequence: int) -> None:
        """A number drawn but not used (the submission was a retry): the next one handed out."""
        heapq.heappush(self._returned.setdefault((division, day), []), sequence)

    async def next(self, division: str, day: date) -> int:
        key = (division, day)
        following, last = self._next.get(key, (1, 0))
        if following <= last and not self._returned.get(key):
            # The common case: a number of the block in hand, taken without awaiting (so without
            # interleaving with a reservation in progress, which only runs once a block is spent).
            self._next[key] = (following + 1, last)
            return following
        async with self._lock:
            returned = self._returned.get(key)
            if returned:
                return heapq.heappop(returned)
            following, last = self._next.get(key, (1, 0))
            if following > last:
                if self.driver is not None:
                    last = await reserve_on(self.driver, division, day, self.block)
                else:
                    last = await reserve(self.engine, division, day, self.block)
                following = last - self.block + 1
                self._next = {k: v for k, v in self._next.items() if k[1] == day}  # yesterday's are done
                self._returned = {k: v for k, v in self._returned.items() if k[1] == day}
            self._next[key] = (following + 1, last)
            return following
