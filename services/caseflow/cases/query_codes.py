"""A per-case limit on query-code guesses for the public progress page.

Counted in the database, so every replica shares the count: each wrong try at a case number takes
one slot of its window (``query_code_attempts`` per ``query_code_window_seconds``), by one atomic
upsert committed on its own before the answer (a 404 keeps its slot); a right code takes none.
Whether the code is right is decided inside that statement, so the count and the comparison are
one step: a burst in parallel gets no more wrong comparisons than the limit. Once the slots are
taken every try — right or wrong — is 429 with Retry-After until the window ends (a right code is
refused when it would have been one try too many). Unknown case numbers are counted the same way:
the answer never tells whether a case exists. The code itself is never stored or logged here.

(Until issue 15 every try took a slot in a transaction of its own and a right code gave it back in
another: two commits on every public read. ADR 0034.)
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import String, bindparam, case, exists
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kit.db import UtcDateTime
from kit.driver import Driver, Query
from kit.errors import Problem
from services.caseflow.cases.common import Context
from services.caseflow.models import Case, QueryCodeAttempt

_TABLE = QueryCodeAttempt.__table__


def too_many(retry_after: int) -> Problem:
    """429 for a case number whose query code was guessed wrong too often."""
    return Problem(429, "too-many-attempts", "Too many wrong query codes",
                   "too many wrong query codes for this case; try again later", retry_after=retry_after,
                   headers={"Retry-After": str(retry_after)})  # fmt: skip


def _take_slot(insert) -> Query:
    """The upsert, built once per dialect (both have ON CONFLICT ... RETURNING); its parameters are
    named apart from the columns it sets, as the driver needs."""
    now = bindparam("now", type_=UtcDateTime())
    expired = _TABLE.c.window_start <= bindparam("expired_before", type_=UtcDateTime())
    right = exists().where(Case.case_no == bindparam("number", type_=String()), Case.query_code == bindparam("code"))
    wrong = case((right, 0), else_=1)
    return Query(
        insert(_TABLE)
        .values(case_no=bindparam("number", type_=String()), window_start=now, attempts=wrong)
        .on_conflict_do_update(
            index_elements=["case_no"],
            set_={
                "attempts": case((expired, wrong), else_=_TABLE.c.attempts + wrong),
                "window_start": case((expired, now), else_=_TABLE.c.window_start),
            },
        )
        .returning(_TABLE.c.attempts, _TABLE.c.window_start)
    )


_TAKE_SLOT = {"postgresql": _take_slot(pg_insert), "sqlite": _take_slot(sqlite_insert)}


async def count_wrong_try(db: Driver, ctx: Context, case_no: str, code: str) -> tuple[int, datetime]:
    """Take a slot of the case number's current window (a new window once the old one ended) if
    ``code`` is not its query code, and commit: the wrong tries in the window and its start."""
    now = ctx.current_time()
    params = {"number": case_no, "code": code, "now": now,
              "expired_before": now - timedelta(seconds=ctx.settings.query_code_window_seconds)}  # fmt: skip
    query = _TAKE_SLOT[db.dialect.name]
    if db.is_postgresql:  # outside a transaction the driver runs in autocommit: one statement, committed
        row = await db.fetchrow(query, params)
    else:
        async with db.transaction() as tx:
            row = await tx.fetchrow(query, params)
    assert row is not None  # an upsert with RETURNING always answers a row
    return row["attempts"], row["window_start"]


def check_limit(ctx: Context, tries: int, window_start: datetime) -> None:
    """429 (with Retry-After) when ``tries`` — the wrong ones in the window and this one — are
    more than the limit."""
    if tries > ctx.settings.query_code_attempts:
        window = timedelta(seconds=ctx.settings.query_code_window_seconds)
        left = (window_start + window - ctx.current_time()).total_seconds()
        raise too_many(max(1, math.ceil(left)))
