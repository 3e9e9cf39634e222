"""The gateway's HTTP/1.1 client against scripted loopback servers, on asyncio's loop and uvloop
(the one uvicorn runs the gateway on)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from gateway.client import Origin, Timeouts, UpstreamBroken, UpstreamClient, UpstreamConnectError
from kit.natsd import free_port

LOOPS = pytest.mark.parametrize(
    "loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)
TIMEOUTS = Timeouts(connect=1.0, read=1.0)

# What a scripted server answers to one request head (and body): bytes to write, or None to
# close the connection without answering.
Answer = Callable[[bytes, bytes], bytes | None]


def ok(body: bytes = b"hello", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%b\r\n%b" % (len(body), extra, body)


class ScriptedServer:
    """Answers each request with ``answers[i]`` in turn; remembers connections and requests."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.connections = 0
        self.ended = 0  # connections over: closed by either side
        self.requests: list[tuple[bytes, bytes]] = []
        self.server: asyncio.Server | None = None
        self.origin: Origin | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                body = await read_body(reader, head)
                self.requests.append((head, body))
                answer = self.answers.pop(0)(head, body)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
        self.ended += 1

    async def start(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.origin = Origin(f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/base")
        return self

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


async def read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    lines = head.lower().split(b"\r\n")
    for line in lines:
        if line.startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":")[1]))
    if b"transfer-encoding: chunked" in lines:
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk[:-2])
    return b""


