"""A per-case limit on query-code guesses for the public progress page.

Counted in the database, so every replica shares the count: each try at a case number takes one
slot of its window (``query_code_attempts`` per ``query_code_window_seconds``) BEFORE the code is
compared, in a transaction of its own (the request's is rolled back with its 404), by one atomic
upsert; a right code gives its slot back. Once the slots are taken every try — right or wrong —
is 429 with Retry-After until the window ends, so a burst in parallel gets no more comparisons
than the limit. Unknown case numbers are counted the same way: the answer never tells whether a
case exists. The code itself is never stored or logged here.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import case, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.errors import Problem
from services.caseflow.cases.common import Context, _insert
from services.caseflow.models import QueryCodeAttempt

_TABLE = QueryCodeAttempt.__table__


def too_many(retry_after: int) -> Problem:
    """429 for a case number whose query code was guessed wrong too often."""
    return Problem(429, "too-many-attempts", "Too many wrong query codes",
                   "too many wrong query codes for this case; try again later", retry_after=retry_after,
                   headers={"Retry-After": str(retry_after)})  # fmt: skip


async def _take_slot(session: AsyncSession, case_no: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
    """One more attempt in the case's current window (a new window once the old one ended)."""
    expired = _TABLE.c.window_start <= now - window
    statement = (
        _insert(session)(_TABLE)
        .values(case_no=case_no, window_start=now, attempts=1)
        .on_conflict_do_update(
            index_elements=["case_no"],
            set_={
                "attempts": case((expired, 1), else_=_TABLE.c.attempts + 1),
                "window_start": case((expired, now), else_=_TABLE.c.window_start),
            },
        )
        .returning(_TABLE.c.attempts, _TABLE.c.window_start)
    )
    attempts, start = (await session.execute(statement)).one()
    return attempts, start


async def count_attempt(sessionmaker: async_sessionmaker[AsyncSession], ctx: Context, case_no: str) -> None:
    """Take a slot for one try at ``case_no``'s code; 429 (with Retry-After) when none is left."""
    settings = ctx.settings
    window = timedelta(seconds=settings.query_code_window_seconds)
    now = ctx.current_time()
    async with sessionmaker() as session, session.begin():
        attempts, start = await _take_slot(session, case_no, now, window)
    if attempts > settings.query_code_attempts:
        if start.tzinfo is None:  # SQLite hands back naive UTC
            start = start.replace(tzinfo=now.tzinfo)
        raise too_many(max(1, math.ceil((start + window - now).total_seconds())))


async def forget_attempt(sessionmaker: async_sessionmaker[AsyncSession], case_no: str) -> None:
    """A right code: its slot is given back (only wrong codes count)."""
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(QueryCodeAttempt)
            .where(QueryCodeAttempt.case_no == case_no, QueryCodeAttempt.attempts > 0)
            .values(attempts=QueryCodeAttempt.attempts - 1)
        )
