"""Department systems' pushes applied by caseflow (ADR 0021), fed as exchange forwards them: through
the consumer's own path (inbox row and handler in one transaction; ``apply``) and over real NATS
for redelivery. Decisions move platform cases as an officer's action would; progress mirrors a case
the department handles itself; every push settles once, applied or refused with the rule."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.events.exchange import DepartmentCaseDecision, DepartmentCaseProgress
from kit.bus import Bus
from kit.events import CloudEvent, envelope
from services.caseflow.main import consumers_for
from services.caseflow.models import Case, CaseEvent, Notification, SupervisionWarning, inbox, outbox
from services.caseflow.supervision import run_supervision_once
from services.caseflow.tests.conftest import (
    CHINA,
    COMPANY,
    ZHANG_SAN,
    act,
    add_matter,
    keyed,
    matter_definition,
    officer,
    person,
    running_caseflow,
    submit,
)

DEPARTMENT_NAME = "淮安市市场监督管理局"
_ids = itertools.count(1)


@pytest.fixture
async def caseflow(database_url, nats_server, tmp_path):
    """Caseflow consuming department pushes; the catalog's matters name their department."""
    async with running_caseflow(database_url, nats_server.url, tmp_path, consume_department_events=True) as client:
        await add_matter(client, matter_definition(version=2, department_name=DEPARTMENT_NAME))
        yield client


# ---- feeding pushes as exchange forwards them ---------------------------------------------------
def forwarded(model: type, department: str, data: dict[str, Any], *, event_id: str | None = None,
              occurred_at: datetime | None = None) -> CloudEvent:  # fmt: skip
    """The event exchange publishes for one verified push of ``department``."""
    number = next(_ids)
    now = datetime(2026, 11, 2, 10, tzinfo=CHINA)
    event = model(push_id=f"push-{number}", department=department, partner=f"{department.lower()}-system",
                  event_id=event_id or f"evt-{number}", occurred_at=occurred_at or now, received_at=now, data=data)  # fmt: skip
    return envelope(event, source="/yiwang/exchange", subject=event.push_id)


def decision(department: str, case_no: str, action: str, **more: Any) -> CloudEvent:
    return forwarded(DepartmentCaseDecision, department, {"case_no": case_no, "action": action, **more})


def progress(department: str, case_id: str, step: str, *, matter: str = "SCJG-001", applicant: str = ZHANG_SAN,
             kind: str = "person", at: datetime | None = None, **more: Any) -> CloudEvent:  # fmt: skip
    data = {"department_case_id": case_id, "matter_code": matter, "applicant": applicant, "applicant_kind": kind,
            "step": step, **more}  # fmt: skip
    return forwarded(DepartmentCaseProgress, department, data, occurred_at=at)


def department_consumer(client):
    """The consumer main.py wires for department pushes (not started here: ``apply`` drives it)."""
    settings = client.app.state.settings.model_copy(update={"consume_department_events": True})
    built = consumers_for(settings)(client.app)
    return next(c for c in built if c.durable == "caseflow-department-pushes")


async def apply(client, event: CloudEvent) -> dict[str, Any] | None:
    """Apply the event as the consumer does (inbox + handler in one transaction); the settlement
    written for its push (None when the event was applied before: the inbox had it)."""
    consumer = department_consumer(client)
    applied = await consumer._apply_once(event, consumer.handlers[event.type])  # noqa: SLF001 - the consumer's path
    settled = await settlements(client, event.data["push_id"])
    assert len(settled) == 1, settled  # exactly one, however often applied
    return settled[0] if applied else None


async def settlements(client, push_id: str) -> list[dict[str, Any]]:
    return [e for e in await events(client, "push.settled") if e["push_id"] == push_id]


async def events(client, kind: str) -> list[dict[str, Any]]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.event_type, outbox.table.c.payload)
                                      .order_by(outbox.table.c.id))).all()  # fmt: skip
    return [json.loads(p)["data"] for t, p in rows if t == f"yiwang.caseflow.{kind}.v1"]


