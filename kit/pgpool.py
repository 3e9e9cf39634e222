"""The driver's connection pool (kit.driver, issue 15): asyncpg connections, without asyncpg's pool.

asyncpg's ``Pool`` costs about as much CPU per acquire and release as the statement it serves
(two timeouts, a queue, a holder, a reset coroutine: ~14 µs against 13 µs for a one-row fetch on
this machine, uvloop). The driver needs less of it: its statements leave no session state (see
``kit.driver``), so a connection goes back as it is. This pool:

- opens connections as they are needed, at most ``max_size`` (past it, callers wait in order:
  first come, first served);
- hands out the most recently used idle connection first (its server backend is warm) and closes
  a connection idle for ``idle_seconds`` (so a burst's connections go away: many processes share
  one server's ``max_connections``);
- takes back a connection only when it is usable: open and outside a transaction, and the caller
  said it was not interrupted (a statement cancelled half-way leaves the protocol in between) —
  any other connection is closed and its place freed for the next caller.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class PoolClosed(asyncpg.InterfaceError):
    """The pool was closed (the service is stopping)."""


class Pool:
    def __init__(self, connect: Connect, *, max_size: int, idle_seconds: float) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._connect = connect
        self.max_size = max_size
        self.idle_seconds = idle_seconds
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # oldest release first, newest last
        self._open = 0  # connections open or being opened, idle or in use
        # Callers waiting for a connection: each future gets one, or None: a place to open one.
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._reaper: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def size(self) -> int:
        """Connections open (or being opened) now."""
        return self._open

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self) -> asyncpg.Connection:
        if self._closed:
            raise PoolClosed("the connection pool is closed")
        while self._idle:
            connection, _ = self._idle.pop()
            if not connection.is_closed():
                return connection
            self._open -= 1
        if self._open >= self.max_size:
            connection = await self._wait()
            if connection is not None:
                return connection
        else:
            self._open += 1
        return await self._open_one()

    async def _wait(self) -> asyncpg.Connection | None:
        """A connection another caller released, or None: a place to open one (counted already)."""
        waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # handed over just as the caller gave up: pass it on
                given = waiter.result()
                if given is None:
                    self._free_place()
                else:
                    self.release(given)
            else:
                waiter.cancel()
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            raise

    async def _open_one(self) -> asyncpg.Connection:
        """A new connection in a place already counted; the place is freed if it cannot be opened."""
        try:
            connection = await self._connect()
        except BaseException:
            self._free_place()
            raise
        if self._closed:
            self._free_place()
            await connection.close()
            raise PoolClosed("the connection pool is closed")
        return connection

    def release(self, connection: asyncpg.Connection, *, interrupted: bool = False) -> None:
        """Give ``connection`` back; ``interrupted``: its caller stopped in the middle of using it."""
        if interrupted or self._closed or connection.is_closed() or connection.is_in_transaction():
            self._discard(connection)
            return
        if self._hand_over(connection):
            return
        self._idle.append((connection, time.monotonic()))
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().call_later(self.idle_seconds, self._reap)

    def _discard(self, connection: asyncpg.Connection) -> None:
        self._close_later(connection)
        self._free_place()

    def _free_place(self) -> None:
        """One connection fewer: the first caller waiting may open one in its place."""
        if not self._hand_over(None):  # the place passes to it: still counted
            self._open -= 1

    def _hand_over(self, given: asyncpg.Connection | None) -> bool:
        """``given`` (a connection, or None: a place to open one) to the first caller still
        waiting; False when none is."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(given)
                return True
        return False

    def _close_later(self, connection: asyncpg.Connection) -> None:
        if connection.is_closed():
            return
        if connection.is_in_transaction():
            connection.terminate()  # a graceful close would wait for the transaction's statement
            return
        task = asyncio.get_running_loop().create_task(self._close(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(connection: asyncpg.Connection) -> None:
        try:
            await connection.close(timeout=5)
        except Exception:  # the server went away: nothing left to close politely
            connection.terminate()

    def _reap(self) -> None:
        """Close the connections idle for ``idle_seconds``; come back while any stay idle."""
        self._reaper = None
        horizon = time.monotonic() - self.idle_seconds
        stale = 0
        while stale < len(self._idle) and self._idle[stale][1] <= horizon:
            stale += 1
        old, self._idle = self._idle[:stale], self._idle[stale:]
        for connection, _ in old:
            self._close_later(connection)
            self._open -= 1
        if self._idle and not self._closed:
            wait = self._idle[0][1] + self.idle_seconds - time.monotonic()
            self._reaper = asyncio.get_running_loop().call_later(max(wait, 0.01), self._reap)

    async def close(self) -> None:
        """Close the idle connections, and each connection in use when it comes back; callers
        still waiting get ``PoolClosed``."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("the connection pool is closed"))
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            self._close_later(connection)
            self._open -= 1
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
