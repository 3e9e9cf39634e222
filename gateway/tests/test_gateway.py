"""The gateway under uvicorn against real loopback services (recording upstream, JWKS server)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from gateway.signing import signed_headers
from gateway.tests.conftest import (
    AUDIENCE,
    DEPT_SECRET,
    ISSUER,
    PARTNER_SECRET,
    PERSON_ID,
    JwksServer,
    SigningKey,
    Upstream,
    gateway_settings,
    hs256_token,
    running_gateway,
    unsigned_token,
)
from kit.natsd import free_port

PROBLEM = "application/problem+json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_forwards_with_identity_headers_from_token_and_strips_forged_ones(gateway, upstream, key):
    _, base = gateway
    token = key.token(act={"sub": "110101199003070017"}, sub="91350100M000100Y43", kind="enterprise", lvl=3)
    forged = {
        "X-Subject-Id": "110101200001010011",
        "X-Subject-Kind": "officer",
        "X-Subject-Level": "4",
        "X-Actor-Id": "evil",
        "X-Roles": "admin,supervisor",
        "X-Dept": "4401",
        "X-Partner-Id": "ems",
        "X-Forwarded-For": "10.0.0.1",
        "X-Request-Id": "req-42.ok",
    }
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/api/v1/identity/me?x=1&y=%20z", headers={**forged, **bearer(token)})
    assert response.status_code == 200
    assert response.headers["x-upstream"] == "yes"
    assert response.headers["x-request-id"] == "req-42.ok"
    seen = upstream.seen[-1]
    assert seen.path == "/me"
    assert seen.query == "x=1&y=%20z"
    assert seen.headers["X-Subject-Id"] == "91350100M000100Y43"
    assert seen.headers["X-Subject-Kind"] == "enterprise"
    assert seen.headers["X-Subject-Level"] == "3"
    assert seen.headers["X-Actor-Id"] == "110101199003070017"
    assert "X-Roles" not in seen.headers and "X-Dept" not in seen.headers
    assert "X-Partner-Id" not in seen.headers
    assert seen.headers["X-Forwarded-For"] == "127.0.0.1"
    assert seen.headers["X-Request-Id"] == "req-42.ok"
    assert seen.headers["Authorization"] == f"Bearer {token}"
    assert seen.headers["traceparent"].startswith("00-") and len(seen.headers["traceparent"]) == 55


async def test_officer_headers_and_trace_continued(gateway, upstream, key):
    _, base = gateway
    token = key.token(sub="officer:li", kind="officer", roles=["acceptor", "supervisor"], dept="4401", lvl=4)
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.get(
            "/api/v1/caseflow/worklist", headers={**bearer(token), "traceparent": trace, "X-Request-Id": "bad id!"}
        )
    assert response.status_code == 200
    seen = upstream.seen[-1]
    assert seen.headers["X-Roles"] == "acceptor,supervisor"
    assert seen.headers["X-Dept"] == "4401"
    assert seen.headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert not seen.headers["traceparent"].endswith("00f067aa0ba902b7-01")
    assert seen.headers["X-Request-Id"] != "bad id!" and len(seen.headers["X-Request-Id"]) == 32


def _bad_tokens(key: SigningKey) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": PERSON_ID,
        "kind": "officer",
        "lvl": 4,
        "iat": now,
        "exp": now + 600,
    }
    good = key.token()
    header, payload, signature = good.split(".")
    tampered_payload = unsigned_token({}, {**claims}).split(".")[1]
    return {
        "tampered": f"{header}.{tampered_payload}.{signature}",
        "expired": key.token(iat=now - 1200, exp=now - 600),
        "unknown key": SigningKey(kid="k1").token(),  # same kid, another private key
        "unknown kid": SigningKey(kid="k-other").token(),
        "wrong audience": key.token(aud="someone-else"),
        "wrong issuer": key.token(iss="evil-identity"),
        "no exp": key.token(exp=None),
        "alg none": unsigned_token({"alg": "none", "typ": "JWT", "kid": "k1"}, claims),
        "alg none no signature": unsigned_token({"alg": "none", "kid": "k1"}, claims)[:-1],
        "hs256 with public key": hs256_token(key.public_raw(), {"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims),
        "hs256 with jwk x": hs256_token(key.jwk()["x"].encode(), {"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims),
        "garbage": "not-a-token",
    }


async def test_every_bad_token_is_401_problem_and_never_forwarded(gateway, upstream, key):
    _, base = gateway
    async with httpx.AsyncClient(base_url=base) as client:
        for name, token in _bad_tokens(key).items():
            response = await client.get("/api/v1/identity/me", headers=bearer(token))
            assert response.status_code == 401, name
            assert response.headers["content-type"] == PROBLEM, name
            assert response.headers["www-authenticate"] == "Bearer", name
            body = response.json()
            assert body["status"] == 401 and body["type"].endswith("/unauthorized"), name
            assert "Traceback" not in response.text
        for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
            response = await client.get("/api/v1/identity/me", headers=headers)
            assert response.status_code == 401
    assert upstream.seen == []


async def test_public_routes_need_no_token_and_others_do(gateway, upstream):
    _, base = gateway
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.post("/api/v1/identity/register", json={"a": 1})).status_code == 200
        assert (await client.post("/api/v1/identity/sessions", json={})).status_code == 200
        assert (await client.get("/api/v1/catalog/matters?q=yyzz")).status_code == 200
        assert (await client.get("/api/v1/caseflow/progress/C2026000001")).status_code == 200
        assert (await client.get("/api/v1/identity/sandbox/sms")).status_code == 200  # environment "test"
        assert (await client.delete("/api/v1/identity/sessions")).status_code == 401
        assert (await client.post("/api/v1/catalog/matters", json={})).status_code == 401
        assert (await client.get("/api/v1/caseflow/progress/C1/secret")).status_code == 401
        assert (await client.get("/api/v1/caseflow/cases")).status_code == 401
    assert [s.path for s in upstream.seen] == [
        "/register",
        "/sessions",
        "/matters",
        "/progress/C2026000001",
        "/sandbox/sms",
    ]
    assert all("X-Subject-Id" not in s.headers for s in upstream.seen)


async def test_public_route_with_forged_headers_and_bad_token_passes_anonymously(gateway, upstream):
    _, base = gateway
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.get(
            "/api/v1/catalog/matters", headers={"X-Subject-Id": PERSON_ID, "Authorization": "Bearer nope"}
        )
    assert response.status_code == 200
    assert "X-Subject-Id" not in upstream.seen[-1].headers


async def test_policies_kind_role_and_level(gateway, upstream, key):
    _, base = gateway
    person = key.token()
    officer = key.token(sub="officer:wang", kind="officer", roles=["acceptor"], dept="4401")
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.get("/api/v1/caseflow/worklist", headers=bearer(person))
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
        r = await client.get("/api/v1/caseflow/supervision/warnings", headers=bearer(officer))
        assert r.status_code == 403
        assert "supervisor" in r.json()["detail"]
        r = await client.post("/api/v1/caseflow/cases/C1/actions", headers=bearer(officer), json={})
        assert r.status_code == 200
    assert [s.path for s in upstream.seen] == ["/cases/C1/actions"]


async def test_min_level_rule_from_settings(upstream, jwks, key):
    settings = gateway_settings(
        upstream.url, jwks.url, extra_routes=[{"pattern": "/api/v1/caseflow/cases", "methods": "POST", "min_level": 3}]
    )
    async with running_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as client:
        r = await client.post("/api/v1/caseflow/cases", headers=bearer(key.token(lvl=2)), json={})
        assert r.status_code == 403 and r.json()["type"].endswith("/real-name-level")
        r = await client.post("/api/v1/caseflow/cases", headers=bearer(key.token(lvl=3)), json={})
        assert r.status_code == 200


async def test_denied_and_unknown_paths(gateway, upstream, key):
    _, base = gateway
    token = bearer(key.token())
    async with httpx.AsyncClient(base_url=base) as client:
        for path in (
            "/api/v1/caseflow/departments/4401/events",  # signed pushes only via /departments
            "/api/v1/identity/metrics",
            "/api/v1/nowhere/x",
            "/elsewhere",
        ):
            r = await client.get(path, headers=token)
            assert r.status_code == 404, path
            assert r.headers["content-type"] == PROBLEM
        for raw in ("/api/v1/caseflow/progress/..%2Fworklist", "/api/v1/caseflow/progress/%2e%2e/worklist"):
            r = await client.get(raw)
            assert r.status_code == 400, raw
    assert upstream.seen == []


async def test_body_limit_413_by_length_and_while_streaming(gateway, upstream, key):
    _, base = gateway
    token = bearer(key.token())

    async def chunks():
        for _ in range(10):
            yield b"y" * 10_000

    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.post("/api/v1/caseflow/cases", headers=token, content=b"x" * (64 * 1024 + 1))
        assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
        r = await client.post("/api/v1/caseflow/cases", headers=token, content=chunks())
        assert r.status_code == 413
        r = await client.post("/api/v1/caseflow/cases", headers=token, content=b"x" * 60_000)
        assert r.status_code == 200 and r.json()["length"] == 60_000
    # Only the request within the limit reached the service whole.
    assert [len(s.body) for s in upstream.seen if s.body][-1] == 60_000


async def test_streams_large_bodies_both_ways(upstream, jwks, key):
    settings = gateway_settings(upstream.url, jwks.url, max_body_bytes=10 * 1024 * 1024)

    async def chunks():
        for _ in range(50):
            yield b"z" * 65536

    async with running_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as client:
        r = await client.put("/api/v1/caseflow/cases/C1/materials", headers=bearer(key.token()), content=chunks())
        assert r.status_code == 200 and r.json()["length"] == 50 * 65536
        r = await client.get("/api/v1/caseflow/stream", headers=bearer(key.token()))
        assert r.status_code == 200 and len(r.content) == 800_000


async def test_rate_limit_per_subject_429_with_retry_after(upstream, jwks, key):
    settings = gateway_settings(upstream.url, jwks.url, rate_limit_subject_per_second=1, rate_limit_subject_burst=3)
    async with running_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as client:
        token = bearer(key.token())
        codes = [(await client.get("/api/v1/identity/me", headers=token)).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = await client.get("/api/v1/identity/me", headers=token)
        assert r.status_code == 429 and r.headers["content-type"] == PROBLEM
        assert int(r.headers["retry-after"]) >= 1
        other = bearer(key.token(sub="110101199003070017"))
        assert (await client.get("/api/v1/identity/me", headers=other)).status_code == 200


async def test_rate_limit_per_ip_covers_anonymous_and_bad_tokens(upstream, jwks):
    settings = gateway_settings(upstream.url, jwks.url, rate_limit_ip_per_second=1, rate_limit_ip_burst=2)
    async with running_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as client:
        codes = [(await client.get("/api/v1/identity/me", headers=bearer("x"))).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        assert "retry-after" in (await client.get("/api/v1/catalog/matters")).headers


async def test_upstream_timeout_is_504_within_the_timeout(gateway, key):
    _, base = gateway
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.get("/api/v1/caseflow/slow?seconds=3", headers=bearer(key.token()))
    elapsed = time.monotonic() - started
    assert r.status_code == 504 and r.headers["content-type"] == PROBLEM
    assert elapsed < 1.5  # read timeout 0.5 s


async def test_stopped_upstream_is_503_and_bad_upstream_502(jwks, key):
    dead = f"http://127.0.0.1:{free_port()}"
    settings = gateway_settings(dead, jwks.url)

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"this is not http\r\n\r\n")
        await writer.drain()
        writer.close()

    broken = await asyncio.start_server(reset, "127.0.0.1", 0)
    broken_url = f"http://127.0.0.1:{broken.sockets[0].getsockname()[1]}"
    settings.upstreams["licence"] = broken_url
    from gateway.main import Upstream as UpstreamConfig  # noqa: PLC0415

    async with running_gateway(settings) as (app, base), httpx.AsyncClient(base_url=base) as client:
        app.upstreams["licence"] = UpstreamConfig("licence", broken_url)
        started = time.monotonic()
        r = await client.get("/api/v1/identity/me", headers=bearer(key.token()))
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
        assert r.json()["type"].endswith("/service-unavailable")
        assert time.monotonic() - started < 1.5
        r = await client.get("/api/v1/licence/licences", headers=bearer(key.token()))
        assert r.status_code == 502 and r.headers["content-type"] == PROBLEM
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["identity"].startswith("failed")
    broken.close()


async def test_signed_push_accepted_once_and_refused_otherwise(gateway, upstream):
    _, base = gateway
    path = "/api/v1/express/callbacks/ems"
    body = b'{"waybill":"EA123456785CN","event":"delivered"}'
    now = int(time.time())

    def headers(nonce: str, *, secret: str = PARTNER_SECRET, timestamp: int = now, payload: bytes = body):
        return {
            **signed_headers("ems", secret, "POST", path, payload, nonce=nonce, timestamp=timestamp),
            "Content-Type": "application/json",
        }

    async with httpx.AsyncClient(base_url=base) as client:
        good = headers("n-" + uuid.uuid4().hex)
        r = await client.post(path, content=body, headers=good)
        assert r.status_code == 200
        assert upstream.seen[-1].path == "/callbacks/ems"
        assert upstream.seen[-1].body == body
        assert upstream.seen[-1].headers["X-Partner-Id"] == "ems"
        assert "X-Subject-Id" not in upstream.seen[-1].headers
        count = len(upstream.seen)

        refused = {
            "replay": (good, body),
            "bad signature": (headers("n-" + uuid.uuid4().hex, secret="wrong"), body),
            "tampered body": (headers("n-" + uuid.uuid4().hex), body.replace(b"delivered", b"returned")),
            "stale": (headers("n-" + uuid.uuid4().hex, timestamp=now - 400), body),
            "future": (headers("n-" + uuid.uuid4().hex, timestamp=now + 400), body),
            "unsigned": ({"Content-Type": "application/json"}, body),
            "other partner's path": (
                signed_headers(
                    "dept-4401", DEPT_SECRET, "POST", path, body, nonce="n-" + uuid.uuid4().hex, timestamp=now
                ),
                body,
            ),
        }
        for name, (hdrs, payload) in refused.items():
            r = await client.post(path, content=payload, headers=hdrs)
            assert r.status_code == 401, name
            assert r.headers["content-type"] == PROBLEM, name
        # A token is no substitute for a signature.
        r = await client.post(path, content=body, headers={"Authorization": "Bearer x"})
        assert r.status_code == 401
    assert len(upstream.seen) == count


async def test_department_push_routes_to_caseflow_prefix(gateway, upstream):
    _, base = gateway
    path = "/api/v1/departments/4401/events"
    body = b'{"type":"licence.issued"}'
    async with httpx.AsyncClient(base_url=base) as client:
        hdrs = signed_headers(
            "dept-4401", DEPT_SECRET, "POST", path, body, nonce=uuid.uuid4().hex, timestamp=int(time.time())
        )
        r = await client.post(path, content=body, headers=hdrs)
        assert r.status_code == 200
        other = "/api/v1/departments/4402/events"
        hdrs = signed_headers(
            "dept-4401", DEPT_SECRET, "POST", other, body, nonce=uuid.uuid4().hex, timestamp=int(time.time())
        )
        assert (await client.post(other, content=body, headers=hdrs)).status_code == 401
    assert [s.path for s in upstream.seen] == ["/departments/4401/events"]


async def test_cors_preflight_and_actual_request(gateway, key):
    _, base = gateway
    origin = "https://h5.yiwang.example"
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.options(
            "/api/v1/identity/me",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == origin
        assert "Authorization" in r.headers["access-control-allow-headers"]
        r = await client.options(
            "/api/v1/identity/me", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
        r = await client.get("/api/v1/identity/me", headers={"Origin": origin, **bearer(key.token())})
        assert r.headers["access-control-allow-origin"] == origin
        r = await client.get("/api/v1/identity/me", headers={"Origin": origin})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == origin
        r = await client.get("/api/v1/identity/me", headers={"Origin": "https://evil.example", **bearer(key.token())})
        assert "access-control-allow-origin" not in r.headers


async def test_unknown_kid_flood_fetches_jwks_at_most_once_per_interval(upstream, jwks, key):
    settings = gateway_settings(upstream.url, jwks.url, jwks_min_refetch_seconds=0.5)
    async with running_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as client:
        assert jwks.fetches == 1  # warmed at startup
        strangers = [SigningKey(kid=f"kid-{i}").token() for i in range(40)]
        results = await asyncio.gather(*(client.get("/api/v1/identity/me", headers=bearer(t)) for t in strangers))
        assert {r.status_code for r in results} == {401}
        assert jwks.fetches == 2
        # A known key costs nothing.
        for _ in range(20):
            assert (await client.get("/api/v1/identity/me", headers=bearer(key.token()))).status_code == 200
        assert jwks.fetches == 2
        # A rotated-in key is picked up on its first use once the interval has passed.
        new_key = SigningKey(kid="k2")
        jwks.keys.append(new_key)
        await asyncio.sleep(0.6)
        assert (await client.get("/api/v1/identity/me", headers=bearer(new_key.token()))).status_code == 200
        assert jwks.fetches == 3


async def test_identity_started_after_the_gateway(upstream, key):
    late = JwksServer([key])
    settings = gateway_settings(upstream.url, late.url)
    async with running_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as client:
        await late.start()  # identity comes up after the gateway: the failed warm-up must not block
        try:
            r = await client.get("/api/v1/identity/me", headers=bearer(key.token()))
            assert r.status_code == 200
            assert late.fetches == 1
        finally:
            await late.stop()


async def test_health_ready_metrics(gateway, upstream, key):
    _, base = gateway
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        r = await client.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"]["jwks"] == "ok"
        upstream.ready = False
        assert (await client.get("/readyz")).status_code == 503
        await client.get("/api/v1/identity/me", headers=bearer(key.token()))
        await client.get("/api/v1/identity/me")
        metrics = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/api/v1/identity/**",service="gateway",status="200"} 1.0' in metrics
    assert 'route="/api/v1/identity/**",service="gateway",status="401"' in metrics
    assert "http_request_duration_seconds_bucket" in metrics
    assert 'gateway_refusals_total{reason="no-token"} 1.0' in metrics


async def test_merged_openapi(jwks):
    identity = Upstream(
        {
            "openapi": "3.1.0",
            "info": {"title": "identity", "version": "1"},
            "paths": {
                "/me": {"get": {"operationId": "me", "responses": {"200": {"$ref": "#/components/responses/Me"}}}},
                "/register": {"post": {"operationId": "register", "responses": {}}},
            },
            "components": {
                "schemas": {"Problem": {"type": "object"}, "Item": {"type": "string"}},
                "responses": {
                    "Me": {
                        "description": "me",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}},
                    }
                },
            },
        }
    )
    caseflow = Upstream(
        {
            "openapi": "3.1.0",
            "info": {"title": "caseflow", "version": "1"},
            "paths": {
                "/cases": {
                    "get": {
                        "operationId": "cases",
                        "responses": {
                            "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}
                        },
                    }
                },
                "/departments/{code}/events": {"post": {"operationId": "push", "responses": {}}},
            },
            "components": {"schemas": {"Problem": {"type": "object"}, "Item": {"type": "integer"}}},
        }
    )
    await identity.start()
    await caseflow.start()
    try:
        settings = gateway_settings(identity.url, jwks.url)
        settings.upstreams.clear()
        settings.upstreams.update(
            identity=identity.url,
            caseflow=caseflow.url,
            departments=caseflow.url + "/departments",
            licence=f"http://127.0.0.1:{free_port()}",
        )
        async with running_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as client:
            document = (await client.get("/api/v1/openapi.json")).json()
    finally:
        await identity.stop()
        await caseflow.stop()
    paths = document["paths"]
    assert set(paths) == {
        "/api/v1/identity/me",
        "/api/v1/identity/register",
        "/api/v1/caseflow/cases",
        "/api/v1/departments/{code}/events",
    }
    assert paths["/api/v1/identity/register"]["post"]["security"] == []
    assert paths["/api/v1/identity/me"]["get"]["security"] == [{"bearer": []}]
    assert paths["/api/v1/departments/{code}/events"]["post"]["security"] == [{"partnerSignature": []}]
    assert paths["/api/v1/identity/me"]["get"]["operationId"] == "identity_me"
    schemas = document["components"]["schemas"]
    assert schemas["Problem"] == {"type": "object"}
    assert schemas["Item"] == {"type": "string"} and schemas["caseflow.Item"] == {"type": "integer"}
    ref = paths["/api/v1/caseflow/cases"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/caseflow.Item"
    assert document["info"]["x-unavailable-areas"] == ["licence"]


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_own_endpoints_refuse_writes(gateway, method):
    _, base = gateway
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.request(method, "/healthz")
    assert r.status_code == 405 and r.headers["content-type"] == PROBLEM
