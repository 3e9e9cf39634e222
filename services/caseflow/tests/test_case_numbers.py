"""Case numbers with two replicas on one database: unique, increasing within each process, and no
submission waits on another replica's (each draws from a block of its own, ADR 0008)."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import select

from kit.db import make_engine
from services.caseflow.case_numbers import CaseNumberBlocks
from services.caseflow.models import CaseNumberSequence

DAY = date(2026, 12, 1)


async def test_two_replicas_drawing_at_once_never_share_a_number(caseflow, database_url):
    other_engine = make_engine(database_url)  # the other replica: its own engine and pool
    try:
        ours = CaseNumberBlocks(caseflow.app.state.engine, block=7)
        theirs = CaseNumberBlocks(other_engine, block=7)
        dead = CaseNumberBlocks(other_engine, block=7)
        assert await dead.next("320802", DAY) == 1  # a replica that drew one, then was killed

        async def draw(blocks: CaseNumberBlocks, count: int) -> list[int]:
            return [await blocks.next("320802", DAY) for _ in range(count)]

        mine, yours = await asyncio.gather(draw(ours, 60), draw(theirs, 60))
    finally:
        await other_engine.dispose()
    assert mine == sorted(mine) and yours == sorted(yours)  # increasing within a process
    assert len(set(mine) | set(yours) | {1}) == 121  # unique across the three
    assert not set(range(2, 8)) & (set(mine) | set(yours))  # the dead one's block is a gap, never reused
    async with caseflow.app.state.sessionmaker() as session:
        last = await session.scalar(select(CaseNumberSequence.last).where(CaseNumberSequence.division == "320802"))
    assert last == 7 * (1 + 9 + 9)  # whole blocks: the dead one's, and nine for each 60 drawn


async def test_blocks_reserved_on_the_driver_and_through_an_engine_never_share_a_number(caseflow, database_url):
    app = caseflow.app
    assert app.state.caseflow.numbers.driver is app.state.driver  # the service's blocks: on its driver
    other_engine = make_engine(database_url)
    try:
        on_driver = CaseNumberBlocks(app.state.engine, block=5, driver=app.state.driver)
        on_engine = CaseNumberBlocks(other_engine, block=5)

        async def draw(blocks: CaseNumberBlocks, count: int) -> list[int]:
            return [await blocks.next("320803", DAY) for _ in range(count)]

        mine, yours = await asyncio.gather(draw(on_driver, 23), draw(on_engine, 23))
    finally:
        await other_engine.dispose()
    assert mine == sorted(mine) and yours == sorted(yours)
    assert len(set(mine) | set(yours)) == 46
    async with app.state.sessionmaker() as session:
        last = await session.scalar(select(CaseNumberSequence.last).where(CaseNumberSequence.division == "320803"))
    assert last == 5 * 10  # five blocks each
