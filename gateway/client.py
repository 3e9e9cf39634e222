"""The gateway's HTTP/1.1 client to the services: keep-alive connections parsed by httptools.

aiohttp's client spent about half of the gateway's CPU per proxied request (measured with py-spy,
docs/benchmarks.md, ADR 0035): cookie jar, header multidicts, tracing hooks, a writer object per
request. The gateway needs little of that — one request line and its headers written in one
``transport.write``, the response's status, headers and body as they arrive — so this module
does just that on asyncio protocols, with the same failure classes the forwarder relies on:

- ``UpstreamConnectError``: the replica could not be connected to (nothing was sent; ADR 0032
  hands the request to another replica);
- ``TimeoutError``: the replica took longer than the read timeout between two reads;
- ``UpstreamBroken``: the connection failed after the request went out, or the answer was not
  HTTP.

A reused keep-alive connection that the service closed just as the request went out is retried
once on a new connection for idempotent methods with a body in hand (RFC 9112 §9.3.1), as
aiohttp did.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Received but unread response bytes above which reading from the service pauses.
_READ_BUFFER_HIGH = 256 * 1024


class UpstreamConnectError(Exception):
    """The replica could not be connected to (refused, unreachable, unknown host, connect timeout)."""

    def __init__(self, origin: str, error: BaseException) -> None:
        super().__init__(f"{origin}: {type(error).__name__}: {error}")
        self.error = error


class UpstreamBroken(Exception):
    """The connection failed after the request went out, or the answer was not valid HTTP."""


class Timeouts:
    """Seconds allowed to connect and between two reads of the answer."""

    __slots__ = ("connect", "read")

    def __init__(self, connect: float, read: float) -> None:
        self.connect = connect
        self.read = read


class Origin:
    """Where a replica listens and the path its URL carries, parsed once."""

    __slots__ = ("host", "port", "host_header", "path_prefix", "key")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url}: the gateway reaches services over plain http://host:port")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = parts.netloc
        self.path_prefix = parts.path.rstrip("/")
        self.key = (self.host, self.port)


class UpstreamResponse:
    """A service's answer: status and headers at once, the body as it arrives."""

    __slots__ = ("status", "raw_headers", "content_length", "_connection", "_chunks", "_buffered", "_complete",
                 "_error", "_waiter", "_informational")  # fmt: skip

    def __init__(self, connection: _Connection) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self._connection = connection
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._informational = False

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (``name`` lower-case), or None."""
        for key, value in self.raw_headers:
            if len(key) == len(name) and key.lower() == name:
                return value
        return None

    async def read(self) -> bytes:
        """The whole body."""
        while not self._complete:
            await self._wait()
        if self._error is not None:
            raise self._error
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data

    async def readany(self) -> bytes:
        """The body received so far and not yet read; b"" once it is all read."""
        while not self._chunks and not self._complete:
            await self._wait()
        if self._error is not None:
            raise self._error
        if not self._chunks:
            return b""
        data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks.clear()
        self._buffered = 0
        self._connection.resume()
        return data

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def release(self) -> None:
        """Give the connection back to the pool when the answer was read whole, else close it."""
        self._connection.finish(self)


class _Connection(asyncio.Protocol):
    """One keep-alive connection to a replica and the response it is reading."""

    def __init__(self, pool: UpstreamClient, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.head_waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.reused = False
        self.received = False  # a byte of the current answer arrived
        self.fresh_parser_needed = False
        self.head_request = False
        self.keep_alive = False
        self.paused_reading = False
        self.paused_writing = False
        self.idle_since = 0.0
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.read_timeout = 0.0

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass of asyncio's

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None or response._complete:
            self.close()  # bytes nobody asked for: the connection cannot be trusted again
            return
        self.received = True
        self.last_read = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(UpstreamBroken(f"invalid HTTP answer: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.response is not None and not self.response._complete:
            self.fail(UpstreamBroken(f"connection closed{f': {exc}' if exc else ''}"))
        self._wake_drain()

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        self._wake_drain()

    # ------------------------------------------------------------ httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if status < 200:  # an interim answer (103 Early Hints): the real one follows
            response._informational = True
            response.raw_headers.clear()
            return
        response.status = status
        # Read now: llhttp forgets it once the message is complete.
        self.keep_alive = self.parser.should_keep_alive()
        length = response.header(b"content-length")
        response.content_length = int(length) if length is not None and length.isdigit() else None
        waiter = self.head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.head_request:
            # The parser would wait for the body a HEAD answer announces but never has.
            self.fresh_parser_needed = True
            self._complete(response)

    def on_body(self, body: bytes) -> None:
        response = self.response
        assert response is not None
        response._chunks.append(body)
        response._buffered += len(body)
        if response._buffered > _READ_BUFFER_HIGH and not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()
        response._wake()

    def on_message_complete(self) -> None:
        response = self.response
        assert response is not None
        if response._informational:
            response._informational = False
            return
        if not response._complete:
            self._complete(response)

    # ------------------------------------------------------------ the request

    def _complete(self, response: UpstreamResponse) -> None:
        response._complete = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiter = self.head_waiter
        if waiter is not None and not waiter.done():
            # Ended (failed, or a message without a status line of its own) before its headers.
            waiter.set_exception(response._error or UpstreamBroken("the answer ended before its headers"))
        response._wake()
        self._wake_drain()

    def fail(self, error: BaseException) -> None:
        """End the current answer with ``error`` for whoever waits on it."""
        response = self.response
        if response is None or response._complete:
            return
        response._error = error
        self._complete(response)

    def resume(self) -> None:
        if self.paused_reading and self.transport is not None and not self.closed:
            self.paused_reading = False
            self.transport.resume_reading()

    def _wake_drain(self) -> None:
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_read_timeout(self) -> None:
        """Fires ``read_timeout`` after the last read, re-armed while bytes keep coming."""
        self.timer = None
        response = self.response
        if response is None or response._complete:
            return
        idle = time.monotonic() - self.last_read
        if idle >= self.read_timeout:
            self.fail(TimeoutError(f"no answer within {self.read_timeout:g} s"))
            self.close()
        else:
            self.timer = asyncio.get_running_loop().call_later(self.read_timeout - idle, self._check_read_timeout)

    async def send(
        self, method: str, head: bytes, data: bytes | AsyncIterator[bytes] | None, read: float
    ) -> UpstreamResponse:
        """Write the request and wait for the answer's status and headers."""
        transport = self.transport
        assert transport is not None
        if self.fresh_parser_needed:
            self.parser = httptools.HttpResponseParser(self)
            self.fresh_parser_needed = False
        self.head_request = method == "HEAD"
        response = self.response = UpstreamResponse(self)
        self.received = False
        loop = asyncio.get_running_loop()
        waiter = self.head_waiter = loop.create_future()
        self.read_timeout = read
        self.last_read = time.monotonic()
        self.timer = loop.call_later(read, self._check_read_timeout)
        if data is None or isinstance(data, bytes):
            transport.write(head + data if data else head)
        else:
            transport.write(head)
            await self._send_chunked(data, response)
        try:
            await waiter
        finally:
            self.head_waiter = None
        return response

    async def _send_chunked(self, data: AsyncIterator[bytes], response: UpstreamResponse) -> None:
        transport = self.transport
        assert transport is not None
        async for chunk in data:
            if response._complete:  # answered (or failed) before the body was all sent
                return
            if chunk:
                transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                self.last_read = time.monotonic()  # the read timeout counts from the last progress
            while self.paused_writing and not self.closed and not response._complete:
                self.drain_waiter = asyncio.get_running_loop().create_future()
                try:
                    await self.drain_waiter
                finally:
                    self.drain_waiter = None
        if not response._complete and not self.closed:
            transport.write(b"0\r\n\r\n")

    def finish(self, response: UpstreamResponse) -> None:
        """The forwarder is done with ``response``: keep the connection if it is clean."""
        if self.response is not response:
            return
        clean = (
            response._complete
            and response._error is None
            and not self.closed
            and not response._chunks
            and self.keep_alive
        )
        self.response = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not clean:
            self.close()
        self.pool.give_back(self)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamClient:
    """Keep-alive connections per replica (host, port), at most ``limit`` requests in flight."""

    def __init__(self, *, limit: int, keepalive_seconds: float) -> None:
        self.keepalive_seconds = keepalive_seconds
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    async def request(
        self,
        method: str,
        origin: Origin,
        target: str,
        headers: list[tuple[str, str]],
        data: bytes | AsyncIterator[bytes] | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        """Send a request to ``origin`` (``target``: path and query after its URL's path) and
        return the answer once its headers arrived; the caller reads the body and then calls
        ``release()`` (which also frees the slot)."""
        head = _request_head(method, origin, target, headers, data)
        await self._slots.acquire()
        try:
            connection = await self._connection(origin, timeouts.connect)
            try:
                response = await connection.send(method, head, data, timeouts.read)
            except UpstreamBroken:
                retry = (
                    connection.reused and not connection.received and method in IDEMPOTENT_METHODS
                    and not (data is not None and not isinstance(data, bytes))
                )  # fmt: skip
                connection.close()
                if not retry:
                    raise
                connection = await self._connection(origin, timeouts.connect, reuse=False)
                try:
                    response = await connection.send(method, head, data, timeouts.read)
                except BaseException:
                    connection.close()  # the handler below does not see what is raised in this one
                    raise
            except BaseException:
                connection.close()
                raise
        except BaseException:
            self._slots.release()
            raise
        return response

    async def _connection(self, origin: Origin, connect_timeout: float, reuse: bool = True) -> _Connection:
        idle = self._idle.get(origin.key)
        if reuse and idle:
            now = time.monotonic()
            while idle:
                connection = idle.pop()
                if not connection.closed and now - connection.idle_since < self.keepalive_seconds:
                    connection.reused = True
                    return connection
                connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, protocol = await loop.create_connection(lambda: _Connection(self, origin), origin.host, origin.port)
        except (OSError, TimeoutError) as exc:
            raise UpstreamConnectError(f"{origin.host}:{origin.port}", exc) from exc
        return cast(_Connection, protocol)

    def give_back(self, connection: _Connection) -> None:
        """The request on ``connection`` is over: its slot is free, and the connection, if still
        open (its answer read whole), waits for the next request to its replica."""
        self._slots.release()
        if connection.closed or self._closed:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle = self._idle.setdefault(connection.origin.key, [])
        if len(idle) >= self._limit:
            connection.close()
            return
        idle.append(connection)

    async def close(self) -> None:
        """Close every idle connection (in-flight ones close when their answer is released)."""
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _request_head(
    method: str, origin: Origin, target: str, headers: list[tuple[str, str]], data: bytes | AsyncIterator[bytes] | None
) -> bytes:
    """The request line and headers; the body's framing is the gateway's, never the client's."""
    lines = [f"{method} {origin.path_prefix}{target} HTTP/1.1\r\nhost: {origin.host_header}\r\n"]
    for name, value in headers:
        if name != "content-length":
            lines.append(f"{name}: {value}\r\n")
    if isinstance(data, bytes):
        lines.append(f"content-length: {len(data)}\r\n")
    elif data is not None:
        lines.append("transfer-encoding: chunked\r\n")
    elif method in _BODY_METHODS:
        lines.append("content-length: 0\r\n")
    lines.append("\r\n")
    head = "".join(lines)
    # A CR or LF inside a name or value would start a header of its own (request smuggling).
    if head.count("\n") != len(lines) + 1:
        raise ValueError("a header name or value holds a line break")
    return head.encode("latin-1")