async def state_of(client, case_no: str) -> tuple[str, int, int, int]:
    """(state, version, timeline lines, outbox rows): what a refusal must leave as it was."""
    async with client.app.state.sessionmaker() as session:
        case = (await session.execute(select(Case).where(Case.case_no == case_no))).scalar_one()
        lines = (await session.execute(select(func.count()).where(CaseEvent.case_id == case.id))).scalar_one()
        rows = (await session.execute(select(func.count()).select_from(outbox.table))).scalar_one()
        return case.state, case.version, lines, rows


async def refused(client, event: CloudEvent, case_no: str | None, rule: str, field: str | None = None) -> dict:
    """The push is refused with ``rule`` and the case is as it was (besides the one settlement)."""
    before = await state_of(client, case_no) if case_no else None
    settled = await apply(client, event)
    assert settled["outcome"] == "refused", settled
    assert settled["problem"]["rule"] == rule, settled["problem"]
    if field:
        assert settled["problem"]["field"] == field, settled["problem"]
    if case_no:
        state, version, lines, rows = await state_of(client, case_no)
        assert (state, version, lines, rows) == (before[0], before[1], before[2], before[3] + 1)
    return settled


# ---- decisions on platform cases ----------------------------------------------------------------
async def test_the_departments_system_accepts_and_approves_a_platform_case(caseflow):
    case = await submit(caseflow)
    number = case["case_no"]
    settled = await apply(caseflow, decision("SCJGJ", number, "accept"))
    assert (settled["outcome"], settled["case_no"], settled["problem"]) == ("applied", number, None)
    assert settled["department"] == "SCJGJ" and settled["push_type"] == "case.decision"
    detail = (await caseflow.get(f"/cases/{number}", headers=officer("acceptor"))).json()
    assert detail["state"] == "accepted" and detail["accepted_on"] == "2026-11-02"
    assert detail["deadlines"]["decision"]["due"] == "2026-11-05"  # promised 3 working days, as for any case
    line = detail["timeline"][-1]
    assert line["actor"] == "system:SCJGJ" and line["action"] == "accept"
    assert line["detail"]["by"] == {"department": "SCJGJ", "name": DEPARTMENT_NAME}  # the catalog's name
    accepted = (await events(caseflow, "case.accepted"))[-1]
    assert accepted["applicant"] == ZHANG_SAN and accepted["branches"] == [] and accepted["actor"] == "system:SCJGJ"

    settled = await apply(caseflow, decision("SCJGJ", number, "approve", reason="符合法定条件"))
    assert settled["outcome"] == "applied"
    approved = (await events(caseflow, "case.approved"))[-1]
    # The usual event: licence issues the business licence to the holder as after an officer's approval.
    assert approved["case_no"] == number and approved["result_licence_type"] == "business_licence"
    assert approved["applicant"] == ZHANG_SAN and approved["applicant_name"] == "张三"
    assert approved["reason"] == "符合法定条件"
    async with caseflow.app.state.sessionmaker() as session:
        texts = (await session.execute(select(Notification.template).order_by(Notification.id))).scalars().all()
    assert texts[-2:] == ["accept", "approve"]  # the applicant is told as for an officer's steps


async def test_another_departments_system_is_refused_and_changes_nothing(caseflow):
    case = await submit(caseflow)
    problem = await refused(caseflow, decision("SWJ", case["case_no"], "accept"), case["case_no"], "not_own_case")
    assert problem["case_no"] is None and problem["department"] == "SWJ"


async def test_a_step_the_state_machine_does_not_allow_is_refused(caseflow):
    case = await submit(caseflow)
    number = case["case_no"]
    await refused(caseflow, decision("SCJGJ", number, "approve"), number, "transition")
    await refused(caseflow, decision("SCJGJ", number, "deny", reason="不符合"), number, "transition")
    await refused(caseflow, decision("SCJGJ", number, "reject"), number, "required", "data.reason")
    await refused(caseflow, decision("SCJGJ", number, "reject", reason="材料\u202e不全"), number,
                  "no_control_characters", "data.reason")  # fmt: skip
    await refused(caseflow, decision("SCJGJ", number, "request_correction", items=[{"material": "户口本",
                  "problem": "缺"}]), number, "known_material", "data.items")  # fmt: skip
    await refused(caseflow, decision("SCJGJ", "32080220261102999999X", "accept"), None, "not_found", "data.case_no")


