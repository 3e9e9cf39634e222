"""Several replicas behind one area (ADR 0032), against real loopback services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from gateway.tests.conftest import JwksServer, SigningKey, Upstream, gateway_settings, running_gateway
from kit.natsd import free_port

PROBLEM = "application/problem+json"


def bearer(key: SigningKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.token()}"}


def failovers(metrics: str, area: str) -> float:
    """gateway_upstream_failovers_total{area} from a /metrics page (0 before the first)."""
    for line in metrics.splitlines():
        if line.startswith(f'gateway_upstream_failovers_total{{area="{area}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[Upstream, Upstream]]:
    first, second = Upstream(), Upstream()
    await first.start()
    await second.start()
    yield first, second
    await first.stop()
    await second.stop()


async def test_requests_are_spread_over_the_replicas_with_their_prefix(replicas, jwks: JwksServer, key):
    first, second = replicas
    settings = gateway_settings(first.url, jwks.url, upstreams={"caseflow": [first.url + "/svc", second.url + "/svc/"]})
    async with running_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as client:
        for n in range(6):
            method = "GET" if n < 3 else "POST"
            r = await client.request(method, f"/api/v1/caseflow/cases?n={n}", json={}, headers=bearer(key))
            assert r.status_code == 200
    # Round robin: each replica took every other request, with the area's path prefix.
    assert [(s.method, s.query) for s in first.seen] == [("GET", "n=0"), ("GET", "n=2"), ("POST", "n=4")]
    assert [(s.method, s.query) for s in second.seen] == [("GET", "n=1"), ("POST", "n=3"), ("POST", "n=5")]
    assert {s.path for s in first.seen + second.seen} == {"/svc/cases"}


async def test_a_replica_down_is_skipped_then_tried_again_once_its_cooldown_is_over(replicas, jwks, key):
    alive, _ = replicas
    revived = Upstream()  # its port is closed until it starts
    settings = gateway_settings(
        alive.url, jwks.url, upstreams={"caseflow": [revived.url, alive.url]}, replica_cooldown_seconds=60
    )

    async def chunked_body() -> AsyncIterator[bytes]:
        for part in (b'{"streamed":', b" true}"):
            yield part

    async with running_gateway(settings) as (app, base), httpx.AsyncClient(base_url=base) as client:
        statuses = []
        for n in range(4):  # the closed replica's turns included, POST as well
            statuses.append((await client.get(f"/api/v1/caseflow/cases/{n}", headers=bearer(key))).status_code)
            r = await client.post("/api/v1/caseflow/cases", json={"n": n}, headers=bearer(key))
            statuses.append(r.status_code)
        r = await client.post("/api/v1/caseflow/cases", content=chunked_body(), headers=bearer(key))
        statuses.append(r.status_code)
        assert statuses == [200] * 9
        assert len(alive.seen) == 9
        assert [s.body for s in alive.seen if s.method == "POST"][-1] == b'{"streamed": true}'
        # Only the first request paid for the refusal: then the replica was cooling.
        assert failovers((await client.get("/metrics")).text, "caseflow") == 1

        await revived.start()
        try:
            for _ in range(4):
                assert (await client.get("/api/v1/caseflow/cases", headers=bearer(key))).status_code == 200
            assert revived.seen == []  # still cooling
            replica = app.upstreams["caseflow"].replicas[0]
            assert replica.origin == revived.url and replica.down_until > 0
            replica.down_until -= 60  # the cooldown is over
            for n in range(4):
                r = await client.post("/api/v1/caseflow/cases", json={"n": n}, headers=bearer(key))
                assert r.status_code == 200
            assert [s.method for s in revived.seen] == ["POST", "POST"]
        finally:
            await revived.stop()


async def test_a_cooling_replica_is_the_last_resort_and_none_left_is_503(jwks, key):
    first, second = Upstream(), Upstream()  # both closed
    settings = gateway_settings(
        first.url, jwks.url, upstreams={"caseflow": [first.url, second.url]}, replica_cooldown_seconds=60
    )
    async with running_gateway(settings) as (app, base), httpx.AsyncClient(base_url=base) as client:
        r = await client.post("/api/v1/caseflow/cases", json={}, headers=bearer(key))
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
        assert r.json()["type"].endswith("/service-unavailable") and "caseflow" in r.json()["detail"]
        assert all(replica.down_until > 0 for replica in app.upstreams["caseflow"].replicas)
        await second.start()
        try:
            # Every replica is cooling: they are tried anyway, and the one back answers.
            r = await client.post("/api/v1/caseflow/cases", json={}, headers=bearer(key))
            assert r.status_code == 200 and len(second.seen) == 1
            assert app.upstreams["caseflow"].replicas[1].down_until == 0
        finally:
            await second.stop()


class DroppingService:
    """Reads one request, then closes the connection without (or halfway through) an answer."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        await reader.readexactly(length)
        self.requests.append(head.split(b"\r\n", 1)[0])
        writer.write(self.answer)
        await writer.drain()
        writer.transport.abort()  # a reset, as a killed process leaves

    async def start(self) -> DroppingService:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 200 OK\r\nContent-Le"], ids=["no-answer", "half-answer"])
