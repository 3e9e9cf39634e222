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
            event = envelope(data, source="yiwang.catalog", subject=code)
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
