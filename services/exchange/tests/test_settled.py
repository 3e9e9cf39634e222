"""caseflow's and licence's answers to forwarded pushes: recorded on the push, queued as a
push.settled webhook to the department (in order with the case's own webhooks), once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from contracts.events.caseflow import CasePushSettled
from contracts.events.licence import LicencePushSettled
from kit.bus import Bus
from kit.events import envelope
from kit.migrate import upgrade
from services.exchange import deliveries
from services.exchange.main import create_app
from services.exchange.models import InboundPush
from services.exchange.tests.conftest import (
    PLATFORM_ADMIN,
    TOKENS,
    make_partner,
    officer,
    push,
    push_body,
    settings_for,
)

AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def enqueued(monkeypatch) -> list[dict[str, Any]]:
    """What exchange asked the outbound half to deliver (deliveries.enqueue is that half's)."""
    calls: list[dict[str, Any]] = []

    async def record(session, **kwargs: Any) -> int:
        calls.append(kwargs)
        return 1

    monkeypatch.setattr(deliveries, "enqueue", record)
    return calls


@pytest.fixture
async def consuming(database_url, nats_server, tmp_path):
    """Exchange with its push.settled consumers running on the real NATS."""
    await asyncio.to_thread(upgrade, "services.exchange", database_url)
    settings = settings_for(database_url, nats_server.url, str(tmp_path / "k.json"), consume_settled_events=True)
    app = create_app(settings, key_fetcher=TOKENS.fetch_keys)
    # The streams the consumers read must exist: caseflow and licence declare them when they start.
    bus = Bus(nats_server.url, name="publisher", streams={"CASEFLOW": ["caseflow.>"], "LICENCE": ["licence.>"]})
    await bus.start()
    await bus.wait_connected(10)
    await bus.jetstream()
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://exchange") as client:
                client.app = app  # type: ignore[attr-defined]
                client.bus = bus  # type: ignore[attr-defined]
                yield client
    finally:
        await bus.close()


async def settled_row(client, push_id: str) -> InboundPush:
    async with client.app.state.sessionmaker() as session:
        return (await session.scalars(select(InboundPush).where(InboundPush.id == push_id))).one()


async def wait_settled(client, push_id: str) -> InboundPush:
    for _ in range(300):
        row = await settled_row(client, push_id)
        if row.status != "received":
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("the push was not settled")


async def test_a_refused_decision_and_a_stored_licence_are_recorded_and_sent_once(consuming, enqueued):
    _, secret = await make_partner(consuming)
    decision = (await push(consuming, secret, push_body("ev-1"))).json()
    licence_body = push_body("ev-2", type="licence.issued", data={
        "licence_type": "real_estate_certificate", "number": "鲁(2026)德州市不动产权第0000001号",
        "holder": "11010519491231002X", "holder_kind": "person", "holder_name": "张三", "issued_on": "2026-12-01",
    })  # fmt: skip
    licence = (await push(consuming, secret, licence_body)).json()
    refused = CasePushSettled(
        push_id=decision["receipt_id"], department="BDCDJ", event_id="ev-1", push_type="case.decision",
        outcome="refused", problem={"type": "https://yiwang.example/problems/transition", "title": "Not allowed",
                                    "field": "data.action", "rule": "transition"},
        case_no="CF20261201000001", at=AT,
    )  # fmt: skip
    stored = LicencePushSettled(push_id=licence["receipt_id"], department="BDCDJ", event_id="ev-2",
                                push_type="licence.issued", outcome="applied", licence_id="lic_1", at=AT)  # fmt: skip
    js = await consuming.bus.jetstream()
    for data in (refused, stored, refused):  # the last one: caseflow's redelivery
        event = envelope(data, subject=data.push_id)
        await js.publish(data.nats_subject, event.model_dump_json().encode(), headers={"Nats-Msg-Id": event.id})
    row = await wait_settled(consuming, decision["receipt_id"])
    assert (row.status, row.case_no) == ("refused", "CF20261201000001")
    row = await wait_settled(consuming, licence["receipt_id"])
    assert (row.status, row.licence_id, row.case_no) == ("applied", "lic_1", None)
    await asyncio.sleep(0.3)  # the redelivery had its chance
    assert sorted((c["source_id"], c["ordering_key"]) for c in enqueued) == sorted([
        (f"settled:{decision['receipt_id']}", "case:CF20261201000001"),
        (f"settled:{licence['receipt_id']}", f"push:{licence['receipt_id']}"),
    ])  # fmt: skip
    sent = next(c for c in enqueued if c["ordering_key"].startswith("case:"))
    assert sent["type"] == "push.settled" and sent["department"] == "BDCDJ"
    assert sent["data"]["outcome"] == "refused" and sent["data"]["problem"]["rule"] == "transition"
    listed = await consuming.get("/pushes?status=refused", headers=officer("BDCDJ", "admin"))
    assert [p["event_id"] for p in listed.json()["items"]] == ["ev-1"]
    assert listed.json()["items"][0]["outcome"]["problem"]["rule"] == "transition"
    assert (await consuming.get("/pushes?department=BDCDJ", headers=officer("SCJGJ", "admin"))).status_code == 403
    other = await consuming.get(f"/pushes/{decision['receipt_id']}", headers=officer("SCJGJ", "admin"))
    assert other.status_code == 404
    assert (await consuming.get("/pushes", headers=PLATFORM_ADMIN)).json()["total"] == 2


async def test_an_answer_for_an_unknown_push_changes_nothing(exchange, enqueued):
    from services.exchange import pushes

    data = CasePushSettled(push_id="rcp_" + "0" * 32, department="BDCDJ", event_id="ev-9",
                           push_type="case.decision", outcome="applied", at=AT)  # fmt: skip
    async with exchange.app.state.sessionmaker() as session:
        assert await pushes.settle(session, data) is False
    assert enqueued == []
