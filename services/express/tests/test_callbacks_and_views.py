"""EMS callbacks (partner only, S10, unknown waybill, duplicates, reordering, never backwards) and
who sees which shipment how (own, department, supervisor masked, others 404)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.express.models import Shipment
from services.express.orders import OrderWorker
from services.express.tests.conftest import LI_SI, consume, delivery_requested, officer, person, published

EMS = {"X-Partner-Id": "ems"}
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def booked(client, **changes) -> Shipment:
    await consume(client, delivery_requested(**changes))
    settings = client.app.state.express.settings
    await OrderWorker(client.app.state.sessionmaker, client.carrier, settings, clock=client.clock).run_once()
    async with client.app.state.sessionmaker() as session:
        case_no = changes.get("case_no", "CF20261201000001")
        return (await session.execute(select(Shipment).where(Shipment.case_no == case_no))).scalar_one()


def ems_event(waybill: str, code: str, minutes: int, event_id: str | None = None, **more) -> dict:
    at = T0 + timedelta(minutes=minutes)
    return {"waybill": waybill, "code": code, "text": {"10": "收寄", "20": "运输中", "30": "派送中", "40": "妥投",
            "50": "未妥投", "60": "退回"}[code], "at": at.isoformat(), "event_id": event_id or f"ev-{code}-{minutes}",
            **more}  # fmt: skip


async def timeline(client, ref: str) -> tuple[str, list[tuple[str, str, str]]]:
    shown = (await client.get(f"/shipments/{ref}", headers=person())).json()
    return shown["status"], [(e["event_id"], e["at"], e["status"]) for e in shown["timeline"]]


async def test_callbacks_are_for_the_carrier_and_name_what_is_wrong(express):
    shipment = await booked(express)
    good = ems_event(shipment.waybill, "10", 0)
    assert (await express.post("/callbacks/ems", json=good)).status_code == 401
    assert (await express.post("/callbacks/ems", json=good, headers={"X-Partner-Id": "dept-scjgj"})).status_code == 401
    bad = await express.post("/callbacks/ems", json={**good, "waybill": "EA123456789CN"}, headers=EMS)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.waybill" and bad.json()["errors"][0]["rule"] == "s10"
    unknown = await express.post("/callbacks/ems", json={**good, "waybill": "EA123456785CN"}, headers=EMS)
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")
    code = await express.post("/callbacks/ems", json={**good, "code": "99"}, headers=EMS)
    assert code.status_code == 422 and code.json()["errors"][0]["rule"] == "ems_code"
    naive = await express.post("/callbacks/ems", json={**good, "at": "2026-12-01T09:00:00"}, headers=EMS)
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "body.at"


async def test_a_journey_is_published_and_duplicates_change_nothing(express):
    shipment = await booked(express)
    w = shipment.waybill
    first = await express.post("/callbacks/ems", json=ems_event(w, "10", 0), headers=EMS)
    assert first.json() == {"shipment_id": shipment.id, "status": "picked_up", "duplicate": False, "applied": True}
    again = await express.post("/callbacks/ems", json=ems_event(w, "10", 0), headers=EMS)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    for code, minutes in (("20", 60), ("30", 120), ("50", 180), ("30", 1440)):
        assert (await express.post("/callbacks/ems", json=ems_event(w, code, minutes), headers=EMS)).status_code == 200
    done = await express.post("/callbacks/ems", json=ems_event(w, "40", 1500, signed_by="张三"), headers=EMS)
    assert done.json()["status"] == "signed_for"
    kinds = [e["status"] for e in await published(express, "updated")]
    assert kinds == ["picked_up", "in_transit", "out_for_delivery", "out_for_delivery"]
    [failed] = await published(express, "failed")
    assert failed["status"] == "failed_attempt" and failed["final"] is False
    [delivered] = await published(express, "delivered")
    assert delivered["signed_by"] == "张*" and delivered["at"].startswith("2026-12-02T10:00")
    late = await express.post("/callbacks/ems", json=ems_event(w, "20", 1600), headers=EMS)  # after the end
    assert late.json() == {"shipment_id": shipment.id, "status": "signed_for", "duplicate": False, "applied": False}
    status, events = await timeline(express, w)
    assert status == "signed_for" and len(events) == 7 and len(await published(express, "delivered")) == 1


SEQUENCE = [("10", 0), ("20", 60), ("20", 90), ("30", 120), ("40", 180)]


@pytest.mark.parametrize("order", [(4, 3, 2, 1, 0), (0, 3, 1, 4, 2), (2, 0, 4, 1, 3)])
async def test_duplicated_and_reordered_callbacks_leave_one_correct_timeline(express, order):
    shipment = await booked(express)
    events = [ems_event(shipment.waybill, code, minutes) for code, minutes in SEQUENCE]
    arrivals = [events[i] for i in order]
    arrivals = list(itertools.chain.from_iterable((e, e) if i % 2 == 0 else (e,) for i, e in enumerate(arrivals)))
    for event in arrivals:
        response = await express.post("/callbacks/ems", json=event, headers=EMS)
        assert response.status_code == 200, response.text
    status, shown = await timeline(express, shipment.id)
    assert status == "signed_for"
    assert [(e[0], e[2]) for e in shown] == [(f"ev-{c}-{m}", s) for (c, m), s in
                                              zip(SEQUENCE, ["picked_up", "in_transit", "in_transit",
                                                             "out_for_delivery", "signed_for"], strict=True)]  # fmt: skip
    assert [e[1] for e in shown] == sorted(e[1] for e in shown)
    assert len(await published(express, "delivered")) == 1  # the end is announced once
    statuses = [e["status"] for e in await published(express)]
    ranks = ["created", "picked_up", "in_transit", "out_for_delivery", "signed_for"]
    assert [ranks.index(s) for s in statuses] == sorted(ranks.index(s) for s in statuses)  # never backwards


async def test_who_sees_a_shipment_and_how(express):
    shipment = await booked(express)
    own = await express.get(f"/shipments/{shipment.waybill}", headers=person())
    assert own.status_code == 200 and own.json()["recipient"] == {
        "name": "张三", "phone": "13800138000", "division_code": "371402", "address": "山东省德州市德城区新华路1号",
    }  # fmt: skip
    assert own.json()["masked"] is False and own.json()["id"] == shipment.id
    assert (await express.get(f"/shipments/{shipment.id}", headers=officer("SCJGJ"))).json()["masked"] is False
    for stranger in (person(LI_SI), officer("BDCDJ", "admin"), person(act={"sub": LI_SI}, scope="licence")):
        refused = await express.get(f"/shipments/{shipment.id}", headers=stranger)
        assert refused.status_code == 404
    assert (await express.get("/shipments/shp_doesnotexist", headers=person())).status_code == 404
    supervised = await express.get(f"/shipments/{shipment.waybill}", headers=officer("JXJ", "supervisor"))
    assert supervised.status_code == 200 and supervised.json()["masked"] is True
    assert supervised.json()["recipient"] == {
        "name": "张*", "phone": "138****8000", "division_code": "371402", "address": "山东省德州市德城区****",
    }  # fmt: skip
    assert (await express.get(f"/shipments/{shipment.id}")).status_code == 401


async def test_lists_are_scoped_and_paginated(express):
    await booked(express)
    await booked(express, case_no="CF20261201000009", applicant=LI_SI, recipient="李四", department="BDCDJ")
    mine = (await express.get("/shipments", headers=person())).json()
    assert mine["total"] == 1 and mine["items"][0]["case_no"] == "CF20261201000001"
    department = (await express.get("/shipments", headers=officer("BDCDJ"))).json()
    assert [i["case_no"] for i in department["items"]] == ["CF20261201000009"]
    everything = (await express.get("/shipments?page_size=1", headers=officer("SCJGJ", "supervisor"))).json()
    assert everything["total"] == 2 and everything["page_size"] == 1 and len(everything["items"]) == 1
    both = (await express.get("/shipments", headers=officer("SCJGJ", "supervisor"))).json()["items"]
    assert {i["case_no"]: i["masked"] for i in both} == {"CF20261201000001": False, "CF20261201000009": True}
    too_big = await express.get("/shipments?page_size=1000", headers=person())
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "query.page_size"
    outside = await express.get("/shipments", headers=person(act={"sub": LI_SI}, scope="licence"))
    assert outside.status_code == 403
    filtered = (await express.get("/shipments?case_no=CF20261201000009", headers=officer("JXJ", "supervisor"))).json()
    assert filtered["total"] == 1
