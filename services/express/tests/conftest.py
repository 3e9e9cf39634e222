"""Express under test: migrated database, own NATS, the app's lifespan, an HTTP client, a clock
the test sets, a carrier the test controls, and tokens signed as identity signs them
(kit.testing.TokenSigner, docs/adr/0002-token-claims.md)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from contracts.events.caseflow import CaseDeliveryRequested, CasePickupRequested
from kit.consumer import EventConsumer
from kit.events import CloudEvent, envelope
from kit.migrate import upgrade
from kit.testing import TokenSigner, bearer
from services.express.adapters.carrier import SandboxCarrier
from services.express.handlers import case_handlers
from services.express.main import create_app
from services.express.models import inbox, outbox
from services.express.settings import Settings

TOKENS = TokenSigner()
ZHANG_SAN = "11010519491231002X"
LI_SI = "110105194912310038"
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def person(subject: str = ZHANG_SAN, **claims: Any) -> dict[str, str]:
    return bearer(TOKENS.token(sub=subject, kind="person", lvl=2, **claims))


def officer(department: str = "SCJGJ", *roles: str) -> dict[str, str]:
    roles = roles or ("acceptor",)
    return bearer(TOKENS.token(sub=f"officer:{department.lower()}", kind="officer", lvl=3, roles=list(roles),
                               dept=department))  # fmt: skip


class TestClock:
    """The app's notion of now; tests move it."""

    def __init__(self) -> None:
        self.value = START

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)

    def __call__(self) -> datetime:
        return self.value


def settings_for(database_url: str, nats_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url, nats_url=nats_url, log_json=False, log_level="WARNING",
        consume_case_events=False, carrier_orders_enabled=False, carrier_secret="test-order-secret",
    )  # fmt: skip
    values.update(changes)
    return Settings(**values)


@pytest.fixture
async def express(database_url, nats_server):
    """An httpx client on a running express app; its carrier is an in-memory SandboxCarrier."""
    await asyncio.to_thread(upgrade, "services.express", database_url)
    carrier = SandboxCarrier(seed=7)
    app = create_app(settings_for(database_url, nats_server.url), key_fetcher=TOKENS.fetch_keys, carrier=carrier)
    async with app.router.lifespan_context(app):
        clock = TestClock()
        app.state.express.now = clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://express") as client:
            client.app = app
            client.clock = clock
            client.carrier = carrier
            yield client


# ---- caseflow's requests, applied the way the JetStream consumer does ------------------------------
def delivery_requested(case_no: str = "CF20261201000001", **changes: Any) -> CloudEvent:
    data: dict[str, Any] = dict(
        case_no=case_no, matter_code="food_business_licence", matter_version=1, department="SCJGJ",
        state="approved", at=START, actor="officer:scjgj", applicant=ZHANG_SAN, recipient="张三", phone="13800138000",
        address="山东省德州市德城区新华路1号", division_code="371402", due=date(2026, 12, 15),
    )  # fmt: skip
    data.update(changes)
    return envelope(CaseDeliveryRequested(**data), subject=case_no)


def pickup_requested(case_no: str = "CF20261201000002", pickup_id: str = "pk_1", **changes: Any) -> CloudEvent:
    data: dict[str, Any] = dict(
        case_no=case_no, matter_code="food_business_licence", matter_version=1, department="SCJGJ",
        state="accepted", at=START, actor=ZHANG_SAN, applicant=ZHANG_SAN, pickup_id=pickup_id, sender="张三",
        phone="13800138000", division_code="371402", address="山东省德州市德城区新华路1号",
        items=["营业执照原件", "身份证原件"],
    )  # fmt: skip
    data.update(changes)
    return envelope(CasePickupRequested(**data), subject=case_no)


async def consume(client: httpx.AsyncClient, event: CloudEvent, durable: str = "express-test") -> bool:
    """Apply one event the way kit.consumer does (inbox row + handler, one transaction)."""
    consumer = EventConsumer(bus=None, sessionmaker=client.app.state.sessionmaker, inbox=inbox,  # type: ignore[arg-type]
                             durable=durable, stream="CASEFLOW", filter_subject="caseflow.case.>", handlers={})  # fmt: skip
    handler = case_handlers(lambda: client.app.state.express)[event.type]
    return await consumer._apply_once(event, handler)


async def published(client: httpx.AsyncClient, kind: str | None = None) -> list[dict[str, Any]]:
    """The payloads in the outbox, oldest first (``kind``: created, updated, delivered, failed)."""
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(
            select(outbox.table.c.event_type, outbox.table.c.payload).order_by(outbox.table.c.id)
        )).all()  # fmt: skip
    return [json.loads(p)["data"] for t, p in rows if kind is None or t.endswith(f".shipment.{kind}.v1")]