async def test_a_second_correction_is_refused_and_on_the_ledger(caseflow):
    case = await submit(caseflow)
    items = [{"material": "经营场所租赁合同", "problem": "不清晰"}]
    assert (await apply(caseflow, decision("SCJGJ", case["case_no"], "request_correction", items=items)))[
        "outcome"] == "applied"  # fmt: skip
    resubmitted = await caseflow.post(f"/cases/{case['case_no']}/resubmit", json={}, headers=person())
    assert resubmitted.status_code == 200, resubmitted.text
    await refused(caseflow, decision("SCJGJ", case["case_no"], "request_correction", items=items), None, "transition")
    async with caseflow.app.state.sessionmaker() as session:
        steps = (await session.execute(select(SupervisionWarning.step))).scalars().all()
    assert steps == ["second_correction"]


async def test_parallel_departments_get_their_branch_and_decide_it_by_push(caseflow):
    await add_matter(caseflow, matter_definition("JOINT-1", parallel_departments=["GAJ"], promised_limit_days=None))
    case = await submit(caseflow, matter_code="JOINT-1")
    number = case["case_no"]
    await apply(caseflow, decision("SCJGJ", number, "accept"))
    accepted = (await events(caseflow, "case.accepted"))[-1]
    assert accepted["branches"] == ["GAJ"]
    (assigned,) = await events(caseflow, "case.branch_assigned")
    assert (assigned["case_no"], assigned["branch_department"], assigned["department"]) == (number, "GAJ", "SCJGJ")
    assert assigned["applicant"] == ZHANG_SAN and assigned["due_on"]  # the joint-handling limit
    # The branch's system decides only its branch; the lead's steps are not its own.
    await refused(caseflow, decision("GAJ", number, "accept"), number, "not_own_case")
    await refused(caseflow, decision("SCJGJ", number, "approve"), number, "transition")  # the branch is pending
    assert (await apply(caseflow, decision("GAJ", number, "approve")))["outcome"] == "applied"
    detail = await caseflow.get(f"/cases/{number}", headers=officer("decider"))
    branch = detail.json()["branches"][0]
    assert (branch["state"], branch["decided_by"]) == ("approved", "system:GAJ")
    await refused(caseflow, decision("GAJ", number, "approve"), number, "transition")  # decided already
    assert (await apply(caseflow, decision("SCJGJ", number, "approve")))["outcome"] == "applied"


