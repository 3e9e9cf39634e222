"""Running an ASGI app under uvicorn on a free loopback port (a real socket), and a tiny receiver
that checks signed callbacks the way the gateway does."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kit.signing import SignatureRejected, verify_request


@asynccontextmanager
async def serve(app, *, lifespan: str = "on") -> AsyncIterator[str]:
    """``app`` on ``http://127.0.0.1:<free port>`` until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan=lifespan, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@dataclass
class Receiver:
    """Express's callback endpoint as far as signatures go: verifies every POST as partner ``ems``,
    refuses replayed nonces, answers ``fail_first`` requests with 503, records what it accepted."""

    secret: str
    fail_first: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: int = 0
    nonces: set[str] = field(default_factory=set)

    def app(self, path: str = "/api/v1/express/callbacks/ems") -> Starlette:
        return Starlette(routes=[Route(path, self._callback, methods=["POST"])])

    async def _callback(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            partner, nonce = verify_request({"ems": [self.secret]}, method=request.method, path=request.url.path,
                                            query=request.url.query, headers=request.headers, body=body,
                                            now=time.time(), max_age=300)  # fmt: skip
        except SignatureRejected as rejected:
            self.rejected.append(rejected.reason)
            return JSONResponse({"status": 401}, status_code=401)
        if nonce in self.nonces:
            self.rejected.append("replay")
            return JSONResponse({"status": 401}, status_code=401)
        self.nonces.add(nonce)
        if self.fail_first > 0:
            self.fail_first -= 1
            self.failed += 1
            return JSONResponse({"status": 503}, status_code=503)
        self.accepted.append({"partner": partner, **json.loads(body)})
        return JSONResponse({"ok": True})
