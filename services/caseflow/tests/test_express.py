"""EMS delivery and pickups through caseflow's HTTP API, with express's events arriving over real NATS
(docs/adr/0018-caseflow-delivery.md): each SMS once however often an event is delivered or
re-announced, the case completed on the day of the signature, failures and stuck shipments on the
supervisor's ledger, a pickup asked for once and followed, the originals recorded by the department."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from contracts.events.caseflow import CasePickupRequested
from contracts.events.express import ShipmentCreated, ShipmentDelivered, ShipmentFailed, ShipmentUpdated
from kit.bus import Bus
from kit.deadletter import list_dead_letters
from kit.events import CloudEvent, EventData, envelope
from services.caseflow.models import Notification, SupervisionWarning, inbox, outbox
from services.caseflow.supervision import run_supervision_once
from services.caseflow.tests.conftest import (
    CHINA,
    LI_SI,
    act,
    add_matter,
    keyed,
    matter_definition,
    officer,
    person,
    running_caseflow,
    submit,
)

WAYBILL = "EA123456785CN"  # UPU S10: weights 8 6 4 2 3 5 9 7 over 12345678 give check digit 5
OTHER_WAYBILL = "EB000000013CN"
SUPERVISOR = officer("supervisor", "JCZX")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A carrier's event time in November 2026, Beijing time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=CHINA)


def shipment(model: type[EventData], case_no: str, status: str, when: datetime, *, kind: str = "deliver",
             shipment_id: str = "S-1", waybill: str | None = WAYBILL, **more) -> EventData:  # fmt: skip
    return model(shipment_id=shipment_id, kind=kind, case_no=case_no, department="SCJGJ", carrier="ems",
                 waybill=waybill, status=status, at=when, **more)  # fmt: skip


async def publish(client, nats_url: str, sends: list[tuple[CloudEvent, str]]) -> None:
    """Publish onto EXPRESS as express would (``Nats-Msg-Id`` given per send: a different id is a
    redelivery JetStream does not drop), then wait until caseflow has applied the last one."""
    bus = Bus(nats_url, name="express", streams={"EXPRESS": ["express.>"]})
    await bus.start()
    await bus.wait_connected(10)
    try:
        js = await bus.jetstream()
        for event, msg_id in sends:
            subject = "express.shipment." + event.type.split(".")[3]
            await js.publish(subject, event.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id})
        last = sends[-1][0].id
        for _ in range(300):
            async with client.app.state.sessionmaker() as session:
                seen = (await session.execute(select(inbox.c.event_id).where(inbox.c.event_id == last))).scalar()
            if seen:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the express events were not consumed")
    finally:
        await bus.close()


def sent(data: EventData) -> CloudEvent:
    return envelope(data, source="/yiwang/express", subject=getattr(data, "shipment_id", None))


def once(event: CloudEvent) -> list[tuple[CloudEvent, str]]:
    return [(event, event.id)]


def twice(event: CloudEvent) -> list[tuple[CloudEvent, str]]:
    return [(event, event.id), (event, event.id + "-redelivered")]


async def texts(client, template: str) -> list[str]:
    async with client.app.state.sessionmaker() as session:
        query = select(Notification.text).where(Notification.template == template).order_by(Notification.id)
        return list((await session.execute(query)).scalars())


async def outbox_data(client, kind: str) -> list[dict]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.event_type, outbox.table.c.payload))).all()
    return [json.loads(payload)["data"] for event_type, payload in rows if f".{kind}." in event_type]


async def ledger(client) -> list[tuple[str, str, str]]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(SupervisionWarning.case_no, SupervisionWarning.step,
                                             SupervisionWarning.level).order_by(SupervisionWarning.id))).all()  # fmt: skip
    return [tuple(r) for r in rows]


async def approved_case(client, **changes) -> dict:
    case = await submit(client, **changes)
    for role, action in (("acceptor", "accept"), ("reviewer", "review"), ("decider", "approve"),
                         ("acceptor", "deliver")):  # fmt: skip
        response = await act(client, case, officer(role), action)
        assert response.status_code == 200, response.text
    return response.json()


async def test_the_result_travels_by_ems_and_the_signature_completes_the_case(database_url, nats_server, tmp_path):
    async with running_caseflow(database_url, nats_server.url, tmp_path, consume_express_events=True) as client:
        delivery = {"method": "ems", "recipient": "张三", "phone": "13800138000", "address": "江苏省淮安市清江浦区1号",
                    "division_code": "320812"}  # fmt: skip
        case = await approved_case(client, delivery=delivery)
        number = case["case_no"]
        assert case["state"] == "delivering" and case["deadlines"]["delivery"]["due"] == "2026-11-16"
        [requested] = await outbox_data(client, "delivery_requested")
        assert (requested["division_code"], requested["address"]) == ("320812", "江苏省淮安市清江浦区1号")
        assert await texts(client, "deliver_ems") == [f"您的办件{number}办理结果将由EMS寄递，交寄后短信告知运单号。"]

        client.clock.set(date(2026, 11, 6))  # the events are applied on Friday
        created = sent(shipment(ShipmentCreated, number, "created", at(2, 16)))
        reannounced = sent(shipment(ShipmentCreated, number, "created", at(2, 16)))  # same fact, another event id
        picked = sent(shipment(ShipmentUpdated, number, "picked_up", at(3, 9), carrier_code="10", carrier_text="收寄"))
        out = sent(shipment(ShipmentUpdated, number, "out_for_delivery", at(4, 8), carrier_code="30"))
        out_again = sent(shipment(ShipmentUpdated, number, "out_for_delivery", at(4, 8), carrier_code="30"))
        late = sent(shipment(ShipmentUpdated, number, "in_transit", at(3, 20), carrier_code="20"))  # out of order
        # signed just after midnight Beijing time: still the 4th in UTC, the 5th where the case is
        signed = sent(shipment(ShipmentDelivered, number, "signed_for", at(5, 0, 30), signed_by="张*"))
        await publish(client, nats_server.url, twice(created) + once(reannounced) + once(picked) + twice(out)
                      + once(out_again) + once(late) + twice(signed))  # fmt: skip

        assert await texts(client, "shipment_dispatched") == [f"您的办件{number}办理结果已交寄EMS，运单号{WAYBILL}。"]
        assert await texts(client, "shipment_out_for_delivery") == [
            f"您的办件{number}办理结果（EMS运单号{WAYBILL}）正在派送中，请保持电话畅通。"
        ]
        assert await texts(client, "shipment_signed_for") == [f"您的办件{number}办理结果（EMS运单号{WAYBILL}）已签收。"]
        assert len(await texts(client, "complete")) == 1

        detail = (await client.get(f"/cases/{number}", headers=person())).json()
        assert detail["state"] == "completed" and detail["completed_on"] == "2026-11-05"  # the signature's day
        assert detail["clock_step"] is None and "delivery" not in detail["deadlines"]  # Art. 44's clock closed
        complete = detail["timeline"][-1]
        assert (complete["action"], complete["actor"]) == ("complete", "system")
        assert complete["detail"]["delivery_due"] == "2026-11-16" and complete["detail"]["waybill"] == WAYBILL
        assert complete["detail"]["signed_at"] == "2026-11-05T00:30:00+08:00"
        [shown] = detail["shipments"]
        assert (shown["kind"], shown["shipment_id"], shown["waybill"], shown["status"], shown["final"]) == (
            "deliver", "S-1", WAYBILL, "signed_for", True)  # fmt: skip
        assert detail["pickups"] == []
        lines = [(line["action"], line["detail"].get("superseded", False)) for line in detail["timeline"]
                 if line["action"].startswith("shipment_")]  # fmt: skip
        # every distinct event is a line (redeliveries are not); the late one changed nothing
        assert lines == [("shipment_created", False), ("shipment_created", False), ("shipment_picked_up", False),
                         ("shipment_out_for_delivery", False), ("shipment_out_for_delivery", False),
                         ("shipment_in_transit", True), ("shipment_signed_for", False)]  # fmt: skip

        progress = (await client.get(f"/progress/{number}", params={"code": detail["query_code"]})).json()
        assert progress["shipments"] == [{"kind": "deliver", "waybill": WAYBILL, "status": "signed_for",
                                          "updated_at": shown["updated_at"]}]  # fmt: skip
        assert "清江浦" not in json.dumps(progress, ensure_ascii=False) and "13800138000" not in json.dumps(progress)
        # officers may not complete it a second time
        assert (await act(client, case, officer("acceptor"), "complete")).status_code == 409


async def test_a_failed_delivery_and_a_stuck_one_reach_the_supervisor(database_url, nats_server, tmp_path):
    async with running_caseflow(database_url, nats_server.url, tmp_path, consume_express_events=True) as client:
        failing = (await approved_case(client))["case_no"]
        stuck = (await approved_case(client))["case_no"]
        poison = CloudEvent(id=str(uuid.uuid4()), source="/yiwang/express", type=ShipmentCreated.event_type,
                            time=datetime.now(UTC), data={"shipment_id": "S-X", "case_no": failing})  # fmt: skip
        attempt = sent(shipment(ShipmentFailed, failing, "failed_attempt", at(3, 15), reason="收件人不在", final=False))
        await publish(client, nats_server.url, [
            *once(poison),
            *once(sent(shipment(ShipmentCreated, failing, "created", at(2, 16)))),
            *twice(attempt),
            *once(sent(shipment(ShipmentFailed, failing, "failed_attempt", at(4, 15), reason="收件人不在",
                                final=False))),
            *once(sent(shipment(ShipmentCreated, stuck, "created", at(2, 16), shipment_id="S-2",
                                waybill=OTHER_WAYBILL))),
        ])  # fmt: skip

        # the poison went to the dead letters, naming the contract it broke; nothing was applied for it
        bus = Bus(nats_server.url, name="ops")
        await bus.start()
        await bus.wait_connected(10)
        try:
            letters = [d for d in await list_dead_letters(await bus.jetstream(), limit=1000) if poison.id in d.data]
        finally:
            await bus.close()
        assert len(letters) == 1 and letters[0].consumer == "caseflow-shipments"
        assert "not a ShipmentCreated" in letters[0].error

        # two failed attempts: one anomaly for the case; the case waits for the next round
        assert await ledger(client) == [(failing, "delivery_failed", "anomaly")]
        detail = (await client.get(f"/cases/{failing}", headers=officer("acceptor"))).json()
        assert detail["state"] == "delivering"
        assert (detail["shipments"][0]["status"], detail["shipments"][0]["reason"]) == ("failed_attempt", "收件人不在")
        warnings = (await client.get("/supervision/warnings", headers=SUPERVISOR)).json()["items"]
        assert [(w["case_no"], w["step"], w["level"]) for w in warnings] == [(failing, "delivery_failed", "anomaly")]
        assert WAYBILL in warnings[0]["detail"]

        # the carrier has not picked S-2 up: an anomaly once the configured 24 hours have passed, once
        ctx, sessions = client.app.state.caseflow, client.app.state.sessionmaker
        ordered = at(2, 16).astimezone(UTC)
        assert (await run_supervision_once(sessions, ctx, now=ordered + timedelta(hours=23)))["stuck_shipments"] == 0
        assert (await run_supervision_once(sessions, ctx, now=ordered + timedelta(hours=25)))["stuck_shipments"] == 1
        assert (await run_supervision_once(sessions, ctx, now=ordered + timedelta(hours=49)))["stuck_shipments"] == 0
        assert (stuck, "delivery_stuck", "anomaly") in await ledger(client)
        # the failing one moved on (failed_attempt), so it is not stuck however long it waits
        assert (failing, "delivery_stuck", "anomaly") not in await ledger(client)
        events = [e for e in await outbox_data(client, "warning") if e["level"] == "anomaly"]
        assert sorted((e["case_no"], e["step"]) for e in events) == sorted(
            [(failing, "delivery_failed"), (stuck, "delivery_stuck")])  # fmt: skip


async def test_the_stuck_hours_are_a_setting(database_url, nats_server, tmp_path):
    async with running_caseflow(database_url, nats_server.url, tmp_path, consume_express_events=True,
                                express_stuck_hours=2) as client:  # fmt: skip
        number = (await approved_case(client))["case_no"]
        await publish(client, nats_server.url, once(sent(shipment(ShipmentCreated, number, "created", at(2, 16)))))
        ctx, sessions = client.app.state.caseflow, client.app.state.sessionmaker
        assert (await run_supervision_once(sessions, ctx, now=at(2, 18, 1).astimezone(UTC)))["stuck_shipments"] == 1


PICKUP = {"sender": "张三", "phone": "13800138000", "division_code": "320812", "address": "江苏省淮安市清江浦区1号",
          "items": ["经营场所租赁合同"]}  # fmt: skip


async def test_a_pickup_of_the_originals_is_asked_for_once_followed_and_received(database_url, nats_server, tmp_path):
    async with running_caseflow(database_url, nats_server.url, tmp_path, consume_express_events=True) as client:
        materials = [
            {"name": "居民身份证", "required": True, "forms": ["electronic"], "count": 1,
             "licence_type": "resident_id_card"},
            {"name": "经营场所租赁合同", "required": True, "forms": ["original", "copy"], "count": 1},
        ]  # fmt: skip
        await add_matter(client, matter_definition("SCJG-ORIG", materials=materials))
        case = await submit(client, matter_code="SCJG-ORIG")
        number, url = case["case_no"], f"/cases/{case['case_no']}/pickups"
        assert "request_pickup" in case["allowed_actions"]

        assert (await client.post(url, json=PICKUP, headers=person())).status_code == 428
        wrong = await client.post(url, json={**PICKUP, "items": ["居民身份证"]}, headers=keyed(person()))
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["rule"] == "original_material"
        bad_code = await client.post(url, json={**PICKUP, "division_code": "990812"}, headers=keyed(person()))
        assert bad_code.status_code == 422 and bad_code.json()["errors"][0]["field"].endswith("division_code")
        # another citizen learns nothing of my case
        assert (await client.post(url, json=PICKUP, headers=keyed(person(LI_SI)))).status_code == 404

        headers = {"Idempotency-Key": "pickup-1", **person()}
        first = await client.post(url, json=PICKUP, headers=headers)
        assert first.status_code == 201, first.text
        pickup = first.json()
        assert (pickup["status"], pickup["phone"], pickup["items"]) == (
            "requested",
            "138****8000",
            ["经营场所租赁合同"],
        )
        retry = await client.post(url, json=PICKUP, headers=headers)
        assert retry.status_code == 200 and retry.json()["pickup_id"] == pickup["pickup_id"]
        second = await client.post(url, json=PICKUP, headers=keyed(person()))
        assert second.status_code == 409 and second.json()["type"].endswith("/pickup-open")

        [event] = await outbox_data(client, "pickup_requested")
        asked = CasePickupRequested.model_validate(event)
        assert (asked.case_no, asked.pickup_id, asked.sender, asked.phone, asked.division_code, asked.address,
                asked.items) == (number, pickup["pickup_id"], "张三", "13800138000", "320812", "江苏省淮安市清江浦区1号",
                                 ["经营场所租赁合同"])  # fmt: skip
        assert asked.applicant == case["applicant"]["subject"] and asked.state == "submitted"

        # express made the collect shipment: its events follow the pickup on the case
        created = shipment(ShipmentCreated, number, "created", at(2, 11), kind="collect", shipment_id="C-1")
        picked = shipment(ShipmentUpdated, number, "picked_up", at(2, 15), kind="collect", shipment_id="C-1")
        await publish(client, nats_server.url, twice(sent(created)) + once(sent(picked)))
        detail = (await client.get(f"/cases/{number}", headers=person())).json()
        [shown] = detail["pickups"]
        assert (shown["pickup_id"], shown["shipment_id"], shown["waybill"], shown["status"]) == (
            pickup["pickup_id"], "C-1", WAYBILL, "picked_up")  # fmt: skip
        assert shown["address"] == PICKUP["address"]
        assert [s["shipment_id"] for s in detail["shipments"]] == ["C-1"]
        assert await texts(client, "shipment_dispatched") == []  # a pickup is not the result: no result SMS
        supervisor_view = (await client.get(f"/cases/{number}", headers=SUPERVISOR)).json()["pickups"][0]
        assert "清江浦区1号" not in supervisor_view["address"]

        # the department records the originals: once, the state unchanged, and no pickup after it
        acceptor = officer("acceptor")
        assert "originals_received" in (await client.get(f"/cases/{number}", headers=acceptor)).json()[
            "allowed_actions"]  # fmt: skip
        received = await act(client, case, acceptor, "originals_received")
        assert received.status_code == 200, received.text
        assert received.json()["state"] == "submitted" and received.json()["originals_received_on"] == "2026-11-02"
        assert "originals_received" not in received.json()["allowed_actions"]
        again = await act(client, case, acceptor, "originals_received")
        assert again.status_code == 409 and again.json()["type"].endswith("/originals-received")
        late = await client.post(url, json=PICKUP, headers=keyed(person()))
        assert late.status_code == 409 and late.json()["type"].endswith("/originals-received")
        assert await texts(client, "originals_received") == [f"您的办件{number}的材料原件已收到。"]
        assert (await act(client, case, acceptor, "accept")).json()["state"] == "accepted"


async def test_no_pickup_for_a_matter_without_originals_nor_after_the_decision(caseflow):
    case = await submit(caseflow)  # the demo matter asks for no originals
    assert "request_pickup" not in case["allowed_actions"]
    refused = await caseflow.post(f"/cases/{case['case_no']}/pickups", json=PICKUP, headers=keyed(person()))
    assert refused.status_code == 409 and refused.json()["type"].endswith("/no-originals")
    await add_matter(caseflow, matter_definition("SCJG-ORIG", materials=[
        {"name": "经营场所租赁合同", "required": True, "forms": ["original"], "count": 1}]))  # fmt: skip
    decided = await submit(caseflow, matter_code="SCJG-ORIG",
                           materials=[{"name": "经营场所租赁合同", "blob_id": None, "licence_id": None}])  # fmt: skip
    for role, action in (("acceptor", "accept"), ("decider", "approve")):
        assert (await act(caseflow, decided, officer(role), action)).status_code == 200
    late = await caseflow.post(f"/cases/{decided['case_no']}/pickups", json=PICKUP, headers=keyed(person()))
    assert late.status_code == 409 and late.json()["type"].endswith("/illegal-transition")