# ---- progress of cases handled in the department's own system ----------------------------------
async def test_progress_mirrors_a_case_the_applicant_follows_like_any_other(caseflow):
    settled = await apply(caseflow, progress("SCJGJ", "SC-2026-0001", "received"))
    assert settled["outcome"] == "applied" and settled["push_type"] == "case.progress"
    number = settled["case_no"]
    # The applicant's own list and detail (with the query code), from the verified login.
    mine = (await caseflow.get("/cases", headers=person())).json()
    assert number in [c["case_no"] for c in mine["items"]]
    detail = (await caseflow.get(f"/cases/{number}", headers=person())).json()
    assert detail["state"] == "submitted" and detail["allowed_actions"] == []
    assert detail["applicant"]["subject"] == ZHANG_SAN and detail["applicant"]["name"] is None  # no verified name
    assert detail["deadlines"]["acceptance"]["due"] and detail["due_on"]  # clocks as for any case
    code = detail["query_code"]
    first = detail["timeline"][0]
    assert (first["action"], first["actor"], first["detail"]["by"]["name"]) == ("receive", "system:SCJGJ",
                                                                              DEPARTMENT_NAME)  # fmt: skip
    assert first["detail"]["department_case_id"] == "SC-2026-0001"
    # Told as at a submission: the number and the query code.
    async with caseflow.app.state.sessionmaker() as session:
        message = (await session.execute(select(Notification).where(Notification.template == "mirror"))).scalar_one()
    assert message.recipient == ZHANG_SAN and number in message.text and code in message.text
    public = await caseflow.get(f"/progress/{number}", params={"code": code})
    assert public.status_code == 200 and public.json()["state"] == "submitted" and public.json()["applicant"] is None
    (submitted,) = [e for e in await events(caseflow, "case.submitted") if e["case_no"] == number]
    assert submitted["actor"] == "system:SCJGJ" and submitted["applicant"] == ZHANG_SAN

    for step, more, state in (
        ("correction_requested", {"items": [{"material": "经营场所租赁合同", "problem": "缺页"}]}, "correction_requested"),
        ("resubmitted", {}, "resubmitted"),
        ("accepted", {}, "accepted"),
    ):  # fmt: skip
        assert (await apply(caseflow, progress("SCJGJ", "SC-2026-0001", step, **more)))["outcome"] == "applied"
        assert (await caseflow.get(f"/progress/{number}", params={"code": code})).json()["state"] == state
    accepted = (await caseflow.get(f"/cases/{number}", headers=person())).json()
    assert accepted["deadlines"]["decision"]["due"] == "2026-11-05" and accepted["due_on"] == "2026-11-05"
    # The platform's own steps would part it from the department's record.
    response = await act(caseflow, accepted, officer("decider"), "approve")
    assert response.status_code == 409 and response.json()["rule"] == "mirrored"
    withdrawn = await caseflow.post(f"/cases/{number}/withdraw", headers=person())
    assert withdrawn.status_code == 409
    pickup = {"sender": "张三", "phone": "13800138000", "division_code": "320802", "address": "淮安市清江浦区1号",
              "items": ["经营场所租赁合同"]}  # fmt: skip
    asked = await caseflow.post(f"/cases/{number}/pickups", json=pickup, headers=keyed(person()))
    assert asked.status_code == 409 and asked.json()["rule"] == "mirrored"

    assert (await apply(caseflow, progress("SCJGJ", "SC-2026-0001", "approved")))["outcome"] == "applied"
    approved = [e for e in await events(caseflow, "case.approved") if e["case_no"] == number]
    assert approved[0]["result_licence_type"] is None  # the certificate is the department's own push
    assert (await apply(caseflow, progress("SCJGJ", "SC-2026-0001", "completed")))["outcome"] == "applied"
    steps = (await caseflow.get(f"/progress/{number}", params={"code": code})).json()["steps"]
    assert [s["to_state"] for s in steps] == ["submitted", "correction_requested", "resubmitted", "accepted",
                                              "approved", "completed"]  # fmt: skip
    # After completion nothing moves it.
    await refused(caseflow, progress("SCJGJ", "SC-2026-0001", "accepted"), number, "transition")


async def test_mirrored_cases_are_supervised_like_any_case(caseflow):
    number = (await apply(caseflow, progress("SCJGJ", "SC-7", "received")))["case_no"]
    await apply(caseflow, progress("SCJGJ", "SC-7", "accepted"))  # decision due Thu Nov 5
    maker, ctx = caseflow.app.state.sessionmaker, caseflow.app.state.caseflow
    for day in (3, 6):
        await run_supervision_once(maker, ctx, datetime(2026, 11, day, 9, tzinfo=CHINA).astimezone(UTC))
    async with maker() as session:
        rows = (await session.execute(select(SupervisionWarning.case_no, SupervisionWarning.step,
                                             SupervisionWarning.level).order_by(SupervisionWarning.id))).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [(number, "decision", "yellow"), (number, "decision", "red")]


async def test_a_late_push_counts_from_when_it_happened(caseflow):
    caseflow.clock.set(date(2026, 11, 4))
    received = datetime(2026, 11, 2, 15, tzinfo=CHINA)
    number = (await apply(caseflow, progress("SCJGJ", "SC-8", "received", at=received)))["case_no"]
    assert number[6:14] == "20261102"  # the day of receipt, as for any case
    detail = (await caseflow.get(f"/cases/{number}", headers=person())).json()
    assert detail["received_on"] == "2026-11-02"
    future = datetime(2026, 11, 20, 9, tzinfo=CHINA)
    await apply(caseflow, progress("SCJGJ", "SC-8", "accepted", at=future))
    assert (await caseflow.get(f"/cases/{number}", headers=person())).json()["accepted_on"] == "2026-11-04"


