"""The result licence of an approved EMS case arrives over NATS: caseflow requests the delivery
itself, as the system, with the officer's transition and event (ADR 0022); other cases keep the
officer's ``deliver`` step."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from types import SimpleNamespace

from sqlalchemy import select

from contracts.events.licence import LicenceIssued
from kit.bus import Bus
from kit.events import envelope
from services.caseflow.cases.result_delivery import delivers_itself
from services.caseflow.models import inbox, outbox
from services.caseflow.tests.conftest import ZHANG_SAN, act, officer, person, running_caseflow, submit

EMS = {"method": "ems", "recipient": "张三", "phone": "13800138000", "address": "江苏省淮安市清江浦区1号",
       "division_code": "320812"}  # fmt: skip


def issued(case_no: str, *, licence_type: str = "business_licence", suffix: str = "") -> LicenceIssued:
    identifier = f"1.2.156.3005.2.11100000000013338W.002.{datetime.now(UTC):%H%M%S%f}{suffix}"
    return LicenceIssued(identifier=identifier, licence_type=licence_type, number="320802600012345", holder=ZHANG_SAN,
                         holder_kind="person", issuer="SCJGJ", version=1, at=datetime.now(UTC),
                         issued_on=date(2026, 11, 2), valid_until=None, case_no=case_no, source="case")  # fmt: skip


async def announce(client, nats_url: str, *events: LicenceIssued) -> None:
    """Publish onto LICENCE as licence would (each event twice, under two ids: a re-announcement),
    then wait until caseflow has applied the last one."""
    sends = []
    for data in events:
        sends += [envelope(data, source="yiwang.licence", subject=data.identifier) for _ in range(2)]
    bus = Bus(nats_url, name="licence", streams={"LICENCE": ["licence.>"]})
    await bus.start()
    await bus.wait_connected(10)
    try:
        js = await bus.jetstream()
        for event in sends:
            await js.publish(LicenceIssued.nats_subject, event.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": event.id})  # fmt: skip
        for _ in range(300):
            async with client.app.state.sessionmaker() as session:
                seen = (
                    await session.execute(select(inbox.c.event_id).where(inbox.c.event_id == sends[-1].id))
                ).scalar()
            if seen:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the licence events were not consumed")
    finally:
        await bus.close()


async def requested(client, case_no: str) -> list[dict]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.event_type, outbox.table.c.payload))).all()
    return [json.loads(p)["data"] for t, p in rows
            if t.endswith(".delivery_requested.v1") and json.loads(p)["data"]["case_no"] == case_no]  # fmt: skip


async def approved(client, **changes) -> dict:
    case = await submit(client, **changes)
    for role, action in (("acceptor", "accept"), ("reviewer", "review"), ("decider", "approve")):
        response = await act(client, case, officer(role), action)
        assert response.status_code == 200, response.text
    assert response.json()["state"] == "approved"
    return response.json()


async def test_the_issued_result_licence_sends_an_ems_case_on_its_way(database_url, nats_server, tmp_path):
    async with running_caseflow(database_url, nats_server.url, tmp_path, consume_licence_events=True) as client:
        ems = await approved(client, delivery=EMS)
        window = await approved(client, delivery={"method": "window"})
        other_type = await approved(client, delivery=EMS)
        due_at_approval = ems["deadlines"]["delivery"]["due"]
        await announce(client, nats_server.url, issued(ems["case_no"]), issued(window["case_no"], suffix="1"),
                       issued(other_type["case_no"], licence_type="food_business_licence", suffix="2"))  # fmt: skip

        detail = (await client.get(f"/cases/{ems['case_no']}", headers=person())).json()
        assert detail["state"] == "delivering"
        assert detail["deadlines"]["delivery"]["due"] == due_at_approval  # Art. 44: counted from the decision
        [line] = [entry for entry in detail["timeline"] if entry["action"] == "deliver"]
        assert line["actor"] == "system" and (line["from_state"], line["to_state"]) == ("approved", "delivering")
        [event] = await requested(client, ems["case_no"])  # once, though the licence was announced twice
        assert event["actor"] == "system" and event["address"] == EMS["address"]
        assert event["division_code"] == "320812"

        # the window case, and a licence that is not the matter's result: the officer's step remains
        for case in (window, other_type):
            still = (await client.get(f"/cases/{case['case_no']}", headers=person())).json()
            assert still["state"] == "approved" and await requested(client, case["case_no"]) == []
        response = await act(client, other_type, officer("acceptor"), "deliver")
        assert response.status_code == 200 and response.json()["state"] == "delivering"
        [by_officer] = await requested(client, other_type["case_no"])
        assert by_officer["actor"] != "system"


def test_only_an_approved_ems_case_and_its_result_licence():
    matter = {"result": {"name": "营业执照", "licence_type": "business_licence"}}
    case = lambda state="approved", method="ems": SimpleNamespace(state=state, delivery=json.dumps({"method": method}))  # noqa: E731
    assert delivers_itself(case(), matter, "business_licence")
    assert not delivers_itself(case(method="window"), matter, "business_licence")
    assert not delivers_itself(case(state="delivering"), matter, "business_licence")
    assert not delivers_itself(case(state="withdrawn"), matter, "business_licence")
    assert not delivers_itself(case(), matter, "food_business_licence")
    assert not delivers_itself(case(), {"result": {"name": "批复"}}, "business_licence")  # no licence result
    assert not delivers_itself(case(), {}, "")
