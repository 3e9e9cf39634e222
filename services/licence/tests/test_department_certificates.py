"""Certificates department systems push (forwarded by exchange on exchange.department.licence_issued):
stored as the pushing department's licence and verifiable, or refused naming the rule; once per push,
answered once with licence.push.settled."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import select

from contracts.events.exchange import DepartmentLicenceIssued
from kit.events import CloudEvent, envelope
from kit.migrate import upgrade
from services.licence.cli import seed_demo
from services.licence.handlers import department_licence_handler
from services.licence.main import create_app
from services.licence.models import DepartmentPush, Licence, inbox, outbox
from services.licence.tests import conftest
from services.licence.tests.conftest import ZHANG_SAN, fetch_keys, person, settings_for

PROPERTY = {"location": "德州市德城区新华路1号3单元502室", "unit_number": "371402001001GB00001F00030052",
            "right_type": "国有建设用地使用权/房屋所有权", "usage": "住宅", "area": 98.5}  # fmt: skip


@pytest.fixture
async def licence_with_pushes(database_url, nats_server):
    """The licence app consuming exchange.department.licence_issued from a real NATS."""
    from datetime import date

    await asyncio.to_thread(upgrade, "services.licence", database_url)
    await seed_demo(database_url)
    app = create_app(settings_for(database_url, nats_server.url, consume_department_events=True),
                     key_fetcher=fetch_keys)  # fmt: skip
    async with app.router.lifespan_context(app):
        app.state.licence.now = conftest.TestClock(date(2026, 11, 2))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://licence") as client:
            client.app = app
            client.nats_url = nats_server.url
            yield client


def push(*, department: str = "BDCDJ", push_id: str | None = None, **data: Any) -> DepartmentLicenceIssued:
    values: dict[str, Any] = {
        "licence_type": "real_estate_certificate", "number": f"(2026)DZ{uuid.uuid4().int % 10**9:09d}",
        "holder": ZHANG_SAN, "holder_kind": "person", "holder_name": "张三", "issued_on": "2026-10-30",
        "data": PROPERTY,
    }  # fmt: skip
    values.update(data)
    return DepartmentLicenceIssued.model_validate({
        "push_id": push_id or f"psh_{uuid.uuid4().hex[:20]}", "department": department, "partner": "bdcdj-system",
        "event_id": f"evt-{uuid.uuid4().hex[:12]}", "occurred_at": "2026-10-30T08:00:00+08:00",
        "received_at": "2026-11-02T01:59:00Z", "data": values,
    })  # fmt: skip


async def publish(nats_url: str, *events: CloudEvent) -> None:
    """Publish as exchange does: stream EXCHANGE, Nats-Msg-Id = event id."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        try:
            await js.stream_info("EXCHANGE")
        except NotFoundError:
            await js.add_stream(name="EXCHANGE", subjects=["exchange.>"])
        for event in events:
            await js.publish(DepartmentLicenceIssued.nats_subject, event.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": event.id})  # fmt: skip
    finally:
        await client.close()


async def settled_of(client, push_id: str) -> list[dict[str, Any]]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.payload))).scalars().all()
    events = [json.loads(p) for p in rows]
    return [e["data"] for e in events if e["type"].endswith("push.settled.v1") and e["data"]["push_id"] == push_id]


async def until_settled(client, push_id: str) -> dict[str, Any]:
    """The push's settled answer once the consumer has applied it (a bound on the wait, not a timing)."""
    for _ in range(600):
        found = await settled_of(client, push_id)
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"push {push_id} was not settled")


async def apply(client, event: CloudEvent) -> None:
    """Apply one event as the JetStream consumer does (inbox row + handler, one transaction)."""
    from kit.consumer import EventConsumer

    consumer = EventConsumer(bus=None, sessionmaker=client.app.state.sessionmaker, inbox=inbox,  # type: ignore[arg-type]
                             durable="licence-department-certificates", stream="EXCHANGE",
                             filter_subject="exchange.department.licence_issued", handlers={})  # fmt: skip
    await consumer._apply_once(event, department_licence_handler(lambda: client.app.state.licence))


async def test_a_pushed_certificate_is_the_departments_licence_and_verifies(licence_with_pushes):
    client = licence_with_pushes
    pushed = push()
    await publish(client.nats_url, envelope(pushed, subject=pushed.push_id, source="yiwang/exchange"))
    settled = await until_settled(client, pushed.push_id)
    assert settled["outcome"] == "applied" and settled["problem"] is None
    assert settled["department"] == "BDCDJ" and settled["push_type"] == "licence.issued"
    identifier = settled["licence_id"]
    assert identifier.startswith("1.2.156.3005.2.")
    async with client.app.state.sessionmaker() as session:
        stored = (await session.execute(select(Licence).where(Licence.identifier == identifier))).scalar_one()
    assert (stored.issuer, stored.issuer_name, stored.source) == ("BDCDJ", "德州市不动产登记中心", "department")
    assert stored.number == pushed.data.number and str(stored.issued_on) == "2026-10-30"
    assert stored.valid_until is None and json.loads(stored.data) == PROPERTY
    # online verification by identifier and the number as printed
    online = (
        await client.post("/licences/verify", json={"identifier": identifier, "number": pushed.data.number})
    ).json()
    assert online["status"] == "valid"
    assert online["claims"]["issuer_name"] == "德州市不动产登记中心" and online["claims"]["holder_name"] == "张*"
    # the holder's QR verifies too, and the licence is in the holder's wallet
    mine = (await client.get(f"/licences/{identifier}", headers=person())).json()
    assert mine["source"] == "department" and mine["number"] == pushed.data.number
    qr = (await client.get(f"/licences/{identifier}/qr", headers=person())).json()
    assert (await client.post("/licences/verify", json={"text": qr["text"]})).json()["status"] == "valid"
    # the issued event says where it came from
    async with client.app.state.sessionmaker() as session:
        payloads = [json.loads(p) for p in (await session.execute(select(outbox.table.c.payload))).scalars()]
    [issued] = [p["data"] for p in payloads if p["type"] == "yiwang.licence.licence.issued.v1"]
    assert issued["source"] == "department" and issued["issuer"] == "BDCDJ" and issued["identifier"] == identifier


