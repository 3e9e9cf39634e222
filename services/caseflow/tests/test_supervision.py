"""The supervision timer: Art. 32 deemed acceptance on day 6, yellow/red warnings raised once even
when two runs race, the ledger and statistics through the API; catalog's matters over NATS."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import select

from contracts.events.catalog import MatterPublished
from kit.bus import Bus
from kit.events import envelope
from services.caseflow.models import MatterDefinition, SupervisionWarning, outbox
from services.caseflow.supervision import run_supervision_once
from services.caseflow.tests.conftest import act, matter_definition, officer, person, submit

CHINA = timezone(timedelta(hours=8))
ACCEPTOR, REVIEWER, DECIDER = officer("acceptor"), officer("reviewer"), officer("decider")


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, tzinfo=CHINA).astimezone(UTC)


async def run(client, day: date, times: int = 1) -> list[dict]:
    maker, ctx = client.app.state.sessionmaker, client.app.state.caseflow
    return list(await asyncio.gather(*(run_supervision_once(maker, ctx, at(day)) for _ in range(times))))


async def warning_rows(client) -> list[tuple[str, str]]:
    async with client.app.state.sessionmaker() as session:
        rows = await session.execute(select(SupervisionWarning.step, SupervisionWarning.level)
                                     .order_by(SupervisionWarning.id))  # fmt: skip
        return [tuple(r) for r in rows]


async def warning_events(client) -> list[dict]:
    async with client.app.state.sessionmaker() as session:
        query = select(outbox.table.c.event_type, outbox.table.c.payload).order_by(outbox.table.c.id)
        rows = (await session.execute(query)).all()
    return [json.loads(p)["data"] for t, p in rows if t == "yiwang.caseflow.supervision.warning.v1"]


async def test_deemed_acceptance_on_day_six(caseflow):
    case = await submit(caseflow)  # Mon 2026-11-02
    assert (await run(caseflow, date(2026, 11, 9)))[0]["deemed_accepted"] == 0  # day 5: still in time
    results = await run(caseflow, date(2026, 11, 10), times=2)  # day 6, two replicas at once
    assert sum(r["deemed_accepted"] for r in results) == 1
    detail = (await caseflow.get(f"/cases/{case['case_no']}", headers=ACCEPTOR)).json()
    assert detail["state"] == "accepted" and detail["deemed_accepted"] is True
    assert detail["accepted_on"] == "2026-11-02"  # as of the day of receipt
    last = detail["timeline"][-1]
    assert last["action"] == "deem_accept" and last["actor"] == "system" and "Art. 32" in last["detail"]["rule"]
    # The decision clock runs from receipt: promised 3 → Nov 5, already overdue on Nov 10.
    assert detail["due_on"] == "2026-11-05"
    async with caseflow.app.state.sessionmaker() as session:
        accepted = (await session.execute(select(outbox.table.c.payload).where(
            outbox.table.c.event_type == "yiwang.caseflow.case.accepted.v1"))).scalars().all()  # fmt: skip
    assert len(accepted) == 1 and json.loads(accepted[0])["data"]["deemed"] is True


async def test_a_notice_in_time_prevents_deemed_acceptance(caseflow):
    case = await submit(caseflow)
    caseflow.clock.set(date(2026, 11, 9))
    await act(
        caseflow, case, ACCEPTOR, "request_correction", items=[{"material": "经营场所租赁合同", "problem": "缺页"}]
    )
    assert (await run(caseflow, date(2026, 11, 20)))[0]["deemed_accepted"] == 0


async def test_warnings_raised_once_by_racing_timers(caseflow):
    case = await submit(caseflow)
    await act(caseflow, case, ACCEPTOR, "accept")  # decision due Thu Nov 5 (promised 3)
    await run(caseflow, date(2026, 11, 2), times=2)
    assert await warning_rows(caseflow) == []
    results = await run(caseflow, date(2026, 11, 3), times=2)  # 2 working days left: yellow
    assert sum(r["warnings"] for r in results) == 1
    assert await warning_rows(caseflow) == [("decision", "yellow")]
    results = await run(caseflow, date(2026, 11, 6), times=3)  # overdue: red
    assert sum(r["warnings"] for r in results) == 1
    assert await warning_rows(caseflow) == [("decision", "yellow"), ("decision", "red")]
    await run(caseflow, date(2026, 11, 9), times=2)
    events = await warning_events(caseflow)
    assert [(e["step"], e["level"]) for e in events] == [("decision", "yellow"), ("decision", "red")]
    assert events[0]["case_no"] == case["case_no"] and events[0]["due"] == "2026-11-05"


async def test_supervisors_read_the_ledger_and_statistics(caseflow):
    late = await submit(caseflow)
    await act(caseflow, late, ACCEPTOR, "accept")
    on_time = await submit(caseflow)
    await act(caseflow, on_time, ACCEPTOR, "accept")
    await act(caseflow, on_time, REVIEWER, "review")
    await act(caseflow, on_time, DECIDER, "approve")
    await run(caseflow, date(2026, 11, 6))
    caseflow.clock.set(date(2026, 11, 9))
    await act(caseflow, late, REVIEWER, "review")
    await act(caseflow, late, DECIDER, "approve")

    supervisor = officer("supervisor")
    listed = (await caseflow.get("/supervision/warnings", headers=supervisor)).json()
    assert {(w["case_no"], w["level"]) for w in listed["items"]} == {
        (late["case_no"], "yellow"),
        (late["case_no"], "red"),
    }
    only_red = (await caseflow.get("/supervision/warnings", params={"level": "red"}, headers=supervisor)).json()
    assert only_red["total"] == 1
    assert (await caseflow.get("/supervision/warnings", headers=officer("supervisor", "SWJ"))).json()["total"] == 0
    assert (await caseflow.get("/supervision/warnings", headers=ACCEPTOR)).status_code == 403
    assert (await caseflow.get("/supervision/warnings", headers=person())).status_code == 403
    stats = (await caseflow.get("/supervision/stats", headers=supervisor)).json()
    assert stats == [{
        "department": "SCJGJ", "volume": 2, "in_hand": 2, "yellow": 1, "red": 1, "anomaly": 0, "decided": 2,
        "on_time_rate": 0.5, "average_working_days": 2.5, "online_share": 1.0,
    }]  # fmt: skip
    centre = (await caseflow.get("/supervision/stats", headers=officer("supervisor", "SUPERVISION"))).json()
    assert centre == stats
    demo_centre = (await caseflow.get("/supervision/stats", headers=officer("supervisor", "JCZX"))).json()
    assert demo_centre == stats  # identity's demo supervisor sits in 监察中心 (JCZX)


async def test_matters_arrive_from_catalog_over_nats(caseflow, nats_server):
    code = f"NATS-{datetime.now(UTC).strftime('%H%M%S%f')}"
    bus = Bus(nats_server.url, name="catalog", streams={"CATALOG": ["catalog.>"]})
    await bus.start()
    await bus.wait_connected(10)
    try:
        js = await bus.jetstream()
        for version in (1, 2):
            data = MatterPublished.model_validate(matter_definition(code, version=version, materials=[]))
            event = envelope(data, subject=code)
            headers = {"Nats-Msg-Id": event.id}
            await js.publish(data.nats_subject, event.model_dump_json().encode(), headers=headers)
            if version == 1:  # a redelivered duplicate changes nothing
                await js.publish(data.nats_subject, event.model_dump_json().encode(),
                                 headers={"Nats-Msg-Id": event.id + "-again"})  # fmt: skip
        for _ in range(200):
            async with caseflow.app.state.sessionmaker() as session:
                versions = (await session.execute(select(MatterDefinition.version).where(
                    MatterDefinition.code == code))).scalars().all()  # fmt: skip
            if len(versions) == 2:
                break
            await asyncio.sleep(0.1)
        assert sorted(versions) == [1, 2]
    finally:
        await bus.close()
    case = await submit(caseflow, matter_code=code, materials=[])
    assert case["matter"]["version"] == 2  # the current version, pinned
    pinned = await submit(caseflow, matter_code=code, matter_version=1, materials=[])
    assert pinned["matter"]["version"] == 1


def test_the_warning_horizon_holds_every_case_that_can_be_yellow_across_2026():
    """The timer reads only cases due by warning_horizon(today): across the whole 2026 calendar
    (Spring Festival, National Day and their 调休 Saturdays) no due date beyond it is yellow."""
    from datetime import timedelta

    from services.caseflow.domain.calendar import WorkdayCalendar
    from services.caseflow.domain.clock import Deadline, warning_level
    from services.caseflow.supervision import warning_horizon

    calendar = WorkdayCalendar()
    start = date(2026, 1, 1)
    for yellow_at in (0, 1, 2, 3, 5):
        widest = 0
        for offset in range(365):
            today = start + timedelta(days=offset)
            horizon = warning_horizon(today, yellow_at)
            for ahead in range(1, 40):
                due = today + timedelta(days=ahead)
                deadline = Deadline(due=due, limit_days=20, provisional=False, rule="t", paused_days=0)
                if warning_level(calendar, deadline, today, yellow_at=yellow_at) != "none":
                    assert due <= horizon, (today, due, yellow_at)
                    widest = max(widest, ahead)
        assert widest > yellow_at  # holidays make the yellow window wider than the working days


async def _bundle_case_with_branches_elsewhere(client) -> dict:
    """A 开办企业-like bundle led by SCJGJ with branches at GAJ (promise 1) and SWJ (promise 2), accepted
    Mon 2026-11-02 (branches due Tue 3 and Wed 4 Nov)."""
    from contracts.events.catalog import BundlePublished
    from services.caseflow import matters
    from services.caseflow.tests.conftest import add_matter, submission

    lead = matter_definition("SV-SCJG", materials=[])
    seal = matter_definition("SV-GAJ", department="GAJ", matter_type="公共服务", statutory_limit_days=5,
                             promised_limit_days=1, materials=[], form_fields=[])  # fmt: skip
    tax = matter_definition("SV-SWJ", department="SWJ", matter_type="公共服务", statutory_limit_days=10,
                            promised_limit_days=2, materials=[], form_fields=[])  # fmt: skip
    for data in (lead, seal, tax):
        await add_matter(client, data)
    event = BundlePublished(code="BUNDLE-SV", name="监察测试一件事", description="", published_at=datetime.now(UTC),
                            matter_codes=["SV-SCJG", "SV-GAJ", "SV-SWJ"])  # fmt: skip
    async with client.app.state.sessionmaker() as session, session.begin():
        await matters.on_bundle_published(session, envelope(event, source="test", subject="BUNDLE-SV"))
    body = submission(bundle_code="BUNDLE-SV", matter_code=None, materials=[])
    created = await client.post("/cases", json=body, headers={**person(), "Idempotency-Key": "sv-1"})
    assert created.status_code == 201, created.text
    case = created.json()
    accepted = await act(client, case, ACCEPTOR, "accept")
    assert accepted.status_code == 200, accepted.text
    assert {b["department"]: b["due_on"] for b in accepted.json()["branches"]} == {
        "GAJ": "2026-11-03", "SWJ": "2026-11-04"}  # fmt: skip
    return case


async def test_branch_departments_work_and_warnings_are_counted(caseflow):
    case = await _bundle_case_with_branches_elsewhere(caseflow)
    gaj = await caseflow.post(f"/cases/{case['case_no']}/branches/GAJ/actions", json={"action": "approve"},
                              headers={**officer("decider", "GAJ"), "If-Match": "1"})  # fmt: skip
    assert gaj.status_code == 200, gaj.text  # decided on Mon 2 Nov, due Tue 3: on time
    await run(caseflow, date(2026, 11, 5))  # SWJ's branch (due Wed 4) is overdue: yellow and red, for SWJ
    swj_supervisor = officer("supervisor", "SWJ")
    listed = (await caseflow.get("/supervision/warnings", headers=swj_supervisor)).json()
    assert {(w["case_no"], w["department"], w["step"], w["level"]) for w in listed["items"]} == {
        (case["case_no"], "SWJ", "branch:SWJ", "yellow"), (case["case_no"], "SWJ", "branch:SWJ", "red")}  # fmt: skip
    stats = {s["department"]: s for s in (await caseflow.get("/supervision/stats",
                                                             headers=officer("supervisor", "SUPERVISION"))).json()}  # fmt: skip
    assert set(stats) == {"SCJGJ", "GAJ", "SWJ"}
    assert stats["GAJ"] == {"department": "GAJ", "volume": 1, "in_hand": 0, "yellow": 0, "red": 0, "anomaly": 0,
                            "decided": 1, "on_time_rate": 1.0, "average_working_days": 0.0, "online_share": 1.0}  # fmt: skip
    assert stats["SWJ"] == {"department": "SWJ", "volume": 1, "in_hand": 1, "yellow": 1, "red": 1, "anomaly": 0,
                            "decided": 0, "on_time_rate": None, "average_working_days": None, "online_share": 1.0}  # fmt: skip
    assert stats["SCJGJ"]["volume"] == 1 and stats["SCJGJ"]["in_hand"] == 1  # the lead's own case, once
    # A branch department's supervisor sees its own line only; the lead's supervisor not the branches'.
    assert [s["department"] for s in (await caseflow.get("/supervision/stats", headers=swj_supervisor)).json()] == [
        "SWJ"]  # fmt: skip
    own = (await caseflow.get("/supervision/stats", headers=officer("supervisor"))).json()
    assert [s["department"] for s in own] == ["SCJGJ"] and own[0]["red"] == 0
    # Decided late (Fri 6 Nov, due Wed 4): on-time rate 0; 4 working days from Mon 2 Nov to Fri 6.
    caseflow.clock.set(date(2026, 11, 6))
    late = await caseflow.post(f"/cases/{case['case_no']}/branches/SWJ/actions", json={"action": "approve"},
                               headers={**officer("decider", "SWJ"), "If-Match": "1"})  # fmt: skip
    assert late.status_code == 200, late.text
    swj = (await caseflow.get("/supervision/stats", headers=swj_supervisor)).json()[0]
    assert (swj["decided"], swj["on_time_rate"], swj["average_working_days"], swj["in_hand"]) == (1, 0.0, 4.0, 0)


async def test_a_hostile_department_filter_is_a_problem(caseflow):
    centre = officer("supervisor", "SUPERVISION")
    for path in ("/supervision/warnings", "/supervision/stats"):
        for value in ("%00", "%ED%A0%80", "GAJ%0A", "x" * 41):
            response = await caseflow.get(f"{path}?department={value}", headers=centre)
            assert response.status_code == 422, (path, value, response.status_code)
            assert response.json()["errors"][0]["field"] == "query.department"
