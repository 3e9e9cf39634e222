"""kit.pgpool: the driver's connections — bounded, first come first served, nothing leaked by a
caller that gives up, a broken or interrupted connection never handed out again, idle ones closed.
On the PostgreSQL server of TEST_POSTGRES_URL (the pool is PostgreSQL's only)."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from kit.pgpool import Pool, PoolClosed
from kit.testing import until

TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
pytestmark = pytest.mark.skipif(not TEST_POSTGRES_URL, reason="the pool is PostgreSQL's: set TEST_POSTGRES_URL")


class Opener:
    """Opens connections to the test server, counting them; can be told to fail once."""

    def __init__(self) -> None:
        self.opened: list[asyncpg.Connection] = []
        self.fail_next = False

    async def __call__(self) -> asyncpg.Connection:
        if self.fail_next:
            self.fail_next = False
            raise OSError("connection refused")
        dsn = make_url(TEST_POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn)
        self.opened.append(connection)
        return connection

    def still_open(self) -> int:
        return sum(not c.is_closed() for c in self.opened)


@pytest.fixture
async def opener():
    opener = Opener()
    yield opener
    for connection in opener.opened:
        connection.terminate()


async def test_never_more_than_max_size_and_waiters_served_in_order(opener):
    pool = Pool(opener, max_size=2, idle_seconds=30)
    first, second = await pool.acquire(), await pool.acquire()
    served: list[int] = []

    async def caller(number: int) -> None:
        connection = await pool.acquire()
        served.append(number)
        assert await connection.fetchval("SELECT $1::int", number) == number
        await asyncio.sleep(0)
        pool.release(connection)

    callers = [asyncio.create_task(caller(n)) for n in range(6)]
    await asyncio.sleep(0.05)
    assert served == [] and pool.size == 2  # all six wait: no third connection
    pool.release(first)
    pool.release(second)
    await asyncio.gather(*callers)
    assert served == list(range(6)) and len(opener.opened) == 2
    assert pool.size == 2 and pool.idle == 2
    await pool.close()
    await until(lambda: opener.still_open() == 0, "the pool's connections closed")


async def test_a_caller_that_gives_up_waiting_leaks_no_place(opener):
    pool = Pool(opener, max_size=1, idle_seconds=30)
    held = await pool.acquire()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.acquire(), 0.05)
    late = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    pool.release(held)
    late.cancel()  # handed the connection just as it gives up: the connection goes back, not lost
    with pytest.raises(asyncio.CancelledError):
        await late
    again = await asyncio.wait_for(pool.acquire(), 5)
    assert again is held and pool.size == 1 and len(opener.opened) == 1
    pool.release(again)
    await pool.close()


async def test_broken_interrupted_or_mid_transaction_connections_are_not_handed_out_again(opener):
    pool = Pool(opener, max_size=1, idle_seconds=30)
    first = await pool.acquire()
    first.terminate()  # the server or the network dropped it
    pool.release(first)
    second = await pool.acquire()
    assert second is not first and await second.fetchval("SELECT 1") == 1
    pool.release(second, interrupted=True)  # its caller stopped half-way through a statement
    third = await pool.acquire()
    assert third is not second
    await third.execute("BEGIN")
    pool.release(third)  # a transaction left open
    fourth = await pool.acquire()
    assert fourth is not third and not fourth.is_in_transaction()
    assert pool.size == 1
    pool.release(fourth)
    await pool.close()
    await until(lambda: opener.still_open() == 0, "every discarded connection closed")


async def test_a_connection_that_cannot_be_opened_frees_its_place_for_a_waiter(opener):
    pool = Pool(opener, max_size=1, idle_seconds=30)
    opener.fail_next = True
    with pytest.raises(OSError):
        await pool.acquire()
    assert pool.size == 0
    held = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    held.terminate()
    pool.release(held)  # its place passes to the waiter, which opens a connection of its own
    fresh = await asyncio.wait_for(waiting, 5)
    assert fresh is not held and await fresh.fetchval("SELECT 2") == 2 and pool.size == 1
    pool.release(fresh)
    await pool.close()


async def test_the_most_recently_used_goes_first_and_idle_connections_close(opener):
    pool = Pool(opener, max_size=3, idle_seconds=0.2)
    a, b, c = await pool.acquire(), await pool.acquire(), await pool.acquire()
    for connection in (a, b, c):
        pool.release(connection)
    assert await pool.acquire() is c  # the warmest
    await until(lambda: pool.idle == 0, "idle connections closed after idle_seconds")
    await until(lambda: opener.still_open() == 1, "only the connection in use still open")
    assert pool.size == 1 and not c.is_closed()
    pool.release(c)
    await pool.close()


async def test_closing_fails_the_waiters_and_closes_what_comes_back(opener):
    pool = Pool(opener, max_size=1, idle_seconds=30)
    held = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    await pool.close()
    with pytest.raises(PoolClosed):
        await waiting
    with pytest.raises(PoolClosed):
        await pool.acquire()
    assert not held.is_closed()
    pool.release(held)
    await until(lambda: held.is_closed(), "the connection in use closed when it came back")