async def test_progress_pushes_caseflow_refuses(caseflow):
    other = matter_definition("SWJ-1", department="SWJ", name="税务登记", department_name="税务局")
    await add_matter(caseflow, other)
    await refused(caseflow, progress("SCJGJ", "SC-9", "received", matter="SWJ-1"), None, "not_own_matter")
    await refused(caseflow, progress("SCJGJ", "SC-9", "received", matter="NOPE"), None, "published",
                  "data.matter_code")  # fmt: skip
    await refused(caseflow, progress("SCJGJ", "SC-9", "received", applicant="110105194912310020"), None, "checksum",
                  "data.applicant")  # fmt: skip
    await refused(caseflow, progress("SCJGJ", "SC-9", "received", applicant=COMPANY, kind="enterprise"), None,
                  "audience")  # fmt: skip
    await refused(caseflow, progress("SCJGJ", "SC-9", "accepted"), None, "not_found", "data.department_case_id")
    async with caseflow.app.state.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Case))).scalar_one() == 0
    number = (await apply(caseflow, progress("SCJGJ", "SC-9", "received")))["case_no"]
    await refused(caseflow, progress("SCJGJ", "SC-9", "received"), number, "transition")
    await refused(caseflow, progress("SCJGJ", "SC-9", "approved"), number, "transition")
    await refused(caseflow, progress("SCJGJ", "SC-9", "rejected"), number, "required", "data.reason")
    await refused(caseflow, progress("SCJGJ", "SC-9", "accepted", applicant="110105194912310037"), number,
                  "same_applicant")  # fmt: skip
    # Another department's case id space is its own: the same id there is another case.
    assert (await apply(caseflow, progress("SWJ", "SC-9", "received", matter="SWJ-1")))["outcome"] == "applied"


# ---- over NATS: a redelivered push settles once -------------------------------------------------
async def test_a_redelivered_push_settles_once(database_url, nats_server, tmp_path):
    async with running_caseflow(database_url, nats_server.url, tmp_path, consume_department_events=True) as client:
        case = await submit(client)
        event = decision("SCJGJ", case["case_no"], "accept")
        bus = Bus(nats_server.url, name="exchange", streams={"EXCHANGE": ["exchange.>"]})
        await bus.start()
        await bus.wait_connected(10)
        try:
            js = await bus.jetstream()
            for msg_id in (event.id, event.id + "-again"):  # a second copy JetStream does not drop
                await js.publish(DepartmentCaseDecision.nats_subject, event.model_dump_json().encode(),
                                 headers={"Nats-Msg-Id": msg_id})  # fmt: skip
            marker = decision("SWJ", case["case_no"], "accept")  # after both: its settlement means both were seen
            await js.publish(DepartmentCaseDecision.nats_subject, marker.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": marker.id})  # fmt: skip
            for _ in range(300):
                if await settlements(client, marker.data["push_id"]):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the pushes were not consumed")
        finally:
            await bus.close()
        (settled,) = await settlements(client, event.data["push_id"])
        assert settled["outcome"] == "applied"
        assert len([e for e in await events(client, "case.accepted") if e["case_no"] == case["case_no"]]) == 1
        async with client.app.state.sessionmaker() as session:
            seen = (await session.execute(select(func.count()).select_from(inbox)
                                          .where(inbox.c.event_id == event.id))).scalar_one()  # fmt: skip
        assert seen == 1
        assert (await client.get(f"/cases/{case['case_no']}", headers=officer("acceptor"))).json()["version"] == 2
        (marked,) = await settlements(client, marker.data["push_id"])
        assert marked["outcome"] == "refused" and marked["problem"]["rule"] == "not_own_case"