def run(loop_factory: Callable[[], asyncio.AbstractEventLoop], test: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(test())


async def fetch(
    client: UpstreamClient, origin: Origin, method: str = "GET", data=None, timeouts: Timeouts = TIMEOUTS
) -> tuple[int, bytes]:
    response = await client.request(method, origin, "/x?q=1", [("x-test", "yes")], data, timeouts)
    try:
        return response.status, await response.read()
    finally:
        response.release()


@LOOPS
def test_requests_share_one_keep_alive_connection_and_carry_prefix_host_and_framing(loop_factory):
    async def test() -> None:
        server = await ScriptedServer(*(lambda head, body: ok(body or b"empty") for _ in range(3))).start()
        client = UpstreamClient(limit=8, keepalive_seconds=5)
        assert server.origin is not None
        assert await fetch(client, server.origin) == (200, b"empty")
        assert await fetch(client, server.origin, "POST", b'{"a":1}') == (200, b'{"a":1}')
        assert await fetch(client, server.origin, "POST") == (200, b"empty")
        await client.close()
        server.close()
        assert server.connections == 1
        heads = [head.decode().split("\r\n") for head, _ in server.requests]
        assert heads[0][0] == "GET /base/x?q=1 HTTP/1.1"
        assert f"host: {server.origin.host_header}" in heads[0] and "x-test: yes" in heads[0]
        assert not any(line.startswith("content-length") for line in heads[0])
        assert "content-length: 7" in heads[1] and "content-length: 0" in heads[2]

    run(loop_factory, test)


@LOOPS
def test_a_head_answer_announcing_a_body_leaves_the_connection_usable(loop_factory):
    async def test() -> None:
        head_answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"  # no body follows a HEAD answer
        server = await ScriptedServer(lambda h, b: head_answer, lambda h, b: ok(b"after")).start()
        client = UpstreamClient(limit=8, keepalive_seconds=5)
        assert server.origin is not None
        assert await fetch(client, server.origin, "HEAD") == (200, b"")
        assert await fetch(client, server.origin) == (200, b"after")
        await client.close()
        server.close()
        assert server.connections == 1

    run(loop_factory, test)


@LOOPS
def test_chunked_and_interim_answers_stream_whole(loop_factory):
    chunked = b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    chunked += b"".join(b"%x\r\n%b\r\n" % (len(part), part) for part in (b"z" * 70_000, b"y" * 300_000)) + b"0\r\n\r\n"

    async def test() -> None:
        server = await ScriptedServer(lambda h, b: chunked).start()
        client = UpstreamClient(limit=8, keepalive_seconds=5)
        assert server.origin is not None
        response = await client.request("GET", server.origin, "/", [], None, TIMEOUTS)
        assert response.status == 200 and response.content_length is None
        assert response.header(b"transfer-encoding") == b"chunked" and response.header(b"link") is None
        received = []
        while chunk := await response.readany():
            received.append(chunk)
        response.release()
        assert b"".join(received) == b"z" * 70_000 + b"y" * 300_000
        await client.close()
        server.close()

    run(loop_factory, test)


@LOOPS
def test_a_streamed_request_body_goes_chunked(loop_factory):
    async def parts():
        for part in (b"a" * 100_000, b"", b"b" * 10):
            yield part

    async def test() -> None:
        server = await ScriptedServer(lambda head, body: ok(str(len(body)).encode())).start()
        client = UpstreamClient(limit=8, keepalive_seconds=5)
        assert server.origin is not None
        assert await fetch(client, server.origin, "PUT", parts()) == (200, b"100010")
        assert b"transfer-encoding: chunked" in server.requests[0][0]
        await client.close()
        server.close()

    run(loop_factory, test)


@LOOPS
@pytest.mark.parametrize(("method", "retried"), [("GET", True), ("POST", False)])
def test_a_kept_connection_the_service_closed_is_retried_only_for_idempotent_methods(loop_factory, method, retried):
    async def test() -> None:
        server = await ScriptedServer(lambda h, b: ok(), lambda h, b: None, lambda h, b: ok(b"again")).start()
        client = UpstreamClient(limit=8, keepalive_seconds=5)
        assert server.origin is not None
        assert await fetch(client, server.origin) == (200, b"hello")
        if retried:
            assert await fetch(client, server.origin, method) == (200, b"again")
        else:
            with pytest.raises(UpstreamBroken):
                await fetch(client, server.origin, method)
        await client.close()
        server.close()
        assert len(server.requests) == (3 if retried else 2) and server.connections == (2 if retried else 1)

    run(loop_factory, test)


@LOOPS
def test_a_resend_given_up_closes_its_connection(loop_factory):
    """The request is cancelled (the gateway shutting down) while its resend waits for an answer."""

    async def test() -> None:
        silent = ScriptedServer(lambda h, b: ok(), lambda h, b: None, lambda h, b: b"")  # the resend: no answer
        server = await silent.start()
        client = UpstreamClient(limit=8, keepalive_seconds=5)
        assert server.origin is not None
        assert await fetch(client, server.origin) == (200, b"hello")
        # A read timeout far away, so only closing the connection can end it within the test.
        waiting = asyncio.create_task(fetch(client, server.origin, timeouts=Timeouts(connect=1.0, read=600.0)))
        while len(server.requests) < 3:  # the resend reached the server
            await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

        async def closed() -> None:
            while server.ended < 2:  # the server sees the resend's connection closed
                await asyncio.sleep(0.01)

        await asyncio.wait_for(closed(), 30)
        assert server.connections == 2
        await client.close()
        server.close()

    run(loop_factory, test)


@LOOPS
def test_failures_are_told_apart(loop_factory):
    async def test() -> None:
        client = UpstreamClient(limit=8, keepalive_seconds=5)
        with pytest.raises(UpstreamConnectError):
            await fetch(client, Origin(f"http://127.0.0.1:{free_port()}"))

        slow = await ScriptedServer(lambda h, b: b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\npart").start()
        assert slow.origin is not None
        with pytest.raises(TimeoutError):
            await fetch(client, slow.origin)  # the rest of the body never comes
        slow.close()

        garbage = await ScriptedServer(lambda h, b: b"this is not http\r\n\r\n").start()
        assert garbage.origin is not None
        with pytest.raises(UpstreamBroken):
            await fetch(client, garbage.origin)
        garbage.close()

        with pytest.raises(ValueError, match="line break"):
            await client.request("GET", garbage.origin, "/", [("x-a", "1\r\nx-b: 2")], None, TIMEOUTS)
        await client.close()

    run(loop_factory, test)
