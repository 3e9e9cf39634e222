"""Streaming forwarding to a service over the gateway's keep-alive client (gateway/client.py).

Request bodies stream from the ASGI ``receive`` to the service (a single-message body is passed
as bytes); responses stream back, small ones in one message. A replica that cannot be connected
to (nothing was sent) hands the request to the area's next replica (ADR 0032). Failures before the
response has started become problem+json: connection refused → 503, timeout → 504, anything else
→ 502.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import Counter

from gateway.client import Timeouts, UpstreamClient, UpstreamConnectError, UpstreamResponse
from gateway.upstreams import Upstream
from kit.errors import Problem
from kit.logs import get_logger

log = get_logger("yiwang.gateway")

# Request headers never forwarded as sent: hop-by-hop (RFC 9110 §7.6.1), ones the gateway
# sets itself, and any identity header a client could use to pretend to be someone.
_DROP_EXACT = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"expect",
        b"x-request-id",
        b"traceparent",
        b"tracestate",
        b"x-roles",
        b"x-role",
        b"x-dept",
        b"x-department",
        b"x-level",
        b"x-kind",
        b"x-officer",
        b"x-on-behalf-of",
        b"x-scope",
        b"x-scopes",
        b"x-session-id",
        b"x-token-id",
        b"x-real-ip",
        b"x-client-ip",
        b"forwarded",
        b"x-partner-id",
    }
)
_DROP_PREFIXES = (
    b"x-subject-",
    b"x-actor-",
    b"x-partner-",
    b"x-user",
    b"x-auth",
    b"x-verified",
    b"x-gateway-",
    b"x-forwarded-",
    b"x-principal",
    b"x-identity",
    b"x-kiosk-",  # X-Kiosk-Device is the gateway's, from a verified kiosk signature (ADR 0025)
)
_RESPONSE_DROP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"date",  # uvicorn adds its own
        b"server",
        b"x-request-id",  # the gateway sets the one X-Request-Id (the service echoes the same value)
    }
)

_dropped_cache: dict[bytes, bool] = {}


def is_dropped_request_header(name: bytes) -> bool:
    """True for a header the gateway never forwards as the client sent it.

    Compared case-insensitively and with ``_`` read as ``-``: uvicorn (h11, httptools) passes
    ``X_Subject_Id`` through as it is, and a framework behind us (CGI-style ``HTTP_X_SUBJECT_ID``)
    may read it as ``X-Subject-Id``.
    """
    dropped = _dropped_cache.get(name)
    if dropped is None:
        normal = name.lower().replace(b"_", b"-")
        dropped = normal in _DROP_EXACT or normal.startswith(_DROP_PREFIXES)
        if len(_dropped_cache) < 4096:
            _dropped_cache[name] = dropped
    return dropped


_PROBLEM_JSON = b"application/problem+json"


def public_problem(payload: bytes, public_path: str, request_id: str) -> bytes | None:
    """A service's problem document as the client sees it: ``instance`` is the public path
    (``/api/v1/caseflow/cases/X``, not the service's ``/cases/X``) and ``request_id`` is added.
    None when the payload is not a JSON object (then it goes out untouched)."""
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    document["instance"] = public_path
    document["request_id"] = request_id
    return json.dumps(document, ensure_ascii=False).encode()


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A service's response headers minus hop-by-hop ones, names lower-cased for ASGI."""
    out = []
    for name, value in raw:
        lower = name.lower()
        if lower not in _RESPONSE_DROP:
            out.append((lower, value))
    return out


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


async def read_body(receive: Callable[[], Awaitable[dict[str, Any]]], limit: int) -> bytes:
    """The whole request body (for signed routes), refusing more than ``limit`` bytes."""
    chunks = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _StreamState:
    __slots__ = ("too_large", "client_gone", "started")

    def __init__(self) -> None:
        self.too_large = False
        self.client_gone = False
        self.started = False  # a byte of a streamed body was handed to a replica: never resend it


async def _stream_body(
    first: bytes, receive: Callable[[], Awaitable[dict[str, Any]]], limit: int, state: _StreamState
) -> AsyncIterator[bytes]:
    state.started = True
    total = len(first)
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            state.client_gone = True
            raise ClientGone()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            state.too_large = True
            raise BodyTooLarge()
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def upstream_problem(exc: BaseException, area: str, timeout: float) -> Problem:
    """What the client sees when the service did not answer properly."""
    if isinstance(exc, UpstreamConnectError):
        return Problem(
            503, "service-unavailable", "Service unavailable", f"the {area} service cannot be reached",
            headers={"Retry-After": "5"},
        )  # fmt: skip
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return Problem(504, "gateway-timeout", "Gateway timeout", f"the {area} service did not answer in {timeout:g} s")
    return Problem(502, "bad-gateway", "Bad gateway", f"the {area} service gave no valid answer")


class Forwarder:
    """Sends one request upstream and streams the answer to the ASGI ``send``."""

    BUFFER_RESPONSE_BELOW = 256 * 1024

    def __init__(self, client: UpstreamClient, failovers: Counter | None = None) -> None:
        self.client = client
        # gateway_upstream_failovers_total{area}: requests handed to another replica.
        self.failovers = failovers

    async def forward(
        self,
        *,
        method: str,
        upstream: Upstream,
        target: str,
        headers: list[tuple[str, str]],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
        body: bytes | None,
        has_body: bool,
        body_limit: int,
        timeout: Timeouts,
        extra_response_headers: list[tuple[bytes, bytes]],
        public_path: str = "",
        request_id: str = "",
    ) -> int:
        """Forward to a replica of ``upstream`` (``target``: the path and query after its URL) and
        answer; returns the status sent. Raises Problem before the response starts."""
        state = _StreamState()
        data: bytes | AsyncIterator[bytes] | None = body
        if body is None and has_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            first = message.get("body", b"")
            if len(first) > body_limit:
                raise BodyTooLarge()
            data = _stream_body(first, receive, body_limit, state) if message.get("more_body") else first
        response = await self._request(method, upstream, target, headers, data, timeout, state)
        try:
            out_headers = response_headers(response.raw_headers)
            out_headers.extend(extra_response_headers)
            status = response.status
            length = response.content_length
            if method == "HEAD" or status in (204, 304):
                await send({"type": "http.response.start", "status": status, "headers": out_headers})
                await send({"type": "http.response.body", "body": b""})
                return status
            if length is not None and length <= self.BUFFER_RESPONSE_BELOW:
                try:
                    payload = await response.read()
                except Exception as exc:
                    raise upstream_problem(exc, upstream.area, timeout.read) from exc
                if status >= 400 and public_path and response.header(b"content-encoding") is None:
                    content_type = response.header(b"content-type") or b""
                    if content_type.startswith(_PROBLEM_JSON):
                        rewritten = public_problem(payload, public_path, request_id)
                        if rewritten is not None:
                            payload = rewritten
                            out_headers = [(k, v) for k, v in out_headers if k != b"content-length"]
                            out_headers.append((b"content-length", str(len(payload)).encode()))
                await send({"type": "http.response.start", "status": status, "headers": out_headers})
                await send({"type": "http.response.body", "body": payload})
                return status
            await send({"type": "http.response.start", "status": status, "headers": out_headers})
            # Past this point the status is sent: a failing service can only cut the body short,
            # which the exception propagating to the server does (it closes the connection).
            while True:
                chunk = await response.readany()
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return status
        finally:
            response.release()

    async def _request(
        self,
        method: str,
        upstream: Upstream,
        target: str,
        headers: list[tuple[str, str]],
        data: bytes | AsyncIterator[bytes] | None,
        timeout: Timeouts,
        state: _StreamState,
    ) -> UpstreamResponse:
        """The response of the first replica that takes the request.

        Replicas are taken from the area's turn on, those cooling after a failed connection only
        when every other one failed too. Only a failed connection moves on to the next replica:
        after the request went out (reset, timeout) the replica may have acted on it (ADR 0032).
        """
        replicas = upstream.replicas
        count = len(replicas)
        turn = upstream.first_turn()
        now = time.monotonic()
        tried = 0  # bit i: replicas[i] was tried (no list per request)
        failure: BaseException | None = None
        for last_resort in (False, True):
            for step in range(count):
                index = (turn + step) % count
                replica = replicas[index]
                if tried >> index & 1 or (not last_resort and replica.cooling(now)):
                    continue
                if tried and self.failovers is not None:
                    self.failovers.labels(upstream.area).inc()
                tried |= 1 << index
                try:
                    response = await self.client.request(method, replica.endpoint, target, headers, data, timeout)
                except Exception as exc:
                    if state.too_large:
                        raise BodyTooLarge() from exc
                    if state.client_gone:
                        raise ClientGone() from exc
                    # Only a failed connection means the replica never saw the request.
                    if not isinstance(exc, UpstreamConnectError) or state.started:
                        raise upstream_problem(exc, upstream.area, timeout.read) from exc
                    if not replica.cooling(now) and count > 1:
                        log.warning("replica unreachable, skipped for a while", area=upstream.area,
                                    replica=replica.origin, error=type(exc).__name__,
                                    seconds=upstream.cooldown_seconds)  # fmt: skip
                    replica.down_until = time.monotonic() + upstream.cooldown_seconds
                    failure = exc
                    continue
                if replica.down_until:
                    replica.down_until = 0.0  # answered as the last resort: back in turn at once
                return response
        assert failure is not None
        raise upstream_problem(failure, upstream.area, timeout.read) from failure
