"""Payment under test: migrated database, own NATS, the app served on a real socket, the gateway
sandbox served on another (its notifications come over real HTTP), tokens signed as identity signs
them, and a notification key the tests hold too (to sign notices of their own: forged, late, …)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from contracts.events.caseflow import CaseDenied, CaseFeesDue, CaseRejected, CaseWithdrawn
from kit.consumer import EventConsumer
from kit.events import CloudEvent, envelope
from kit.migrate import upgrade
from kit.signing import new_nonce
from kit.testing import TokenSigner, bearer, serve
from services.payment.domain import signature
from services.payment.handlers import case_handlers
from services.payment.main import create_app
from services.payment.models import inbox, outbox
from services.payment.refunds import RefundWorker
from services.payment.sandbox_gateway import SandboxGatewaySettings
from services.payment.sandbox_gateway import create_app as create_sandbox
from services.payment.settings import Settings

TOKENS = TokenSigner()
ZHANG_SAN = "11010519491231002X"
LI_SI = "110105194912310038"
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
MERCHANT_SECRET = "test-merchant-secret"
RECEIPT_KEY = "test-receipt-key"
SERIAL = "test-1"
GATEWAY_KEY = Ed25519PrivateKey.generate()  # the sandbox signs with it; payment holds the public half


def person(subject: str = ZHANG_SAN, **claims: Any) -> dict[str, str]:
    return bearer(TOKENS.token(sub=subject, kind="person", lvl=2, **claims))


def officer(department: str = "SCJGJ", *roles: str) -> dict[str, str]:
    return bearer(TOKENS.officer_token(department.lower(), roles=roles or ("acceptor",), department=department))


def settings_for(database_url: str, nats_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url, nats_url=nats_url, log_json=False, log_level="WARNING", consume_case_events=False,
        refunds_enabled=False, merchant_secret=MERCHANT_SECRET, receipt_key=RECEIPT_KEY,
        provider_keys={SERIAL: signature.public_text(GATEWAY_KEY)},
        departments={"SCJGJ": "德州市市场监督管理局"},
    )  # fmt: skip
    values.update(changes)
    return Settings(**values)


def sandbox_settings(**changes: Any) -> SandboxGatewaySettings:
    values: dict[str, Any] = dict(
        seed=11, merchant_secret=MERCHANT_SECRET, signing_key=signature.private_text(GATEWAY_KEY), key_serial=SERIAL,
        notify_url="http://127.0.0.1:9/unused", delay_seconds=0.01, duplicate_rate=0.0, refund_delay_seconds=0.01,
        retry_base_seconds=0.02, retry_max_seconds=0.2, notify_max_attempts=10,
    )  # fmt: skip
    values.update(changes)
    return SandboxGatewaySettings(**values)


class Platform:
    """The client on payment (a real socket) and handles on what the tests look at."""

    def __init__(self, client: httpx.AsyncClient, app: Any, sandbox_app: Any, sandbox_url: str) -> None:
        self.client, self.app, self.sandbox_app, self.sandbox_url = client, app, sandbox_app, sandbox_url
        self.sandbox = sandbox_app.state.sandbox
        self.worker = RefundWorker(app.state.sessionmaker, app.state.payment.gateway, app.state.payment.settings)

    async def settle(self, timeout: float = 20) -> None:
        await self.sandbox.settle(timeout)

    async def refunds(self) -> int:
        """Let the refund worker ask the gateway, then the gateway notify: how many were asked."""
        asked = await self.worker.run_once()
        await self.settle()
        return asked


def build_fixture(**sandbox_changes: Any):
    async def fixture(database_url, nats_server):
        await asyncio.to_thread(upgrade, "services.payment", database_url)
        sandbox_app = create_sandbox(sandbox_settings(**sandbox_changes))
        async with serve(sandbox_app) as sandbox_url:
            sandbox_app.state.sandbox.settings.public_url = sandbox_url  # the cashier's address, known now
            settings = settings_for(database_url, nats_server.url, gateway_url=sandbox_url)
            app = create_app(settings, key_fetcher=TOKENS.fetch_keys)
            async with app.router.lifespan_context(app), serve(app, lifespan="off") as url:
                settings.notify_url = f"{url}/notifications/sandbox"
                async with httpx.AsyncClient(base_url=url, timeout=20) as client:
                    yield Platform(client, app, sandbox_app, sandbox_url)

    return fixture


payment = pytest.fixture(build_fixture())
payment_duplicating = pytest.fixture(build_fixture(duplicate_rate=1.0))


# ---- caseflow's events, applied the way the JetStream consumer does ------------------------------
def _case(case_no: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = dict(case_no=case_no, matter_code="food_business_licence", matter_version=1,
                                department="SCJGJ", state="submitted", at=START, actor="applicant")  # fmt: skip
    data.update(changes)
    return data


def fees_due(case_no: str = "CF20261201000001", *, revision: int = 1, items: list[tuple[str, int]] | None = None,
             refund_on: tuple[str, ...] = ("withdrawn", "rejected", "denied"), **changes: Any) -> CloudEvent:  # fmt: skip
    items = items if items is not None else [("食品经营许可证工本费", 1000), ("检验检测费", 2550)]
    data = _case(case_no, applicant=changes.pop("applicant", ZHANG_SAN), due_before="acceptance",
                 items=[{"item": i, "amount_fen": a, "basis": None} for i, a in items],
                 total_fen=sum(a for _, a in items), refund_on=list(refund_on), revision=revision, **changes)  # fmt: skip
    return envelope(CaseFeesDue(**data), subject=case_no)


def ended(kind: str, case_no: str = "CF20261201000001") -> CloudEvent:
    if kind == "withdrawn":
        return envelope(CaseWithdrawn(**_case(case_no, state="withdrawn")), subject=case_no)
    model = {"rejected": CaseRejected, "denied": CaseDenied}[kind]
    return envelope(model(**_case(case_no, state=kind), reason="材料不符合法定形式"), subject=case_no)


async def consume(platform: Platform, event: CloudEvent, durable: str = "payment-test") -> bool:
    consumer = EventConsumer(bus=None, sessionmaker=platform.app.state.sessionmaker, inbox=inbox,  # type: ignore[arg-type]
                             durable=durable, stream="CASEFLOW", filter_subject="caseflow.case.>", handlers={})  # fmt: skip
    handler = case_handlers(lambda: platform.app.state.payment)[event.type]
    return await consumer._apply_once(event, handler)


async def published(platform: Platform, kind: str | None = None) -> list[dict[str, Any]]:
    """The payloads in the outbox, oldest first (``kind``: paid, refunded)."""
    async with platform.app.state.sessionmaker() as session:
        rows = (await session.execute(
            select(outbox.table.c.event_type, outbox.table.c.payload).order_by(outbox.table.c.id)
        )).all()  # fmt: skip
    return [json.loads(p)["data"] for t, p in rows if kind is None or t.endswith(f".order.{kind}.v1")]


async def count(platform: Platform, model: Any) -> int:
    async with platform.app.state.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def the_order(platform: Platform, case_no: str = "CF20261201000001", headers=None) -> dict[str, Any]:
    response = await platform.client.get("/orders", params={"case_no": case_no}, headers=headers or person())
    assert response.status_code == 200, response.text
    (order,) = response.json()["items"]
    detail = await platform.client.get(f"/orders/{order['id']}", headers=headers or person())
    assert detail.status_code == 200, detail.text
    return detail.json()


async def start_payment(platform: Platform, order_id: str, key: str = "k-1") -> dict[str, Any]:
    response = await platform.client.post(f"/orders/{order_id}/payments", headers={**person(), "Idempotency-Key": key})
    assert response.status_code in {200, 201}, response.text
    return response.json()


async def cashier(platform: Platform, pay_url: str, result: str = "success", **extra: Any) -> dict[str, Any]:
    """What the payer's client does at the gateway's cashier (pay_url, a real socket)."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(pay_url, json={"result": result, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def notice_body(event_type: str = "TRANSACTION.SUCCESS", *, notice_id: str | None = None, **resource: Any) -> bytes:
    body = {"id": notice_id or new_nonce(), "create_time": "2026-12-01T10:00:00+08:00", "event_type": event_type,
            "resource": resource}  # fmt: skip
    return json.dumps(body, ensure_ascii=False).encode()


async def notify(platform: Platform, body: bytes, *, key=GATEWAY_KEY, serial: str = SERIAL,
                 timestamp: int | None = None, nonce: str | None = None,
                 headers: dict[str, str] | None = None) -> httpx.Response:  # fmt: skip
    """A notification as the gateway posts it, signed with ``key`` (the tests' own gateway key)."""
    signed = signature.signed_headers(key, serial, body, timestamp=timestamp or int(time.time()),
                                      nonce=nonce or new_nonce())  # fmt: skip
    return await platform.client.post("/notifications/sandbox", content=body,
                                      headers={"Content-Type": "application/json", **signed, **(headers or {})})  # fmt: skip
