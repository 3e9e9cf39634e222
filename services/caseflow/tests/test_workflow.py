"""Officer and applicant actions through the HTTP API: every transition and refusal, the one
correction rule, clocks, suspension and extension, the officer race."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

from sqlalchemy import select

from services.caseflow import reference
from services.caseflow.models import CalendarOverride, CalendarYear, SupervisionWarning, outbox
from services.caseflow.supervision import SupervisionTimer
from services.caseflow.tests.conftest import act, add_matter, matter_definition, officer, person, submit

ACCEPTOR, REVIEWER, DECIDER = officer("acceptor"), officer("reviewer"), officer("decider")


async def outbox_types(client) -> list[str]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.event_type).order_by(outbox.table.c.id))).scalars()
        return [r.split(".")[3] for r in rows]


async def outbox_payloads(client, kind: str) -> list[dict]:
    async with client.app.state.sessionmaker() as session:
        query = select(outbox.table.c.event_type, outbox.table.c.payload).order_by(outbox.table.c.id)
        rows = (await session.execute(query)).all()
    return [json.loads(p)["data"] for t, p in rows if f".{kind}." in t]


async def anomalies(client) -> list[tuple[str, str]]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(SupervisionWarning.case_no, SupervisionWarning.step)
                                      .where(SupervisionWarning.level == "anomaly"))).all()  # fmt: skip
    return [tuple(r) for r in rows]


async def test_journey_with_one_correction(caseflow):
    case = await submit(caseflow)
    number = case["case_no"]
    caseflow.clock.set(date(2026, 11, 3))
    items = [
        {"material": "经营场所租赁合同", "problem": "照片不清晰"},
        {"material": "form.business_scope", "problem": "缺经营范围"},
    ]
    sent_back = await act(caseflow, case, ACCEPTOR, "request_correction", items=items)
    assert sent_back.status_code == 200, sent_back.text
    body = sent_back.json()
    assert body["state"] == "correction_requested" and body["correction_items"] == items
    assert body["pauses"][0]["reason"] == "correction" and body["pauses"][0]["ended_on"] is None
    assert body["deadlines"]["pre_review"]["due"] is None  # paused while the applicant corrects

    caseflow.clock.set(date(2026, 11, 5))
    resubmitted = await caseflow.post(f"/cases/{number}/resubmit", json={"form": {"business_scope": "餐饮"}},
                                      headers=person())  # fmt: skip
    assert resubmitted.status_code == 200 and resubmitted.json()["state"] == "resubmitted"
    detail = resubmitted.json()
    assert detail["form"]["business_scope"] == "餐饮"
    # Pre-review: Mon 2 used Tue 3? no — paused from Tue 3 to Thu 5: Tue 3, Wed 4 not counted.
    assert detail["deadlines"]["pre_review"]["paused_days"] == 2
    assert detail["deadlines"]["pre_review"]["due"] == "2026-11-06"

    again = await act(caseflow, case, ACCEPTOR, "request_correction", items=items)
    assert again.status_code == 409 and again.json()["type"].endswith("second-correction")
    assert again.json()["state"] == "resubmitted"
    assert await anomalies(caseflow) == [(number, "second_correction")]

    assert (await act(caseflow, case, ACCEPTOR, "accept")).json()["state"] == "accepted"
    assert (await act(caseflow, case, REVIEWER, "review")).json()["state"] == "reviewed"
    approved = await act(caseflow, case, DECIDER, "approve")
    assert approved.json()["state"] == "approved"
    assert approved.json()["deadlines"]["delivery"]["due"] == "2026-11-19"  # Art. 44: +10 working days
    delivering = await act(caseflow, case, ACCEPTOR, "deliver")
    assert delivering.json()["state"] == "delivering"
    completed = await act(caseflow, case, ACCEPTOR, "complete")
    assert completed.json()["state"] == "completed" and completed.json()["allowed_actions"] == []
    actions = [step["action"] for step in completed.json()["timeline"]]
    assert actions == ["submit", "request_correction", "resubmit", "accept", "review", "approve", "deliver", "complete"]
    assert await outbox_types(caseflow) == [
        "submitted",
        "correction_requested",
        "resubmitted",
        "accepted",
        "reviewed",
        "approved",
        "delivery_requested",
        "completed",
        "warning",
    ] or set(await outbox_types(caseflow)) >= {"submitted", "delivery_requested", "completed", "warning"}
    delivery = (await outbox_payloads(caseflow, "delivery_requested"))[0]
    assert delivery["address"].startswith("江苏省") and delivery["case_no"] == number
    approved_event = (await outbox_payloads(caseflow, "approved"))[0]
    assert approved_event["applicant"] and approved_event["result_licence_type"] == "business_licence"
    submitted_event = (await outbox_payloads(caseflow, "submitted"))[0]
    assert "form" not in submitted_event and "applicant_name" not in submitted_event


async def test_refusals_name_the_state_and_rule(caseflow):
    case = await submit(caseflow)
    early = await act(caseflow, case, DECIDER, "approve")
    assert early.status_code == 409 and early.json()["state"] == "submitted"
    assert "submitted" in early.json()["detail"]
    wrong_role = await act(caseflow, case, REVIEWER, "accept")
    assert wrong_role.status_code == 403 and wrong_role.json()["rule"] == "role"
    no_reason = await act(caseflow, case, ACCEPTOR, "reject")
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    no_items = await act(caseflow, case, ACCEPTOR, "request_correction", items=[])
    assert no_items.status_code == 422
    missing = await caseflow.post(f"/cases/{case['case_no']}/actions", json={"action": "accept"}, headers=ACCEPTOR)
    assert missing.status_code == 428
    stale = await caseflow.post(f"/cases/{case['case_no']}/actions", json={"action": "accept"},
                                headers={**ACCEPTOR, "If-Match": "7"})  # fmt: skip
    assert stale.status_code == 409 and stale.json()["version"] == 1
    rejected = await act(caseflow, case, ACCEPTOR, "reject", reason="不属于本机关职权范围")
    assert rejected.json()["state"] == "rejected" and rejected.json()["decision_reason"].startswith("不属于")
    withdraw = await caseflow.post(f"/cases/{case['case_no']}/withdraw", headers=person())
    assert withdraw.status_code == 409 and withdraw.json()["state"] == "rejected"


async def test_withdraw_and_deny(caseflow):
    first = await submit(caseflow)
    withdrawn = await caseflow.post(f"/cases/{first['case_no']}/withdraw", headers=person())
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    officer_withdraw = await caseflow.post(f"/cases/{first['case_no']}/withdraw", headers=ACCEPTOR)
    assert officer_withdraw.status_code == 403
    second = await submit(caseflow)
    await act(caseflow, second, ACCEPTOR, "accept")
    await act(caseflow, second, REVIEWER, "review")
    denied = await act(caseflow, second, DECIDER, "deny", reason="不符合法定条件")
    assert denied.json()["state"] == "denied"
    after = await caseflow.post(f"/cases/{second['case_no']}/withdraw", headers=person())
    assert after.status_code == 409


async def test_decision_without_review_is_an_anomaly(caseflow):
    case = await submit(caseflow)
    await act(caseflow, case, ACCEPTOR, "accept")
    approved = await act(caseflow, case, DECIDER, "approve")
    assert approved.status_code == 200
    assert await anomalies(caseflow) == [(case["case_no"], "decision_without_review")]


async def test_instant_matter_is_decided_on_acceptance(caseflow):
    await add_matter(caseflow, matter_definition("INSTANT-1", kind="instant", promised_limit_days=0, materials=[]))
    case = await submit(caseflow, matter_code="INSTANT-1", materials=[])
    accepted = await act(caseflow, case, ACCEPTOR, "accept")
    assert accepted.json()["state"] == "approved" and accepted.json()["decided_on"] == "2026-11-02"
    assert "decision" not in accepted.json()["deadlines"]
    assert {"accepted", "approved"} <= set(await outbox_types(caseflow))
    window = await act(caseflow, case, ACCEPTOR, "complete")
    assert window.json()["state"] == "completed"


async def test_officer_race_one_wins(caseflow):
    case = await submit(caseflow)
    url = f"/cases/{case['case_no']}/actions"
    headers = {**ACCEPTOR, "If-Match": "1"}
    first, second = await asyncio.gather(
        caseflow.post(url, json={"action": "accept"}, headers=headers),
        caseflow.post(url, json={"action": "reject", "reason": "材料不全"}, headers=headers),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    loser = first if first.status_code == 409 else second
    assert loser.json()["type"].endswith("version-conflict")
    detail = (await caseflow.get(f"/cases/{case['case_no']}", headers=ACCEPTOR)).json()
    assert detail["version"] == 2 and len(detail["timeline"]) == 2, detail["timeline"]


async def test_clock_across_national_day_and_its_make_up_saturday(caseflow):
    await add_matter(caseflow, matter_definition("LIC-20", promised_limit_days=None, materials=[]))
    caseflow.clock.set(date(2026, 9, 28))
    case = await submit(caseflow, matter_code="LIC-20", materials=[])
    caseflow.clock.set(date(2026, 9, 29))
    accepted = (await act(caseflow, case, ACCEPTOR, "accept")).json()
    decision = accepted["deadlines"]["decision"]
    # Sep 30 = 1; Oct 1–7 holiday; Oct 8, 9, Sat 10 (调休) = 2–4; Oct 12–16 = 9; 19–23 = 14; 26–30 = 19; Nov 2 = 20
    assert decision["due"] == "2026-11-02"
    assert decision["limit_days"] == 20 and "Art. 42" in decision["rule"]
    assert accepted["due_on"] == "2026-11-02" and accepted["due_provisional"] is False
    # The promised limit governs where it is shorter: 3 working days → Sep 30, Oct 8, Oct 9.
    short = await submit(caseflow)  # SCJG-001 promises 3; submitted on Sep 29
    accepted_short = (await act(caseflow, short, ACCEPTOR, "accept")).json()
    assert accepted_short["deadlines"]["decision"]["due"] == "2026-10-09"
    assert accepted_short["deadlines"]["decision"]["rule"].startswith("promised limit 3")


async def test_deadline_into_2027_is_provisional_then_recomputed(caseflow):
    await add_matter(caseflow, matter_definition("LIC-20", promised_limit_days=None, materials=[]))
    caseflow.clock.set(date(2026, 12, 21))
    case = await submit(caseflow, matter_code="LIC-20", materials=[])
    accepted = (await act(caseflow, case, ACCEPTOR, "accept")).json()
    # 20 working days from Mon 21 Dec 2026: 22–31 Dec (8); 2027 provisionally Mon–Fri less the statutory
    # holidays, so Fri 1 Jan (元旦) is off: 4–8 Jan (13), 11–15 Jan (18), 18 (19), Tue 19 Jan (20).
    assert accepted["due_on"] == "2027-01-19" and accepted["due_provisional"] is True
    assert any("provisional" in line for line in accepted["deadlines"]["decision"]["explanation"])
    refused = await caseflow.put("/calendar/overrides/2027", json={"holidays": ["2027-01-01"]}, headers=ACCEPTOR)
    assert refused.status_code == 403
    department_admin = await caseflow.put("/calendar/overrides/2027", json={"holidays": ["2027-01-01"]},
                                          headers=officer("admin"))  # fmt: skip
    assert department_admin.status_code == 403  # the calendar is platform-wide
    loaded = await caseflow.put("/calendar/overrides/2027", json={"holidays": ["2027-01-01"], "workdays": []},
                                headers=officer("admin", "ADMIN"))  # fmt: skip
    assert loaded.status_code == 200 and loaded.json()["recomputed"] == 1
    after = (await caseflow.get(f"/cases/{case['case_no']}", headers=ACCEPTOR)).json()
    assert after["due_on"] == "2027-01-19" and after["due_provisional"] is False


async def test_a_year_loaded_through_another_replica_is_recomputed_by_the_timer(caseflow, monkeypatch):
    await add_matter(caseflow, matter_definition("LIC-20", promised_limit_days=None, materials=[]))
    caseflow.clock.set(date(2026, 12, 21))
    case = await submit(caseflow, matter_code="LIC-20", materials=[])
    await act(caseflow, case, ACCEPTOR, "accept")  # due 2027-01-19 (元旦 provisionally off), provisional
    timer = SupervisionTimer(caseflow.app.state.sessionmaker, caseflow.app.state.caseflow)
    assert await timer.recompute_if_calendar_changed() == 1  # first round: whatever is provisional
    assert await timer.recompute_if_calendar_changed() is None  # nothing changed since
    # Another replica loads 2027: rows written behind this process's back (its cache never hears of it).
    async with caseflow.app.state.sessionmaker() as session, session.begin():
        session.add(CalendarOverride(day=date(2027, 1, 1), workday=False, year=2027))
        session.add(CalendarYear(year=2027, loaded_at=datetime.now(UTC), loaded_by="officer:other.replica"))
    assert await timer.recompute_if_calendar_changed() is None  # still the cached calendar (TTL)
    later = reference.clock() + reference.TTL_SECONDS + 1
    monkeypatch.setattr(reference, "clock", lambda: later)
    assert await timer.recompute_if_calendar_changed() == 1
    after = (await caseflow.get(f"/cases/{case['case_no']}", headers=ACCEPTOR)).json()
    assert after["due_on"] == "2027-01-19" and after["due_provisional"] is False


async def test_suspension_moves_the_deadline_by_the_suspended_working_days(caseflow):
    case = await submit(caseflow)
    accepted = (await act(caseflow, case, ACCEPTOR, "accept")).json()
    assert accepted["due_on"] == "2026-11-05"  # promised 3 from Mon Nov 2
    caseflow.clock.set(date(2026, 11, 3))
    missing = await act(caseflow, case, REVIEWER, "suspend", suspension="expert_review")
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "expected_days"
    suspended = (await act(caseflow, case, REVIEWER, "suspend", suspension="expert_review", expected_days=5,
                           reason="专家评审")).json()  # fmt: skip
    assert suspended["state"] == "suspended" and suspended["due_on"] is None
    assert suspended["pauses"][0]["expected_days"] == 5
    assert {"suspended"} <= set(await outbox_types(caseflow))
    caseflow.clock.set(date(2026, 11, 10))
    resumed = (await act(caseflow, case, DECIDER, "resume")).json()
    assert resumed["state"] == "accepted"
    decision = resumed["deadlines"]["decision"]
    assert decision["paused_days"] == 5  # Nov 3, 4, 5, 6, 9
    assert resumed["due_on"] == "2026-11-12"  # Nov 5 + 5 working days


async def test_extension_needs_a_decider_and_happens_once(caseflow):
    case = await submit(caseflow)
    await act(caseflow, case, ACCEPTOR, "accept")
    by_reviewer = await act(caseflow, case, REVIEWER, "extend", reason="情况复杂")
    assert by_reviewer.status_code == 403
    no_reason = await act(caseflow, case, DECIDER, "extend")
    assert no_reason.status_code == 422
    extended = (await act(caseflow, case, DECIDER, "extend", reason="需现场核查")).json()
    assert extended["extension"] == {"days": 10, "reason": "需现场核查"}
    assert extended["due_on"] == "2026-11-19"  # Nov 5 + 10 working days
    assert extended["timeline"][-1]["detail"]["new_due"] == "2026-11-19"
    event = (await outbox_payloads(caseflow, "extended"))[0]
    assert event["reason"] == "需现场核查" and event["new_due"] == "2026-11-19"
    twice = await act(caseflow, case, DECIDER, "extend", reason="再延")
    assert twice.status_code == 409 and twice.json()["type"].endswith("already-extended")


async def test_worklist_orders_by_deadline_and_filters(caseflow):
    await add_matter(caseflow, matter_definition("LIC-20", promised_limit_days=None, materials=[]))
    slow = await submit(caseflow, matter_code="LIC-20", materials=[])
    fast = await submit(caseflow)
    for case in (slow, fast):
        await act(caseflow, case, ACCEPTOR, "accept")
    listed = (await caseflow.get("/worklist", headers=REVIEWER)).json()
    assert [c["case_no"] for c in listed["items"]] == [fast["case_no"], slow["case_no"]]
    only = (await caseflow.get("/worklist", params={"matter_code": "LIC-20"}, headers=REVIEWER)).json()
    assert [c["case_no"] for c in only["items"]] == [slow["case_no"]]
    assert (await caseflow.get("/worklist", headers=ACCEPTOR)).json()["total"] == 0
    page = (await caseflow.get("/worklist", params={"page_size": 1, "page": 2}, headers=REVIEWER)).json()
    assert page["total"] == 2 and page["items"][0]["case_no"] == slow["case_no"]
    caseflow.clock.set(date(2026, 11, 6))
    overdue = (await caseflow.get("/worklist", params={"overdue": True}, headers=REVIEWER)).json()
    assert [c["case_no"] for c in overdue["items"]] == [fast["case_no"]]
    assert (await caseflow.get("/worklist", headers=person())).status_code == 403


async def test_worklist_counts_on_its_pages_and_past_the_last(caseflow):
    cases = [await submit(caseflow) for _ in range(2)]
    for case in cases:
        await act(caseflow, case, ACCEPTOR, "accept")
    pages = [
        (await caseflow.get("/worklist", params={"page_size": 1, "page": page}, headers=REVIEWER)).json()
        for page in (1, 2, 3)
    ]
    assert [p["total"] for p in pages] == [2, 2, 2]  # the count rides on a page; past the end it is asked alone
    assert [len(p["items"]) for p in pages] == [1, 1, 0] and not any(p["total_capped"] for p in pages)
    assert (await caseflow.get("/worklist", headers=ACCEPTOR)).json()["total"] == 0


async def test_fee_mismatch_is_an_anomaly(caseflow):
    fees = [{"item": "工本费", "amount_yuan": "10.00"}]
    await add_matter(caseflow, matter_definition("FEE-1", fees=fees, materials=[], steps=[]))
    right = await submit(caseflow, matter_code="FEE-1", materials=[], fees_paid_yuan="10")
    wrong = await submit(caseflow, matter_code="FEE-1", materials=[], fees_paid_yuan="5.5")
    for case in (right, wrong):
        await act(caseflow, case, ACCEPTOR, "accept")
        assert (await act(caseflow, case, DECIDER, "approve")).status_code == 200
    assert await anomalies(caseflow) == [(wrong["case_no"], "fee_mismatch")]


async def test_express_and_licence_events_move_the_case(caseflow):
    from services.caseflow import cases

    case = await submit(caseflow)
    for headers, action in ((ACCEPTOR, "accept"), (REVIEWER, "review"), (DECIDER, "approve"), (ACCEPTOR, "deliver")):
        await act(caseflow, case, headers, action)
    ctx = caseflow.app.state.caseflow
    async with caseflow.app.state.sessionmaker() as session, session.begin():
        await cases.note_on_timeline(session, ctx, case["case_no"], "licence_issued", {"licence_id": "BL-1"})
        await cases.complete_by_event(session, ctx, case["case_no"], action="complete", note={"waybill": "EA1"})
    async with caseflow.app.state.sessionmaker() as session, session.begin():  # a replay changes nothing
        await cases.complete_by_event(session, ctx, case["case_no"], action="complete", note={"waybill": "EA1"})
    detail = (await caseflow.get(f"/cases/{case['case_no']}", headers=ACCEPTOR)).json()
    assert detail["state"] == "completed"
    assert [s["action"] for s in detail["timeline"]][-2:] == ["licence_issued", "complete"]
    assert detail["timeline"][-1]["actor"] == "system"
