"""A per-case limit on query-code guesses for the public progress page.

Counted in the database, so every replica shares the count: each wrong try at a case number takes
one slot of its window (``query_code_attempts`` per ``query_code_window_seconds``), by one atomic
upsert committed before the answer (a 404 keeps its slot); a right code takes none.
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
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, Select, String, and_, bindparam, case, exists, func, literal_column, not_, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kit.db import UtcDateTime
from kit.driver import Driver, Query, Row
from kit.errors import Problem
from services.caseflow.cases.common import Context
from services.caseflow.models import Case, QueryCodeAttempt

_TABLE = QueryCodeAttempt.__table__


def too_many(retry_after: int) -> Problem:
    """429 for a case number whose query code was guessed wrong too often."""
    return Problem(429, "too-many-attempts", "Too many wrong query codes",
                   "too many wrong query codes for this case; try again later", retry_after=retry_after,
                   headers={"Retry-After": str(retry_after)})  # fmt: skip


def _take_slot(insert) -> Insert:
    """The upsert (both databases have ON CONFLICT ... RETURNING); its parameters are named apart
    from the columns it sets, as the driver needs. It writes nothing — and answers no row — when it
    would change nothing: a right code in a window that has not ended (the update would set the
    same attempts and start); then ``_CURRENT`` is the count (issue 15: a public read that is not
    a write — no row version, no WAL flush at commit)."""
    number = bindparam("number", type_=String())
    now = bindparam("now", type_=UtcDateTime())
    expired_before = bindparam("expired_before", type_=UtcDateTime())
    expired = _TABLE.c.window_start <= expired_before
    right = exists().where(Case.case_no == number, Case.query_code == bindparam("code"))
    wrong = case((right, 0), else_=1)
    unchanged = and_(right, exists().where(_TABLE.c.case_no == number, _TABLE.c.window_start > expired_before))
    return (
        insert(_TABLE)
        .from_select(["case_no", "window_start", "attempts"], select(number, now, wrong).where(not_(unchanged)))
        .on_conflict_do_update(
            index_elements=["case_no"],
            set_={
                "attempts": case((expired, wrong), else_=_TABLE.c.attempts + wrong),
                "window_start": case((expired, now), else_=_TABLE.c.window_start),
            },
        )
        .returning(_TABLE.c.attempts, _TABLE.c.window_start)
    )


_TAKE_SLOT = Query(_take_slot(sqlite_insert))
# The window as it is (what the upsert would have answered when it writes nothing).
_CURRENT = select(_TABLE.c.attempts, _TABLE.c.window_start).where(_TABLE.c.case_no == bindparam("number"))
_CURRENT_SLOT = Query(_CURRENT)


class GuardedRead:
    """A read behind a slot of the case number's window: on PostgreSQL one statement, the upsert
    as a data-modifying CTE (run once; the driver runs a statement outside ``transaction()`` in
    autocommit, so it is committed when the rows come back) beside every row of the read — one
    round trip for the public page, not two; on SQLite (no DML in WITH) the upsert, then the
    read, in one transaction. ``present`` names a column of the read never NULL in its rows;
    ``order_by`` the column its rows come in order of."""

    def __init__(self, read: Select, *, present: str, order_by: str) -> None:
        self._present = present
        self._read = Query(read.order_by(read.selected_columns[order_by]))
        slot = _take_slot(pg_insert).cte("slot")
        # The statement's snapshot: the window before the upsert, which is what it is when the
        # upsert wrote nothing (a data-modifying CTE's changes are not visible to the query).
        current = _CURRENT.subquery("current")
        found = read.subquery("found")
        one = select(literal_column("1").label("one")).subquery("one")
        self._with_slot = Query(
            select(
                func.coalesce(slot.c.attempts, current.c.attempts).label("attempts"),
                func.coalesce(slot.c.window_start, current.c.window_start).label("window_start"),
                found,
            )
            # one row even when the read has none, with or without a row written
            .select_from(one.outerjoin(slot, true()).outerjoin(current, true()).outerjoin(found, true()))
            .order_by(found.c[order_by])
        )

    async def fetch(self, db: Driver, ctx: Context, case_no: str, code: str,
                    params: Mapping[str, Any]) -> tuple[int, datetime, list[Row]]:  # fmt: skip
        """Take the slot if ``code`` is not the case number's query code, and read: the wrong tries
        in the window, its start, and the read's rows."""
        now = ctx.current_time()
        params = {**params, "number": case_no, "code": code, "now": now,
                  "expired_before": now - timedelta(seconds=ctx.settings.query_code_window_seconds)}  # fmt: skip
        if db.is_postgresql:
            rows = await db.fetch(self._with_slot, params)
            return rows[0]["attempts"], rows[0]["window_start"], [r for r in rows if r[self._present] is not None]
        async with db.transaction() as tx:
            slot = await tx.fetchrow(_TAKE_SLOT, params) or await tx.fetchrow(_CURRENT_SLOT, params)
            rows = await tx.fetch(self._read, params)
        assert slot is not None  # written, or unchanged because it was there
        return slot["attempts"], slot["window_start"], rows


def check_limit(ctx: Context, tries: int, window_start: datetime) -> None:
    """429 (with Retry-After) when ``tries`` — the wrong ones in the window and this one — are
    more than the limit."""
    if tries > ctx.settings.query_code_attempts:
        window = timedelta(seconds=ctx.settings.query_code_window_seconds)
        left = (window_start + window - ctx.current_time()).total_seconds()
        raise too_many(max(1, math.ceil(left)))
