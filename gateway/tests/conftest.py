"""Real loopback servers for the gateway tests: a JWKS endpoint, a recording service, the gateway."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from aiohttp import web

from gateway.main import Gateway
from gateway.settings import GatewaySettings, Partner
from kit.natsd import free_port
from kit.signing import SignatureRejected, verify_request
from kit.testing import AUDIENCE, ISSUER, PERSON_ID, TokenSigner  # noqa: F401 - re-exported to the tests


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class SigningKey(TokenSigner):
    """The kit's test signer; the gateway's tokens also carry a session id (revocations name it)."""

    defaults: dict[str, Any] = field(
        default_factory=lambda: {"sub": PERSON_ID, "kind": "person", "lvl": 2, "sid": "s-1"}
    )


def unsigned_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join((b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), b64url(signature)))


def hs256_token(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: Any  # CIMultiDict: case-insensitive
    body: bytes


class LoopbackServer:
    """An aiohttp app on a free loopback port; a subclass adds its routes (``routes``)."""

    client_max_size = 1024**2  # aiohttp's default

    def __init__(self) -> None:
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> Any:
        app = web.Application(client_max_size=self.client_max_size)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class SignedKeySource(LoopbackServer):
    """A service's keys document as far as the gateway sees it (identity's ``/kiosks/keys``,
    exchange's ``/partners/keys``): ``GET path`` signed with the gateway's service key only; any
    other request is refused with ``refusal_status`` (and counted)."""

    def __init__(self, path: str, service_secret: str, document: dict[str, Any], *, refusal_status: int = 401) -> None:
        super().__init__()
        self.path = path
        self.service_secret = service_secret
        self.document = document
        self.refusal_status = refusal_status
        self.url = f"http://127.0.0.1:{self.port}"
        self.served = 0
        self.refused = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_get(self.path, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            verify_request({"gateway": [self.service_secret]}, method="GET", path=request.path, query="",
                           headers={k.lower(): v for k, v in request.headers.items()}, body=b"",
                           now=time.time(), max_age=300)  # fmt: skip
        except SignatureRejected:
            self.refused += 1
            return web.json_response({"status": self.refusal_status}, status=self.refusal_status)
        self.served += 1
        return web.json_response(self.document)


class Upstream(LoopbackServer):
    """A small service that records what it saw; special paths sleep, stream or serve OpenAPI."""

    client_max_size = 64 * 1024 * 1024

    def __init__(self, openapi: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.seen: list[Seen] = []
        self.openapi = openapi or {"openapi": "3.1.0", "info": {"title": "x", "version": "1"}, "paths": {}}
        self.ready = True
        self.url = f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/readyz":
            return web.json_response({"status": "ok"}, status=200 if self.ready else 503)
        if path == "/openapi.json":
            return web.json_response(self.openapi)
        body = await request.read()
        self.seen.append(Seen(request.method, path, request.rel_url.raw_query_string, request.headers.copy(), body))
        if path.startswith("/slow"):
            await asyncio.sleep(float(request.query.get("seconds", "5")))
        if path.startswith("/problem"):
            # As a kit service answers: problem+json with the service's own path as instance.
            return web.json_response(
                {"type": "https://yiwang.example/problems/not-found", "title": "Not found", "status": 404,
                 "instance": path},
                status=404, content_type="application/problem+json",
                headers={"X-Request-Id": request.headers.get("X-Request-Id", "")},
            )  # fmt: skip
        if path == "/stream":
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            await response.prepare(request)
            for _ in range(8):
                await response.write(b"x" * 100_000)
            await response.write_eof()
            return response
        return web.json_response(
            {"method": request.method, "path": path, "query": request.query_string, "length": len(body)},
            # A kit service echoes the request id it was given, as the gateway's upstreams do.
            headers={"X-Upstream": "yes", "Set-Cookie": "a=b", "X-Request-Id": request.headers.get("X-Request-Id", "")},
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.handle)


class JwksServer(LoopbackServer):
    def __init__(self, keys: list[SigningKey]) -> None:
        super().__init__()
        self.keys = keys
        self.fetches = 0
        self.url = f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response({"keys": [k.jwk() for k in self.keys]})

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/.well-known/jwks.json", self.handle)


PARTNER_SECRET = "ems-secret-for-tests"
DEPT_SECRET = "dept-4401-secret"


def gateway_settings(upstream_url: str, jwks_url: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "environment": "test",
        "upstreams": {
            "identity": upstream_url,
            "caseflow": upstream_url,
            "catalog": upstream_url,
            "express": upstream_url,
            "departments": upstream_url + "/departments",
        },
        "jwks_url": jwks_url,
        "jwks_min_refetch_seconds": 10.0,
        "read_timeout_seconds": 0.5,
        "connect_timeout_seconds": 0.5,
        "max_body_bytes": 64 * 1024,
        "rate_limit_ip_per_second": 1000,
        "rate_limit_ip_burst": 1000,
        "rate_limit_subject_per_second": 1000,
        "rate_limit_subject_burst": 1000,
        "cors_origins": ["https://h5.yiwang.example"],
        "partners": {
            "ems": Partner(secrets=[PARTNER_SECRET], paths=["/api/v1/express/callbacks/ems"]),
            "dept-4401": Partner(secrets=[DEPT_SECRET], paths=["/api/v1/departments/4401/**"]),
        },
        "log_json": False,
        "nats_enabled": False,  # the revocation tests start a nats-server of their own
    }
    values.update(overrides)
    return GatewaySettings(**values)


@asynccontextmanager
async def running_gateway(settings: GatewaySettings, **options: Any) -> AsyncIterator[tuple[Gateway, str]]:
    """The gateway under uvicorn (httptools) on a free loopback port, in this event loop."""
    app = Gateway(settings, configure_logs=False, **options)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        http="httptools",
        access_log=False,
        proxy_headers=False,  # the gateway decides whom to believe (trusted_proxies)
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("gateway did not start")
        if time.monotonic() > deadline:
            raise TimeoutError("gateway did not start")
        await asyncio.sleep(0.01)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(kid="k1")


@pytest.fixture
async def jwks(key: SigningKey) -> AsyncIterator[JwksServer]:
    server = await JwksServer([key]).start()
    yield server
    await server.stop()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream().start()
    yield server
    await server.stop()


@pytest.fixture
async def gateway(upstream: Upstream, jwks: JwksServer) -> AsyncIterator[tuple[Gateway, str]]:
    async with running_gateway(gateway_settings(upstream.url, jwks.url)) as running:
        yield running