async def test_redelivered_or_forwarded_again_stores_one_licence_and_settles_once(licence_with_pushes):
    client = licence_with_pushes
    pushed = push(case_no="371400-20261102-0099")
    first = envelope(pushed, subject=pushed.push_id, source="yiwang/exchange")
    again = envelope(pushed, subject=pushed.push_id, source="yiwang/exchange")  # same push, another event id
    marker = push()
    await publish(client.nats_url, first, again, envelope(marker, source="yiwang/exchange"))
    await until_settled(client, marker.push_id)  # in order: the two before it were handled
    await apply(client, first)  # redelivered: the inbox drops it
    await asyncio.gather(apply(client, envelope(pushed, source="yiwang/exchange")),
                         apply(client, envelope(pushed, source="yiwang/exchange")))  # fmt: skip
    async with client.app.state.sessionmaker() as session:
        stored = (await session.execute(select(Licence).where(Licence.number == pushed.data.number))).scalars().all()
        row = await session.get(DepartmentPush, pushed.push_id)
    assert len(stored) == 1 and stored[0].case_no == "371400-20261102-0099"
    assert row is not None and row.outcome == "applied" and row.licence_id == stored[0].id
    [settled] = await settled_of(client, pushed.push_id)
    assert settled["outcome"] == "applied" and settled["case_no"] == "371400-20261102-0099"
    # the same certificate under a new push id: refused, not stored twice
    twin = push(number=pushed.data.number)
    await apply(client, envelope(twin, source="yiwang/exchange"))
    [refused] = await settled_of(client, twin.push_id)
    assert refused["outcome"] == "refused" and refused["problem"]["field"] == "data.number"
    assert refused["problem"]["rule"] == "duplicate"


@pytest.mark.parametrize(
    ("department", "changes", "field", "rule"),
    [
        ("SCJGJ", {}, "data.licence_type", "not_issuer"),  # market regulation does not issue property titles
        ("BDCDJ", {"licence_type": "marriage_certificate"}, "data.licence_type", "not_issuer"),
        ("BDCDJ", {"licence_type": "no_such_type"}, "data.licence_type", "unknown"),
        ("BDCDJ", {"holder": "110105194912310021"}, "data.holder", "checksum"),
        ("BDCDJ", {"holder": "91350100M000100Y43"}, "data.holder", None),  # a credit code is no person's id
        ("BDCDJ", {"data": {**PROPERTY, "area": -1}}, "data.data.area", "exclusiveMinimum"),
        ("BDCDJ", {"data": {**PROPERTY, "floor": 5}}, "data.data.floor", "known_field"),
        ("BDCDJ", {"data": {**PROPERTY, "usage": "住宅\u202e"}}, "data.data.usage", "no_control_characters"),
        ("BDCDJ", {"holder_name": "张\x00三"}, "data.holder_name", "no_control_characters"),
        ("BDCDJ", {"number": "鲁(2026)德州市不动产权第0000001号"}, "data.number", "code"),  # no QR could carry it
        ("BDCDJ", {"valid_until": "2026-01-01"}, "data.valid_until", "before_issued_on"),
    ],
)
async def test_a_push_breaking_a_rule_is_refused_and_stores_nothing(licence_with_pushes, department, changes, field,
                                                                     rule):  # fmt: skip
    client = licence_with_pushes
    pushed = push(department=department, **changes)
    await apply(client, envelope(pushed, source="yiwang/exchange"))
    [settled] = await settled_of(client, pushed.push_id)
    assert settled["outcome"] == "refused" and settled["licence_id"] is None
    problem = settled["problem"]
    assert problem["field"] == field and problem["type"].startswith("https://") and problem["title"]
    if rule is not None:
        assert problem["rule"] == rule
    async with client.app.state.sessionmaker() as session:
        assert (await session.execute(select(Licence).where(Licence.number == pushed.data.number))).first() is None


async def test_a_forward_that_fails_its_model_is_refused_not_poison(licence_with_pushes):
    client = licence_with_pushes
    good = push().model_dump(mode="json")
    broken = {**good, "data": {**good["data"], "issued_on": "2026-02-30", "data": {"x": [[[[[]]]]]}}}
    event = CloudEvent(source="yiwang/exchange", type=DepartmentLicenceIssued.event_type, data=broken)
    await apply(client, event)
    [settled] = await settled_of(client, good["push_id"])
    assert settled["outcome"] == "refused" and settled["problem"]["field"] == "data.issued_on"
