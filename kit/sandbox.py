"""What the sandboxes (EMS, the department system, the payment gateway) share: their background
work (spawned tasks that tests wait for and closing cancels), signed requests with a nonce seen
once, a JSON body read into a model (a 422 problem naming the field otherwise), a callback POSTed
until taken with jittered exponential backoff, and the app's scaffolding (lifespan, problems,
``/healthz``, ``/readyz``) and ``main``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kit.errors import Problem, install_problem_handlers
from kit.signing import SignatureRejected, verify_request


class SandboxWork:
    """A sandbox's background tasks, and what it closes when the app stops."""

    def __init__(self, *, close: Callable[[], Awaitable[None]] | None = None) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._nonces: dict[str, float] = {}
        self._close = close

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self, timeout: float) -> None:
        """Wait until every spawned task has finished (tests)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with suppress(asyncio.CancelledError, Exception):
                await task
        if self._close is not None:
            await self._close()

    def _verify_signed(self, request: Request, body: bytes, keys: Mapping[str, list[str]], *, max_age: int) -> None:
        """The caller's kit.signing signature, and its nonce not seen within the window (401 problem otherwise)."""
        now = time.time()
        try:
            _, nonce = verify_request(
                keys, method=request.method, path=request.url.path, query=request.url.query,
                headers=request.headers, body=body, now=now, max_age=max_age,
            )  # fmt: skip
        except SignatureRejected as rejected:
            raise Problem(401, "bad-signature", "signature refused", rejected.detail, reason=rejected.reason) from None
        self._nonces = {n: t for n, t in self._nonces.items() if t > now}
        if nonce in self._nonces:
            raise Problem(401, "bad-signature", "signature refused", "nonce already used", reason="replay")
        self._nonces[nonce] = now + 2 * max_age


def parse_body(model: type[BaseModel], body: bytes) -> Any:
    """``body`` read into ``model``, or a 422 problem naming the first field wrong and its rule."""
    try:
        return model.model_validate_json(body)
    except ValueError as exc:
        errors: list[Any] = getattr(exc, "errors", list)()
        first = errors[0] if errors else {}
        name = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise Problem(422, "validation", "Request is not valid", f"{name}: {first.get('msg', 'invalid')}",
                      errors=[{"field": name, "rule": first.get("type", "invalid"),
                               "message": first.get("msg", "invalid")}]) from None  # fmt: skip


class Send(Protocol):
    attempts: int
    delivered_at: str | None
    last_error: str | None
    gave_up: bool


async def post_until_taken(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Callable[[], dict[str, str]],
    send: Send,
    *,
    max_attempts: int,
    retry_base_seconds: float,
    retry_max_seconds: float,
    jitter: random.Random,
    now: Callable[[], str],
    retry_statuses: Collection[int] | None = None,
) -> bool:
    """POST ``body`` (fresh ``headers()`` each try) until answered 2xx: True; False (``send.gave_up``)
    when the attempts run out or, with ``retry_statuses``, a 4xx not in them says trying again is
    useless (None: every failure is tried again)."""
    for attempt in range(1, max_attempts + 1):
        send.attempts = attempt
        try:
            response = await client.post(url, content=body, headers=headers())
        except httpx.HTTPError as exc:
            send.last_error = type(exc).__name__
        else:
            if response.status_code < 300:
                send.delivered_at = now()
                send.last_error = None
                return True
            send.last_error = f"HTTP {response.status_code}"
            if retry_statuses is not None and response.status_code < 500 and response.status_code not in retry_statuses:
                break
        if attempt < max_attempts:
            backoff = min(retry_base_seconds * 2 ** (attempt - 1), retry_max_seconds)
            await asyncio.sleep(backoff * jitter.uniform(0.5, 1.0))  # backoff between tries
    send.gave_up = True
    return False


def sandbox_app(title: str, sandbox: SandboxWork, *, ready: Callable[[], bool] = lambda: True) -> FastAPI:
    """A sandbox's app: ``app.state.sandbox``, problem handlers, ``/healthz``, ``/readyz`` (503
    ``outage`` while ``ready()`` is false); the sandbox is closed when the app stops."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await sandbox.aclose()

    app = FastAPI(title=title, version="1", lifespan=lifespan)
    app.state.sandbox = sandbox
    install_problem_handlers(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if not ready():
            return JSONResponse({"status": "outage"}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app


def serve(create_app: Callable[[Any], FastAPI], settings: Any) -> None:
    """Serve ``create_app(settings)`` on ``settings.host``:``settings.port`` (a sandbox's ``main``)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
