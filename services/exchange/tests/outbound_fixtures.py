"""The outbound half under test (imported by its test modules, so the inbound half's conftest stays
its own): a migrated database, own NATS, the app's lifespan, an HTTP client, a clock the test
moves, a delivery worker the test turns by hand, real receiving endpoints under uvicorn on
loopback sockets that verify what they get with the ``standardwebhooks`` library, and tokens
signed as identity signs them."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.events.caseflow import (
    CaseAccepted,
    CaseBranchAssigned,
    CaseResubmitted,
    CaseSubmitted,
    CaseWithdrawn,
)
from kit.consumer import EventConsumer
from kit.events import CloudEvent, envelope
from kit.migrate import upgrade
from services.exchange.case_events import case_handlers
from services.exchange.delivery_worker import DeliveryWorker
from services.exchange.main import create_app
from services.exchange.models import inbox
from services.exchange.seed_outbound import DEMO_EVENT_TYPES
from services.exchange.settings import Settings

# One set of tokens, keys and callers for both halves' tests.
from services.exchange.tests.conftest import PLATFORM_ADMIN, SECRETS_KEY, TOKENS, ZHANG_SAN, officer

START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
ALL_TYPES = DEMO_EVENT_TYPES  # every webhook type


BDCDJ_ADMIN = officer("BDCDJ", "admin")
SWJ_ADMIN = officer("SWJ", "admin")


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
        database_url=database_url, nats_url=nats_url, log_json=False, log_level="WARNING", sandbox=True,
        consume_case_events=False, deliveries_enabled=False, secrets_key=SECRETS_KEY,
        retry_schedule_seconds=[5, 300, 1800], retry_jitter=0.0, delivery_timeout_seconds=5,
    )  # fmt: skip
    values.update(changes)
    return Settings(**values)


@asynccontextmanager
async def exchange_app(database_url: str, nats_url: str, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on a running exchange app (``client.app``, ``client.clock``)."""
    await asyncio.to_thread(upgrade, "services.exchange", database_url)
    app = create_app(settings_for(database_url, nats_url, **changes), key_fetcher=TOKENS.fetch_keys)
    async with app.router.lifespan_context(app):
        clock = TestClock()
        app.state.exchange.now = clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as client:
            client.app = app  # type: ignore[attr-defined]
            client.clock = clock  # type: ignore[attr-defined]
            client.workers = []  # type: ignore[attr-defined]
            try:
                yield client
            finally:
                for worker in client.workers:  # type: ignore[attr-defined]
                    await worker.aclose()


def worker_for(client: httpx.AsyncClient, **changes: Any) -> DeliveryWorker:
    """A delivery worker on the test's clock, turned by ``run_once`` (no background loop)."""
    app = client.app  # type: ignore[attr-defined]
    settings = app.state.settings.model_copy(update=changes) if changes else app.state.settings
    ctx = app.state.exchange
    worker = DeliveryWorker(app.state.sessionmaker, settings, box=ctx.box, clock=client.clock)  # type: ignore[attr-defined]
    client.workers.append(worker)  # type: ignore[attr-defined]
    return worker


async def drain(worker: DeliveryWorker, rounds: int = 50) -> int:
    """Run rounds until one claims nothing; how many deliveries were tried."""
    tried = 0
    for _ in range(rounds):
        claimed = await worker.run_once()
        if not claimed:
            return tried
        tried += claimed
    raise AssertionError("the worker kept finding work")


async def subscribe(client: httpx.AsyncClient, url: str, department: str = "BDCDJ", *,
                    types: list[str] | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    response = await client.post("/subscriptions", json={"department": department, "url": url,
                                                         "event_types": types or ALL_TYPES},
                                 headers=headers or PLATFORM_ADMIN)  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()


# ---- caseflow's events, applied the way the JetStream consumer does --------------------------------
def _case(case_no: str, department: str, state: str, at: datetime, actor: str = "officer:bdcdj") -> dict[str, Any]:
    return dict(case_no=case_no, matter_code="BDCDJ-QR-0002", matter_version=1, department=department, state=state,
                at=at, actor=actor)  # fmt: skip


def submitted(
    case_no: str, department: str = "BDCDJ", at: datetime = START, actor: str = "officer:bdcdj"
) -> CloudEvent:
    data = CaseSubmitted(**_case(case_no, department, "submitted", at, actor), applicant=ZHANG_SAN, delivery="window",
                         received_on=date(2026, 12, 1))  # fmt: skip
    return envelope(data, subject=case_no)


def accepted(case_no: str, department: str = "BDCDJ", branches: list[str] | None = None, at: datetime = START,
             applicant: str | None = ZHANG_SAN, actor: str = "officer:bdcdj") -> CloudEvent:  # fmt: skip
    data = CaseAccepted(**_case(case_no, department, "accepted", at, actor), accepted_on=date(2026, 12, 1), deemed=False,
                        applicant=applicant, branches=branches or [])  # fmt: skip
    return envelope(data, subject=case_no)


def branch_assigned(case_no: str, branch: str, department: str = "BDCDJ", at: datetime = START) -> CloudEvent:
    data = CaseBranchAssigned(**_case(case_no, department, "accepted", at), branch_department=branch,
                              applicant=ZHANG_SAN, due_on=date(2026, 12, 10))  # fmt: skip
    return envelope(data, subject=case_no)


def resubmitted(case_no: str, department: str = "BDCDJ", at: datetime = START) -> CloudEvent:
    return envelope(CaseResubmitted(**_case(case_no, department, "resubmitted", at)), subject=case_no)


def withdrawn(case_no: str, department: str = "BDCDJ", at: datetime = START) -> CloudEvent:
    return envelope(CaseWithdrawn(**_case(case_no, department, "withdrawn", at)), subject=case_no)


async def consume(client: httpx.AsyncClient, event: CloudEvent, durable: str = "exchange-case-events") -> bool:
    """Apply one event the way kit.consumer does (inbox row + handler, one transaction)."""
    consumer = EventConsumer(bus=None, sessionmaker=client.app.state.sessionmaker, inbox=inbox,  # type: ignore[arg-type,attr-defined]
                             durable=durable, stream="CASEFLOW", filter_subject="caseflow.case.>", handlers={})  # fmt: skip
    return await consumer._apply_once(event, case_handlers()[event.type])


# ---- real sockets --------------------------------------------------------------------------------


def free_port_url() -> str:
    """A loopback URL where nothing listens (the connection is refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/webhooks"


@dataclass
class Receiver:
    """A department system's webhook endpoint: verifies every POST with the ``standardwebhooks``
    library and the subscription's secret, answers 503 while ``down``, records what it accepted
    (in arrival order) and what it refused."""

    secret: str = ""
    down: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: int = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/webhooks", self._webhook, methods=["POST"])])

    async def _webhook(self, request: Request) -> Response:
        body = await request.body()
        try:
            payload = StandardWebhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            self.refused.append(str(exc))
            return JSONResponse({"error": "signature"}, status_code=401)
        if self.down:
            self.failed += 1
            return JSONResponse({"error": "down"}, status_code=503)
        self.received.append(payload)
        self.ids.append(request.headers["webhook-id"])
        self.headers.append(dict(request.headers))
        return JSONResponse({"ok": True})

    def of_case(self, case_no: str) -> list[tuple[str, int]]:
        return [(w["type"], w["data"]["sequence"]) for w in self.received if w["data"].get("case_no") == case_no]


def payload_of(delivery: dict[str, Any]) -> dict[str, Any]:
    return json.loads(delivery["payload"]) if isinstance(delivery.get("payload"), str) else delivery["payload"]
