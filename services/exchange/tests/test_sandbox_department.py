"""The department-system sandbox against the real exchange over real sockets: subscribed by the
seed, it verifies webhooks with ``standardwebhooks``, ignores duplicates, goes down and comes
back, and works its cases like the registration centre — signed pushes (checked here with
kit.signing as the gateway checks them) that pass the contract's own models."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contracts.departments import Push
from kit.signing import SignatureRejected, verify_request
from kit.testing import serve
from services.exchange.sandbox_department import SandboxDepartmentSettings, create_app
from services.exchange.seed_outbound import demo_subscription_id, seed_subscriptions
from services.exchange.tests.outbound_fixtures import (
    PLATFORM_ADMIN,
    ZHANG_SAN,
    accepted,
    consume,
    drain,
    exchange_app,
    worker_for,
)

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"make-run-only-bdcdj-webhook-key!").decode()
PARTNER_SECRET = "test-bdcdj-partner-secret"
PUSH_PATH = "/api/v1/departments/BDCDJ/events"
PUSHES = TypeAdapter(Push)


@dataclass
class Gateway:
    """The push endpoint as far as signatures and idempotency go: verifies partner dept-bdcdj,
    answers ``fail_first`` pushes with 503, and a receipt for the rest (``duplicate`` on a repeat)."""

    fail_first: int = 0
    pushes: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: int = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route(PUSH_PATH, self._push, methods=["POST"])])

    async def _push(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            verify_request({"dept-bdcdj": [PARTNER_SECRET]}, method="POST", path=request.url.path,
                           query=request.url.query, headers=request.headers, body=body, now=time.time(),
                           max_age=300)  # fmt: skip
        except SignatureRejected as exc:
            self.rejected.append(exc.reason)
            return JSONResponse({"status": 401}, status_code=401)
        if self.fail_first > 0:
            self.fail_first -= 1
            self.failed += 1
            return JSONResponse({"status": 503}, status_code=503)
        push = PUSHES.validate_json(body)  # the contract's own model: a wrong push fails the test
        duplicate = any(p["event_id"] == push.event_id for p in self.pushes)
        if not duplicate:
            self.pushes.append(json.loads(body))
        return JSONResponse({"receipt_id": f"rc_{len(self.pushes)}", "event_id": push.event_id, "duplicate": duplicate})


@pytest.fixture
async def world(database_url, nats_server):
    """The gateway stand-in, the sandbox pushing to it, and exchange subscribed to the sandbox by its seed."""
    gateway = Gateway()
    async with serve(gateway.app()) as gateway_url:
        settings = SandboxDepartmentSettings(webhook_secret=WEBHOOK_SECRET, partner_secret=PARTNER_SECRET,
                                             push_url=f"{gateway_url}{PUSH_PATH}", step_seconds=0.01,
                                             retry_base_seconds=0.01)  # fmt: skip
        sandbox_app = create_app(settings)
        async with serve(sandbox_app) as sandbox_url, exchange_app(
            database_url, nats_server.url, demo_webhook_secret=WEBHOOK_SECRET,
            demo_webhook_url=f"{sandbox_url}/webhooks",
        ) as client:  # fmt: skip
            async with client.app.state.sessionmaker() as session, session.begin():
                assert await seed_subscriptions(session, client.app.state.exchange) == ["sub_demo_bdcdj"]
            async with httpx.AsyncClient(base_url=sandbox_url) as sandbox_client:
                yield client, sandbox_client, sandbox_app.state.sandbox, gateway


async def test_a_platform_case_is_approved_by_the_department_and_no_certificate_pushed(world):
    exchange, sandbox_client, sandbox, gateway = world
    assert await consume(exchange, accepted("CF-BDC-1"))
    assert await consume(exchange, accepted("CF-GAJ-1", "GAJ"))  # another department's: never sent here
    assert await drain(worker_for(exchange)) == 1
    await sandbox.settle(10)
    received = (await sandbox_client.get("/sandbox/received")).json()["items"]
    assert [(w["type"], w["data"]["case_no"]) for w in received] == [("case.accepted", "CF-BDC-1")]
    # the decision only: the platform's licence service issues the result licence on approval
    assert [(p["type"], p["data"]) for p in gateway.pushes] == [
        ("case.decision", {"case_no": "CF-BDC-1", "action": "approve"}),
    ]  # fmt: skip
    receipts = (await sandbox_client.get("/sandbox/receipts")).json()["items"]
    assert [(r["type"], r["status"], r["answer"]["duplicate"]) for r in receipts] == [("case.decision", 200, False)]
    assert gateway.rejected == []


async def test_bad_signatures_are_refused_and_duplicates_ignored(world):
    exchange, sandbox_client, sandbox, gateway = world
    await consume(exchange, accepted("CF-BDC-2"))
    await drain(worker_for(exchange))
    await sandbox.settle(10)
    body = json.dumps({"type": "case.accepted", "timestamp": "2026-12-01T00:00:00Z", "data": {}})
    for headers in ({}, {"webhook-id": "msg_x", "webhook-timestamp": str(int(time.time())),
                         "webhook-signature": "v1," + base64.b64encode(b"0" * 32).decode()},
                    {"webhook-id": "msg_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"}):  # fmt: skip
        assert (await sandbox_client.post("/webhooks", content=body, headers=headers)).status_code == 401
    # the platform replays the delivery: the same webhook-id, so the sandbox ignores it
    listed = (await exchange.get("/deliveries?department=BDCDJ", headers=PLATFORM_ADMIN)).json()["items"]
    await exchange.post(f"/deliveries/{listed[0]['id']}/replay", headers=PLATFORM_ADMIN)
    await drain(worker_for(exchange))
    await sandbox.settle(10)
    answer = (await sandbox_client.get("/sandbox/received")).json()
    assert len(answer["items"]) == 1 and answer["duplicates"] == 1 and answer["refused"] == 3
    assert len(gateway.pushes) == 1  # no second approval for the replayed webhook


async def test_down_then_back_it_gets_what_it_missed_in_order(world):
    exchange, sandbox_client, sandbox, gateway = world
    assert (await sandbox_client.post("/sandbox/outage", json={"on": True})).json() == {"on": True}
    assert (await sandbox_client.get("/readyz")).status_code == 503
    worker = worker_for(exchange)
    await consume(exchange, accepted("CF-BDC-3"))
    await consume(exchange, accepted("CF-BDC-4"))
    assert await drain(worker) == 2
    listed = (await exchange.get("/deliveries?status=pending", headers=PLATFORM_ADMIN)).json()
    assert {d["last_status_code"] for d in listed["items"]} == {503}
    await sandbox_client.post("/sandbox/outage", json={"on": False})
    exchange.clock.advance(5)
    assert await drain(worker) == 2
    await sandbox.settle(10)
    received = (await sandbox_client.get("/sandbox/received")).json()["items"]
    assert sorted(w["data"]["case_no"] for w in received) == ["CF-BDC-3", "CF-BDC-4"]
    assert sorted(p["event_id"] for p in gateway.pushes) == ["bdcdj-CF-BDC-3-approve", "bdcdj-CF-BDC-4-approve"]


async def test_its_own_case_is_pushed_step_by_step_with_the_certificate(world):
    _, sandbox_client, sandbox, gateway = world
    gateway.fail_first = 1  # the first push meets a gateway that is away: sent again, same event id
    started = await sandbox_client.post("/sandbox/own-cases", json={
        "applicant": ZHANG_SAN, "applicant_kind": "person", "matter_code": "BDCDJ-QR-0001"})  # fmt: skip
    assert started.status_code == 202
    case_id = started.json()["department_case_id"]
    await sandbox.settle(10)
    steps = [(p["type"], p["data"].get("step")) for p in gateway.pushes]
    assert steps == [("case.progress", "received"), ("case.progress", "accepted"), ("case.progress", "approved"),
                     ("licence.issued", None), ("case.progress", "completed")]  # fmt: skip
    assert {p["data"]["department_case_id"] for p in gateway.pushes} == {case_id}
    certificate = gateway.pushes[3]["data"]
    assert (certificate["licence_type"], certificate["holder"], certificate["holder_kind"]) == (
        "real_estate_certificate", ZHANG_SAN, "person",
    )  # fmt: skip
    assert certificate["number"].startswith("鲁(") and "不动产权第" in certificate["number"]
    receipts = (await sandbox_client.get("/sandbox/receipts")).json()["items"]
    assert receipts[0]["attempts"] == 2 and all(r["status"] == 200 for r in receipts)
    bad = await sandbox_client.post("/sandbox/own-cases", json={"applicant": "123", "applicant_kind": "person",
                                                                "matter_code": "BDCDJ-QR-0001"})  # fmt: skip
    assert bad.status_code == 422


async def test_the_seed_is_idempotent_and_follows_the_sandbox_s_address(world):
    exchange, *_ = world
    settings = exchange.app.state.settings
    async with exchange.app.state.sessionmaker() as session, session.begin():
        assert await seed_subscriptions(session, exchange.app.state.exchange) == []
    moved = settings.model_copy(update={"demo_webhook_url": "http://127.0.0.1:1/webhooks"})
    async with exchange.app.state.sessionmaker() as session, session.begin():
        assert await seed_subscriptions(session, replace(exchange.app.state.exchange, settings=moved)) == [
            demo_subscription_id("BDCDJ")
        ]
    shown = (await exchange.get("/subscriptions/sub_demo_bdcdj", headers=PLATFORM_ADMIN)).json()
    assert shown["url"] == "http://127.0.0.1:1/webhooks" and shown["version"] == 2
    bad = settings.model_copy(update={"demo_webhook_secret": SecretStr("not-a-secret")})
    async with exchange.app.state.sessionmaker() as session:
        with pytest.raises(ValueError):
            await seed_subscriptions(session, replace(exchange.app.state.exchange, settings=bad))


def test_the_sandbox_reads_its_platform_toml_variables(monkeypatch):
    for name, value in {"WEBHOOK_SECRET": WEBHOOK_SECRET, "PARTNER_ID": "dept-bdcdj", "PARTNER_SECRET": "s",
                        "DEPARTMENT": "BDCDJ", "PUSH_URL": "http://gw/api/v1/departments/BDCDJ/events",
                        "STEP_SECONDS": "2"}.items():  # fmt: skip
        monkeypatch.setenv(f"BDCDJ_SANDBOX_{name}", value)
    settings = SandboxDepartmentSettings()
    assert (settings.department, settings.step_seconds, settings.webhook_secret.get_secret_value()) == (
        "BDCDJ", 2.0, WEBHOOK_SECRET,
    )  # fmt: skip
    assert asyncio.iscoroutinefunction(create_app(settings).state.sandbox.push)


async def test_a_case_without_an_applicant_is_approved_but_gets_no_certificate(world):
    exchange, _, sandbox, gateway = world
    await consume(exchange, accepted("CF-OLD-1", applicant=None))  # an event from before caseflow named it
    await drain(worker_for(exchange))
    await sandbox.settle(10)
    assert [p["type"] for p in gateway.pushes] == ["case.decision"]