async def test_a_post_dropped_after_it_was_sent_is_not_resent(replicas, jwks, key, answer):
    _, other = replicas
    dropping = await DroppingService(answer).start()
    settings = gateway_settings(other.url, jwks.url, upstreams={"caseflow": [dropping.url, other.url]})
    try:
        async with running_gateway(settings) as (app, base), httpx.AsyncClient(base_url=base) as client:
            r = await client.post("/api/v1/caseflow/cases", json={"n": 1}, headers=bearer(key))
            metrics = (await client.get("/metrics")).text
    finally:
        dropping.stop()
    assert r.status_code == 502 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("/bad-gateway")
    assert dropping.requests == [b"POST /cases HTTP/1.1"]  # seen once: the service may have acted on it
    assert other.seen == []
    assert failovers(metrics, "caseflow") == 0


async def test_readiness_and_openapi_need_one_ready_replica_per_service(replicas, jwks, key):
    first, second = replicas
    closed = f"http://127.0.0.1:{free_port()}"
    settings = gateway_settings(first.url, jwks.url, upstreams={"caseflow": [closed, first.url, second.url]})
    async with running_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as client:
        r = await client.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"]["caseflow"] == "ok"
        assert list(r.json()["replicas_down"]) == [closed]
        document = (await client.get("/api/v1/openapi.json")).json()
        assert "x-unavailable-areas" not in document["info"]  # read from a replica that answered
        first.ready = second.ready = False
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["caseflow"].startswith("failed")
        assert set(r.json()["replicas_down"]) == {closed, first.url, second.url}


@pytest.mark.parametrize(
    ("replicas", "rule"),
    [
        ([], "at least one replica URL is required"),
        (["http://127.0.0.1:8003", "http://127.0.0.1:8013/cases"], "replicas must share one path prefix"),
        (["https://127.0.0.1:8003"], "is not an http://host[:port] URL"),
        (["127.0.0.1:8003"], "is not an http://host[:port] URL"),
    ],
)
def test_settings_refuse_an_area_without_replicas_or_with_differing_prefixes(replicas, rule):
    with pytest.raises(ValidationError) as raised:
        GatewaySettings(upstreams={"identity": "http://127.0.0.1:8001", "cases": replicas})
    assert rule in str(raised.value) and "upstreams['cases']" in str(raised.value)


def test_settings_read_replica_lists_and_single_urls_from_the_environment(monkeypatch):
    upstreams = {"cases": ["http://127.0.0.1:8003", "http://127.0.0.1:8013/"], "identity": "http://127.0.0.1:8001"}
    monkeypatch.setenv("GATEWAY_UPSTREAMS", json.dumps(upstreams))
    assert GatewaySettings().upstreams == upstreams
