"""A tiny receiver that checks signed callbacks the way the gateway does (served on a real socket
with kit.testing.serve)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kit.signing import SignatureRejected, verify_request


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
