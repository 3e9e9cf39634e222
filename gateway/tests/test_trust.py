"""Issue 9 at the gateway: revoked tokens refused within seconds, one X-Request-Id, identity
headers stripped whatever their spelling, public problem documents, the offline docs page, masked
access logs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts.events.identity import TokensRevoked
from gateway.tests.conftest import PERSON_ID, gateway_settings, running_gateway
from kit.bus import Bus
from kit.events import envelope
from kit.natsd import NatsServer

PROBLEM = "application/problem+json"
AGENT = "110101199003070017"
ENTERPRISE = "91350100M000100Y43"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def publish_revocation(url: str, **fields) -> None:
    """As identity's relay publishes it: a CloudEvent on identity's stream."""
    now = datetime.now(UTC)
    data = TokensRevoked(issued_before=now, until=now + timedelta(seconds=600), **fields)
    event = envelope(data, source="/yiwang/identity", subject=data.session_id or data.subject)
    identity = Bus(url, name="identity", streams={"IDENTITY": ["identity.>"]}, dead_letters=False)
    await identity.start()
    try:
        await identity.wait_connected(5)
        js = await identity.jetstream()
        await js.publish(TokensRevoked.nats_subject, event.model_dump_json().encode())
    finally:
        await identity.close()


@pytest.fixture
def own_nats(tmp_path):
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


async def first_refusal(client: httpx.AsyncClient, path: str, token: str, limit: float) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    while True:
        response = await client.get(path, headers=bearer(token))
        elapsed = time.monotonic() - started
        if response.status_code != 200 or elapsed > limit:
            return response, elapsed
        await asyncio.sleep(0.05)


async def test_revoked_session_and_mandate_get_401_at_an_upstream_route_within_2_s(upstream, jwks, key, own_nats):
    await publish_revocation(own_nats.url, reason="logout", session_id="s-earlier")  # identity has its stream
    settings = gateway_settings(upstream.url, jwks.url, nats_enabled=True, nats_url=own_nats.url)
    session_token = key.token(sid="s-logout")
    act_as = key.token(sub=ENTERPRISE, kind="enterprise", act={"sub": AGENT}, sid="s-agent")
    other_agent = key.token(sub=ENTERPRISE, kind="enterprise", act={"sub": PERSON_ID}, sid="s-other")
    async with running_gateway(settings) as (app, base), httpx.AsyncClient(base_url=base) as client:
        deadline = time.monotonic() + 5
        while (await client.get("/readyz")).json()["checks"]["revocations"] != "ok":
            assert time.monotonic() < deadline, "revocations never read"
            await asyncio.sleep(0.05)
        for token in (session_token, act_as, other_agent):  # all valid and cached by the gateway
            assert (await client.get("/api/v1/caseflow/cases", headers=bearer(token))).status_code == 200

        await publish_revocation(own_nats.url, reason="logout", session_id="s-logout")
        response, elapsed = await first_refusal(client, "/api/v1/caseflow/cases", session_token, 2.0)
        assert response.status_code == 401 and elapsed < 2.0
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["type"].endswith("/token-revoked") and body["reason"] == "logout"
        assert body["instance"] == "/api/v1/caseflow/cases" and body["request_id"] == response.headers["x-request-id"]

        await publish_revocation(own_nats.url, reason="mandate_revoked", subject=ENTERPRISE, actor=AGENT)
        response, elapsed = await first_refusal(client, "/api/v1/caseflow/cases", act_as, 2.0)
        assert response.status_code == 401 and elapsed < 2.0
        assert response.json()["reason"] == "mandate_revoked"
        # Another agent of the same enterprise keeps working.
        assert (await client.get("/api/v1/caseflow/cases", headers=bearer(other_agent))).status_code == 200
        # A revoked token on a public route is treated as no token (no identity headers upstream).
        assert (await client.get("/api/v1/catalog/matters", headers=bearer(session_token))).status_code == 200
        assert "X-Subject-Id" not in upstream.seen[-1].headers
        # A refused request never reaches the service.
        seen = len(upstream.seen)
        for token in (session_token, act_as):
            assert (await client.get("/api/v1/caseflow/cases", headers=bearer(token))).status_code == 401
        assert len(upstream.seen) == seen
        metrics = (await client.get("/metrics")).text
        assert "token_revocation_feed_up 1.0" in metrics
        assert 'gateway_refusals_total{reason="revoked-token"} 4.0' in metrics


async def test_exactly_one_request_id_on_proxied_and_own_responses(gateway):
    _, base = gateway
    async with httpx.AsyncClient(base_url=base) as client:
        for path in ("/api/v1/catalog/matters", "/api/v1/catalog/problem/x", "/healthz", "/api/v1/nowhere"):
            response = await client.get(path, headers={"X-Request-Id": "req-1"})
            assert response.headers.get_list("x-request-id") == ["req-1"], path


@pytest.mark.parametrize(
    "name",
    [
        "X-Subject-Id",
        "x_subject_id",
        "X_Subject_Id",
        "X_SUBJECT_ID",
        "x-subject_id",
        "X-Subject-Level",
        "X_Subject_Kind",
        "X-Roles",
        "X_Roles",
        "x_dept",
        "X-Actor-Id",
        "X_Actor_Id",
        "X_Partner_Id",
        "X_Forwarded_For",
    ],
)
async def test_identity_headers_are_stripped_whatever_their_spelling(gateway, upstream, key, name):
    _, base = gateway
    # Raw HTTP: clients and proxies differ in what they let through; the gateway must not.
    port = int(base.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"GET /api/v1/identity/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key.token()}\r\n"
        f"{name}: forged-value\r\nConnection: close\r\n\r\n"
    )
    writer.write(request.encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    forwarded = {k.lower(): v for k, v in upstream.seen[-1].headers.items()}
    assert "forged-value" not in forwarded.values()
    assert forwarded["x-subject-id"] == PERSON_ID


async def test_upstream_problem_gets_the_public_path_and_the_request_id(gateway, key):
    _, base = gateway
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.get(
            "/api/v1/caseflow/problem/C1?x=1", headers={**bearer(key.token()), "X-Request-Id": "r-9"}
        )
    assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["instance"] == "/api/v1/caseflow/problem/C1"
    assert body["request_id"] == "r-9"
    assert int(response.headers["content-length"]) == len(response.content)


async def test_docs_page_serves_swagger_ui_without_internet(gateway):
    _, base = gateway
    async with httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "http" not in page.text.replace("http-equiv", "")  # nothing from another host
        assert "script-src 'self'" in page.headers["content-security-policy"]
        for asset in ("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js", "/docs/favicon.png"):
            response = await client.get(asset)
            assert response.status_code == 200 and len(response.content) > 100, asset
        bundle = (await client.get("/docs/swagger-ui-bundle.js")).text
        assert "isOAS31" in bundle  # a Swagger UI that renders OpenAPI 3.1, the merged document's version
        assert "/api/v1/openapi.json" in (await client.get("/docs/init.js")).text
        assert (await client.get("/docs/nothing.js")).status_code == 404
        assert (await client.post("/docs")).status_code == 405


async def test_access_log_masks_codes_tokens_ids_and_mobiles(upstream, jwks, key, capsys):
    import uvicorn

    from gateway.main import Gateway
    from kit.natsd import free_port

    settings = gateway_settings(upstream.url, jwks.url, log_json=True)
    app = Gateway(settings, configure_logs=True)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, access_log=True, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done()
        await asyncio.sleep(0.01)
    token = key.token()
    secrets = ("QK7M2XPA", "13800138000", "11010519491231002X", token, "rt_Zm9vYmFy")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await client.get("/api/v1/caseflow/progress/C20261130000001?code=QK7M2XPA&mobile=13800138000")
            await client.get(f"/api/v1/identity/enterprises/11010519491231002X?access_token={token}")
            await client.post("/api/v1/identity/sessions/refresh?refresh_token=rt_Zm9vYmFy", json={})
            # A path the gateway itself refuses logs its warning too.
            await client.get("/api/v1/caseflow/slow?seconds=2&code=QK7M2XPA", headers=bearer(token))
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    output = capsys.readouterr().err
    assert "/api/v1/caseflow/progress/C20261130000001?code=[masked]" in output  # the access log was captured
    for secret in secrets:
        assert secret not in output, secret


def test_underscore_spelling_is_refused_by_the_drop_rule():
    from gateway.proxy import is_dropped_request_header

    for name in (b"x_subject_id", b"X_Subject_Level", b"x-roles", b"X_ROLES", b"x_actor_id", b"x_dept"):
        assert is_dropped_request_header(name), name
    for name in (b"content-type", b"idempotency-key", b"if-match", b"x_custom_thing"):
        assert not is_dropped_request_header(name), name


async def test_without_a_nats_url_the_gateway_says_it_cannot_refuse_revoked_tokens(upstream, jwks, caplog):
    settings = gateway_settings(upstream.url, jwks.url, nats_enabled=True, nats_url="")
    async with running_gateway(settings) as (app, base), httpx.AsyncClient(base_url=base) as client:
        assert app.revocation_feed is None  # never a guessed server
        assert "revocations" not in (await client.get("/readyz")).json()["checks"]
        assert "token_revocation_feed_up 0.0" in (await client.get("/metrics")).text
    assert any("GATEWAY_NATS_URL is not set" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
