"""The hall (ADR 0026) through caseflow's HTTP API: counter and kiosk submissions (帮办), 统一窗口出件,
fees due and the payment wait, payment's events consumed once, and the fee anomalies."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from contracts.events.licence import LicenceIssued
from contracts.events.payment import OrderPaid, OrderRefunded
from kit.events import CloudEvent, envelope
from services.caseflow.cases import fees, licences
from services.caseflow.main import consumers_for
from services.caseflow.models import Blob, Case, CaseEvent, SupervisionWarning, outbox
from services.caseflow.tests.conftest import (
    SIGNER,
    ZHANG_SAN,
    act,
    add_matter,
    bearer,
    keyed,
    matter_definition,
    officer,
    person,
    submit,
    token,
    upload,
)

HELPER = "officer:hall.counter"
RECEIVER_ID = "110105194912310038"  # valid under GB 11643 (its check character is 8)


def counter_token(subject: str = ZHANG_SAN, *, helper: str = HELPER, helper_name: Any = "王窗口",
                  name: str = "张三") -> dict[str, str]:  # fmt: skip
    """A counter token as identity mints it (ADR 0002 amendment): the person's sub and name, chn
    counter, the officer who verified them in person in ``hlp``."""
    hlp = {"sub": helper, "name": helper_name, "dept": "HALL"}
    return bearer(SIGNER.token(sub=subject, kind="person", lvl=4, name=name, chn="counter", hlp=hlp))


def kiosk_token(subject: str = ZHANG_SAN) -> dict[str, str]:
    return bearer(SIGNER.token(sub=subject, kind="person", lvl=3, name="张三", chn="kiosk", dev="KIOSK-0007"))


def counter_officer(department: str = "HALL", login: str = HELPER, *roles: str) -> dict[str, str]:
    return bearer(token(login, kind="officer", roles=roles or ("counter",), department=department, level=3))


async def outbox_events(client, event_type: str) -> list[dict[str, Any]]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.payload).where(outbox.table.c.event_type == event_type)
                                      .order_by(outbox.table.c.id))).scalars().all()  # fmt: skip
    return [(json.loads(r) if isinstance(r, str) else r)["data"] for r in rows]


async def case_count(client) -> int:
    async with client.app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(Case))).scalar_one()


async def warnings_of(client, case_no: str) -> list[tuple[str, str]]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(SupervisionWarning.step, SupervisionWarning.level)
                                      .where(SupervisionWarning.case_no == case_no))).all()  # fmt: skip
    return sorted((step, level) for step, level in rows)


WINDOW = {"method": "window"}


# ---- channels and 帮办 ----------------------------------------------------------------------------
async def test_a_counter_submission_keeps_the_applicant_and_records_who_helped(caseflow):
    headers = counter_token()
    blob = await upload(caseflow, headers)  # scanned at the counter: an ordinary upload with the counter token
    async with caseflow.app.state.sessionmaker() as session:
        assert (await session.get(Blob, blob)).owner == ZHANG_SAN
    body = {"matter_code": "SCJG-001", "form": {"business_scope": "餐饮服务"}, "delivery": WINDOW,
            "materials": [{"name": "居民身份证", "licence_id": "LIC-ID-1"}, {"name": "经营场所租赁合同", "blob_id": blob}]}  # fmt: skip
    # the helper's name is the token's: a body cannot bring one
    smuggled = await caseflow.post("/cases", json={**body, "helper_name": "假名"}, headers=keyed(headers))
    assert smuggled.status_code == 422
    created = await caseflow.post("/cases", json=body, headers=keyed(headers))
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["applicant"]["subject"] == ZHANG_SAN and case["applicant"]["name"] == "张三"
    assert case["channel"] == "counter" and case["helper"] == {"subject": HELPER, "name": "王窗口"}
    assert case["timeline"][0]["detail"]["helped_by"] == HELPER
    assert case["timeline"][0]["detail"]["helper_name"] == "王窗口"
    [submitted] = [e for e in await outbox_events(caseflow, "yiwang.caseflow.case.submitted.v1")
                   if e["case_no"] == case["case_no"]]  # fmt: skip
    assert (submitted["channel"], submitted["helped_by"], submitted["applicant"]) == ("counter", HELPER, ZHANG_SAN)

    # the applicant sees it as theirs; the department's officers see channel and helper
    mine = await caseflow.get(f"/cases/{case['case_no']}", headers=person())
    assert mine.status_code == 200 and mine.json()["helper"]["name"] == "王窗口"
    seen = (await caseflow.get(f"/cases/{case['case_no']}", headers=officer("acceptor"))).json()
    assert seen["channel"] == "counter" and seen["helper"]["subject"] == HELPER
    # the officer who helped reads it and lists it; another counter officer does neither
    assert (await caseflow.get(f"/cases/{case['case_no']}", headers=counter_officer())).status_code == 200
    other = counter_officer("HALL", "officer:hall.counter2")
    assert (await caseflow.get(f"/cases/{case['case_no']}", headers=other)).status_code == 404
    listed = (await caseflow.get("/counter/cases", headers=counter_officer())).json()
    assert [c["case_no"] for c in listed["items"]] == [case["case_no"]] and listed["items"][0][
        "applicant_name"
    ] == "张三"
    assert (await caseflow.get("/counter/cases", headers=other)).json()["items"] == []
    assert (await caseflow.get("/counter/cases", headers=officer("acceptor"))).status_code == 403


async def test_a_counter_token_without_its_officer_is_refused(caseflow):
    bare = bearer(SIGNER.token(sub=ZHANG_SAN, kind="person", lvl=4, name="张三", chn="counter"))
    response = await caseflow.post("/cases", json={"matter_code": "SCJG-001"} | _minimal(), headers=keyed(bare))
    assert response.status_code == 403 and response.json()["rule"] == "helper"
    assert await case_count(caseflow) == 0


def _minimal() -> dict[str, Any]:
    return {"form": {"business_scope": "餐饮服务"}, "delivery": WINDOW, "materials": []}


async def test_the_channels_of_the_guide_are_kept(caseflow):
    await add_matter(caseflow, matter_definition("KIOSK-1", materials=[], channels=["online", "kiosk"]))
    kiosk = await caseflow.post("/cases", json={"matter_code": "SCJG-001", **_minimal()}, headers=keyed(kiosk_token()))
    assert kiosk.status_code == 403, kiosk.text
    assert (kiosk.json()["type"].endswith("channel-not-allowed"), kiosk.json()["rule"]) == (True, "channels")
    assert "kiosk" in kiosk.json()["detail"]
    counter = await caseflow.post(
        "/cases", json={"matter_code": "KIOSK-1", **_minimal()}, headers=keyed(counter_token())
    )
    assert counter.status_code == 403 and counter.json()["rule"] == "channels"
    assert await case_count(caseflow) == 0
    ok = await caseflow.post("/cases", json={"matter_code": "KIOSK-1", **_minimal()}, headers=keyed(kiosk_token()))
    assert ok.status_code == 201, ok.text
    assert ok.json()["channel"] == "kiosk" and ok.json()["helper"] is None
    await add_matter(caseflow, matter_definition("COUNTER-1", materials=[], channels=["counter"]))
    online = await caseflow.post("/cases", json={"matter_code": "COUNTER-1", **_minimal()}, headers=keyed(person()))
    assert online.status_code == 403 and online.json()["rule"] == "channels"


async def test_a_counter_case_is_not_counted_as_online_in_the_supervision_stats(caseflow):
    """The online share (网办率) counts cases no counter handled: online and kiosk, not 一窗受理."""
    await add_matter(caseflow, matter_definition("ALL-1", materials=[], channels=["online", "counter", "kiosk"]))
    for headers in (person(), counter_token(), kiosk_token()):
        created = await caseflow.post("/cases", json={"matter_code": "ALL-1", **_minimal()}, headers=keyed(headers))
        assert created.status_code == 201, created.text
    stats = (await caseflow.get("/supervision/stats", headers=officer("supervisor", "JCZX"))).json()
    [scjg] = [entry for entry in stats if entry["volume"] == 3]
    assert scjg["online_share"] == round(2 / 3, 4), scjg


# ---- 统一窗口出件 -----------------------------------------------------------------------------------
async def approved(client, **changes: Any) -> dict[str, Any]:
    case = await submit(client, **{"delivery": WINDOW, **changes})
    for role, action in (("acceptor", "accept"), ("reviewer", "review"), ("decider", "approve")):
        response = await act(client, case, officer(role), action)
        assert response.status_code == 200, response.text
    return response.json()


async def issue_licence(client, case_no: str) -> None:
    identifier = f"1.2.156.3005.2.11100000000013338W.002.{uuid.uuid4().hex[:12]}"
    issued = LicenceIssued(identifier=identifier, licence_type="business_licence", number="320802600012345",
                           holder=ZHANG_SAN, holder_kind="person", issuer="SCJGJ", version=1, at=datetime.now(UTC),
                           issued_on=date(2026, 11, 2), valid_until=None, case_no=case_no, source="case")  # fmt: skip
    async with client.app.state.sessionmaker() as session, session.begin():
        await licences.on_licence_issued(session, client.app.state.caseflow,
                                         envelope(issued, source="yiwang.licence", subject=identifier))  # fmt: skip


async def hand_out(client, case_no: str, headers: dict[str, str], body: dict[str, Any]):
    sheet = await client.get(f"/cases/{case_no}/hand-out", headers=headers)
    version = sheet.json()["version"] if sheet.status_code == 200 else 1
    return await client.post(f"/cases/{case_no}/hand-out", json=body, headers={**headers, "If-Match": str(version)})


async def test_a_counter_officer_of_another_department_hands_the_result_out(caseflow):
    case = await approved(caseflow)
    no = case["case_no"]
    window = counter_officer("HALL", "officer:hall.window1")  # no part in the case, not its helper
    sheet = (await caseflow.get(f"/cases/{no}/hand-out", headers=window)).json()
    assert sheet["waiting_for"] == ["licence_issued"] and sheet["applicant"] == "张*"
    early = await hand_out(caseflow, no, window, {"receiver": "applicant"})
    assert early.status_code == 409 and early.json()["rule"] == "licence_issued"
    await issue_licence(caseflow, no)
    # refused: an officer of another department without the counter role; a bad ID number
    assert (await hand_out(caseflow, no, officer("acceptor", "SWJ"), {"receiver": "applicant"})).status_code == 404
    bad = await hand_out(caseflow, no, window, {"receiver": "other", "name": "李四", "id_number": "110105194912310037"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["rule"] == "checksum"
    body = {"receiver": "other", "name": "李四", "id_number": RECEIVER_ID}
    done = await hand_out(caseflow, no, window, body)
    assert done.status_code == 200, done.text
    out = done.json()
    assert out["state"] == "completed" and out["handed_out"]["label"] == "统一窗口出件"
    assert out["handed_out"]["receiver"] == {"received_by": "other", "name": "李*", "id_number": "1101**********0038"}
    detail = (await caseflow.get(f"/cases/{no}", headers=officer("acceptor"))).json()
    assert [line["action"] for line in detail["timeline"]][-2:] == ["complete", "hand_out"]
    async with caseflow.app.state.sessionmaker() as session:
        lines = (await session.execute(select(CaseEvent.detail).where(CaseEvent.case_id == select(Case.id).where(
            Case.case_no == no).scalar_subquery()))).scalars().all()  # fmt: skip
    assert not any(RECEIVER_ID in line for line in lines)  # the full ID number is kept nowhere
    # the same hand-out again: the same answer, nothing changed
    again = await caseflow.post(f"/cases/{no}/hand-out", json=body, headers={**window, "If-Match": "1"})
    assert again.status_code == 200 and again.json()["version"] == out["version"]
    assert len((await caseflow.get(f"/cases/{no}", headers=officer("acceptor"))).json()["timeline"]) == len(
        detail["timeline"]
    )


async def test_hand_out_only_for_window_results_and_the_department_still_completes(caseflow):
    ems = await approved(caseflow, delivery={"method": "ems", "recipient": "张三", "phone": "13800138000",
                                             "address": "江苏省淮安市清江浦区1号"})  # fmt: skip
    await issue_licence(caseflow, ems["case_no"])
    refused = await hand_out(caseflow, ems["case_no"], counter_officer(), {"receiver": "applicant"})
    assert refused.status_code == 409 and refused.json()["rule"] == "window_delivery"
    window = await approved(caseflow)
    completed = await act(caseflow, window, officer("acceptor"), "complete")
    assert completed.status_code == 200 and completed.json()["state"] == "completed"


# ---- fees -----------------------------------------------------------------------------------------
GUIDE_FEES = [{"item": "工本费", "amount_yuan": "80"}, {"item": "证书费", "amount_yuan": "9.5"}]


async def fee_matter(client, code: str = "FEE-1", **payment: Any) -> None:
    await add_matter(client, matter_definition(code, materials=[], fees=GUIDE_FEES,
                                               payment={"due_before": "decision", **payment}))  # fmt: skip


def payment_consumer(client):
    settings = client.app.state.settings.model_copy(update={"consume_payment_events": True})
    return next(c for c in consumers_for(settings)(client.app) if c.durable == "caseflow-payments")


async def deliver(client, event: CloudEvent) -> bool:
    """Apply the event as the consumer does (inbox + handler in one transaction); False: seen before."""
    consumer = payment_consumer(client)
    return await consumer._apply_once(event, consumer.handlers[event.type])  # noqa: SLF001 - the consumer's path


def paid(case_no: str, *, items: list[dict[str, Any]] | None = None, order: str = "ORD-1") -> CloudEvent:
    items = (
        items if items is not None else [{"item": "工本费", "amount_fen": 8000}, {"item": "证书费", "amount_fen": 950}]
    )
    data = OrderPaid(order_id=order, case_no=case_no, department="SCJGJ", payer=ZHANG_SAN,
                     amount_fen=sum(int(i["amount_fen"]) for i in items), items=items,
                     paid_at=datetime(2026, 11, 2, 3, tzinfo=UTC), provider="sandbox", transaction_id="T-1",
                     receipt_no="PJ-2026-000001")  # fmt: skip
    return envelope(data, source="yiwang.payment", subject=order)


def refunded(case_no: str, order: str = "ORD-1") -> CloudEvent:
    data = OrderRefunded(order_id=order, case_no=case_no, department="SCJGJ", amount_fen=8950, reason="withdrawn",
                         refunded_at=datetime(2026, 11, 3, 3, tzinfo=UTC))  # fmt: skip
    return envelope(data, source="yiwang.payment", subject=order)


async def test_fees_due_in_fen_and_approval_waits_for_payment(caseflow):
    await fee_matter(caseflow)
    case = await submit(caseflow, matter_code="FEE-1", materials=[], delivery=WINDOW)
    no = case["case_no"]
    assert case["fees"]["status"] == "due" and case["fees"]["total_fen"] == 8950
    [due] = [e for e in await outbox_events(caseflow, "yiwang.caseflow.case.fees_due.v1") if e["case_no"] == no]
    assert due["items"] == [{"item": "工本费", "amount_fen": 8000, "basis": None},
                            {"item": "证书费", "amount_fen": 950, "basis": None}]  # fmt: skip
    assert (due["total_fen"], due["revision"], due["due_before"], due["applicant"]) == (8950, 1, "decision", ZHANG_SAN)
    assert due["refund_on"] == ["withdrawn", "rejected", "denied"]
    for role, action in (("acceptor", "accept"), ("reviewer", "review")):  # before the decision: not held
        assert (await act(caseflow, case, officer(role), action)).status_code == 200
    decider = officer("decider")
    shown = (await caseflow.get(f"/cases/{no}", headers=decider)).json()
    assert "approve" not in shown["allowed_actions"] and "deny" in shown["allowed_actions"]
    refused = await act(caseflow, case, decider, "approve")
    assert refused.status_code == 409 and refused.json()["type"].endswith("fees-unpaid")
    assert (await caseflow.get(f"/cases/{no}", headers=decider)).json()["version"] == shown["version"]

    event = paid(no)
    assert await deliver(caseflow, event) is True
    assert await deliver(caseflow, event) is False  # redelivered: the inbox drops it
    assert await deliver(caseflow, paid(no)) is True  # the same order announced again (another event id)
    detail = (await caseflow.get(f"/cases/{no}", headers=decider)).json()
    assert [line["action"] for line in detail["timeline"]].count("fees_paid") == 1
    assert detail["fees"]["status"] == "paid" and detail["fees"]["receipt_no"] == "PJ-2026-000001"
    assert "approve" in detail["allowed_actions"]
    assert (await act(caseflow, case, decider, "approve")).json()["state"] == "approved"
    assert await warnings_of(caseflow, no) == []  # paid as the guide says: no anomaly


async def test_an_assessed_matter_takes_the_officers_amounts_while_unpaid(caseflow):
    await fee_matter(caseflow, "FEE-A", assessed=True)
    await fee_matter(caseflow, "FEE-G")
    case = await submit(caseflow, matter_code="FEE-A", materials=[], delivery=WINDOW)
    no = case["case_no"]

    async def assess(items, headers=None, version=None):
        headers = headers or officer("acceptor")
        current = (await caseflow.get(f"/cases/{no}", headers=officer("acceptor"))).json()["version"]
        return await caseflow.post(f"/cases/{no}/fees", json={"items": items, "reason": "按证书数量核定"},
                                   headers={**headers, "If-Match": str(version or current)})  # fmt: skip

    unknown = await assess([{"item": "加急费", "amount_fen": 100}])
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["rule"] == "known_fee_item"
    assert (await assess([{"item": "工本费", "amount_fen": 100}], headers=officer("reviewer"))).status_code == 403
    assert (await assess([{"item": "工本费", "amount_fen": 100}], version=99)).status_code == 409
    above = await assess([{"item": "工本费", "amount_fen": 16000}, {"item": "证书费", "amount_fen": 950}])
    assert above.status_code == 200, above.text
    assert (above.json()["fees"]["revision"], above.json()["fees"]["total_fen"]) == (2, 16950)
    dues = [e for e in await outbox_events(caseflow, "yiwang.caseflow.case.fees_due.v1") if e["case_no"] == no]
    assert [(d["revision"], d["total_fen"]) for d in dues] == [(1, 8950), (2, 16950)]
    assert await warnings_of(caseflow, no) == [("fee_above_guide", "anomaly")]  # allowed, and supervised
    again = await assess([{"item": "工本费", "amount_fen": 17000}])
    assert again.status_code == 200 and await warnings_of(caseflow, no) == [("fee_above_guide", "anomaly")]
    await deliver(caseflow, paid(no, items=[{"item": "工本费", "amount_fen": 17000}]))
    closed = await assess([{"item": "工本费", "amount_fen": 8000}])
    assert closed.status_code == 409 and closed.json()["rule"] == "unpaid"
    guide = await submit(caseflow, matter_code="FEE-G", materials=[], delivery=WINDOW)
    response = await caseflow.post(f"/cases/{guide['case_no']}/fees", json={"items": [{"item": "工本费", "amount_fen": 1}]},
                                   headers={**officer("acceptor"), "If-Match": "1"})  # fmt: skip
    assert response.status_code == 409 and response.json()["rule"] == "assessed"


async def test_paid_items_against_the_guide_are_anomalies_raised_once(caseflow):
    await fee_matter(caseflow)
    case = await submit(caseflow, matter_code="FEE-1", materials=[], delivery=WINDOW)
    odd = paid(case["case_no"], items=[{"item": "工本费", "amount_fen": 9000}, {"item": "加急费", "amount_fen": 500}])
    assert await deliver(caseflow, odd)
    assert await deliver(caseflow, paid(case["case_no"], items=[{"item": "加急费", "amount_fen": 500}], order="ORD-2"))
    assert await warnings_of(caseflow, case["case_no"]) == [("fee_above_guide", "anomaly"),
                                                           ("fee_not_in_guide", "anomaly")]  # fmt: skip
    free = await submit(caseflow, delivery=WINDOW)  # the demo matter's guide lists no fee
    assert free.get("fees") is None
    assert await deliver(caseflow, paid(free["case_no"], items=[{"item": "工本费", "amount_fen": 1000}], order="F"))
    assert await deliver(caseflow, paid(free["case_no"], items=[{"item": "工本费", "amount_fen": 1000}], order="F"))
    assert await warnings_of(caseflow, free["case_no"]) == [("fee_on_free_matter", "anomaly")]
    listed = (await caseflow.get("/supervision/warnings?level=anomaly", headers=officer("supervisor", "JCZX"))).json()
    assert sorted(w["step"] for w in listed["items"]) == ["fee_above_guide", "fee_not_in_guide", "fee_on_free_matter"]
    stats = (await caseflow.get("/supervision/stats", headers=officer("supervisor", "JCZX"))).json()
    assert next(s for s in stats if s["department"] == "SCJGJ")["anomaly"] == 3


async def test_a_paid_fee_not_refunded_after_withdrawal_is_raised_once(caseflow):
    await fee_matter(caseflow)
    kept = await submit(caseflow, matter_code="FEE-1", materials=[], delivery=WINDOW)
    back = await submit(caseflow, matter_code="FEE-1", materials=[], delivery=WINDOW)
    for case, order in ((kept, "ORD-K"), (back, "ORD-B")):
        assert await deliver(caseflow, paid(case["case_no"], order=order))
        withdrawn = await caseflow.post(f"/cases/{case['case_no']}/withdraw", headers=person())
        assert withdrawn.status_code == 200, withdrawn.text
    assert await deliver(caseflow, refunded(back["case_no"], order="ORD-B"))
    assert await deliver(caseflow, refunded(back["case_no"], order="ORD-B")) is True  # re-announced: no change
    detail = (await caseflow.get(f"/cases/{back['case_no']}", headers=person())).json()
    assert detail["fees"]["status"] == "refunded" and detail["fees"]["refunded_fen"] == 8950
    assert [line["action"] for line in detail["timeline"]].count("fees_refunded") == 1

    sessionmaker, ctx = caseflow.app.state.sessionmaker, caseflow.app.state.caseflow
    caseflow.clock.set(date(2026, 11, 9))  # withdrawn Mon 2 Nov: 5 working days run to Mon 9 Nov
    assert await fees.raise_unrefunded(sessionmaker, ctx) == 0
    caseflow.clock.set(date(2026, 11, 10))
    at_once = await asyncio.gather(*(fees.raise_unrefunded(sessionmaker, dataclasses.replace(ctx)) for _ in range(3)))
    assert sum(at_once) == 1  # concurrent timers: one warning
    assert await fees.raise_unrefunded(sessionmaker, ctx) == 0
    assert await warnings_of(caseflow, kept["case_no"]) == [("fee_not_refunded", "anomaly")]
    assert await warnings_of(caseflow, back["case_no"]) == []
    raised = [e for e in await outbox_events(caseflow, "yiwang.caseflow.supervision.warning.v1")
              if e["case_no"] == kept["case_no"]]  # fmt: skip
    assert [e["step"] for e in raised] == ["fee_not_refunded"]


# ---- hostile input --------------------------------------------------------------------------------
HOSTILE = ["\ud800", "a\x00b", "a\nb", "\u202egpj.exe", "x" * 100_000, 10**30, {"a": [1]}, [["x"]]]


async def test_hostile_bodies_and_claims_are_problems_never_500s(caseflow):
    await fee_matter(caseflow, "FEE-H", assessed=True)
    case = await submit(caseflow, matter_code="FEE-H", materials=[], delivery=WINDOW)
    no = case["case_no"]
    window = counter_officer()
    for value in HOSTILE:
        for body in ({"receiver": "other", "name": value, "id_number": RECEIVER_ID},
                     {"receiver": "other", "name": "李四", "id_number": value}, {"receiver": value}):  # fmt: skip
            response = await caseflow.post(f"/cases/{no}/hand-out", content=json.dumps(body).encode(),
                                           headers={**window, "If-Match": "1", "Content-Type": "application/json"})  # fmt: skip
            assert 400 <= response.status_code < 500, (body, response.status_code)
        for item in ({"item": value, "amount_fen": 1}, {"item": "工本费", "amount_fen": value}):
            response = await caseflow.post(f"/cases/{no}/fees", content=json.dumps({"items": [item]}).encode(),
                                           headers={**officer("acceptor"), "If-Match": "1",
                                                    "Content-Type": "application/json"})  # fmt: skip
            assert response.status_code == 422, (item, response.status_code)
    for huge in (-1, 10**11 + 1):
        response = await caseflow.post(f"/cases/{no}/fees", json={"items": [{"item": "工本费", "amount_fen": huge}]},
                                       headers={**officer("acceptor"), "If-Match": "1"})  # fmt: skip
        assert response.status_code == 422
    detail = (await caseflow.get(f"/cases/{no}", headers=officer("acceptor"))).json()
    assert detail["version"] == 1 and detail["fees"]["revision"] == 1
    # a counter token's hlp claim, hostile: a name that is no safe text is not shown; no officer: refused
    for hlp_name in ("a\x00b", "\u202e", 12, None):
        headers = counter_token(helper_name=hlp_name)
        made = await caseflow.post("/cases", json={"matter_code": "FEE-H", **_minimal()}, headers=keyed(headers))
        assert made.status_code == 201 and made.json()["helper"] == {"subject": HELPER, "name": None}
    for hlp in ("officer:x", ["officer:x"], {"sub": 5}, {"sub": "person:x"}, {"sub": "officer:" + "x" * 100}):
        headers = bearer(SIGNER.token(sub=ZHANG_SAN, kind="person", lvl=4, name="张三", chn="counter", hlp=hlp))
        refused = await caseflow.post("/cases", json={"matter_code": "FEE-H", **_minimal()}, headers=keyed(headers))
        assert refused.status_code == 403 and refused.json()["rule"] == "helper", hlp
    odd = bearer(SIGNER.token(sub=ZHANG_SAN, kind="person", lvl=4, name="张三", chn="fax"))
    refused = await caseflow.post("/cases", json={"matter_code": "FEE-H", **_minimal()}, headers=keyed(odd))
    assert refused.status_code == 403 and refused.json()["rule"] == "channel"


# ---- more of the wait, mirrored cases, and concurrency ---------------------------------------------
async def test_fees_due_before_acceptance_hold_acceptance_but_not_rejection_nor_the_law(caseflow):
    from services.caseflow.supervision import run_supervision_once  # noqa: PLC0415

    await fee_matter(caseflow, "FEE-ACC", due_before="acceptance")
    case = await submit(caseflow, matter_code="FEE-ACC", materials=[], delivery=WINDOW)
    shown = (await caseflow.get(f"/cases/{case['case_no']}", headers=officer("acceptor"))).json()
    assert "accept" not in shown["allowed_actions"] and {"reject", "request_correction"} <= set(
        shown["allowed_actions"]
    )
    for action in shown["allowed_actions"]:  # every offered step still succeeds (each on a case of its own)
        fresh = await submit(caseflow, matter_code="FEE-ACC", materials=[], delivery=WINDOW)
        body = {"reject": {"reason": "不符合"}, "request_correction": {"items": [{"material": "form", "problem": "x"}]}}
        assert (await act(caseflow, fresh, officer("acceptor"), action, **body.get(action, {}))).status_code == 200
    refused = await act(caseflow, case, officer("acceptor"), "accept")
    assert refused.status_code == 409 and refused.json()["due_before"] == "acceptance"
    # a department system's push waits the same way
    from services.caseflow.tests.test_department_pushes import apply, decision  # noqa: PLC0415

    settled = await apply(caseflow, decision("SCJGJ", case["case_no"], "accept"))
    assert settled["outcome"] == "refused" and settled["problem"]["type"].endswith("fees-unpaid")
    # Art. 32's deemed acceptance is the law's, not the applicant's debt: it does not wait
    caseflow.clock.set(date(2026, 11, 10))
    await run_supervision_once(caseflow.app.state.sessionmaker, caseflow.app.state.caseflow)
    assert (await caseflow.get(f"/cases/{case['case_no']}", headers=person())).json()["state"] == "accepted"


async def test_a_mirrored_department_case_has_the_department_channel(caseflow):
    from services.caseflow.tests.test_department_pushes import apply, events, progress  # noqa: PLC0415

    assert (await apply(caseflow, progress("SCJGJ", "SC-HALL-1", "received")))["outcome"] == "applied"
    [submitted] = await events(caseflow, "case.submitted")
    assert (submitted["channel"], submitted["helped_by"]) == ("department", None)
    async with caseflow.app.state.sessionmaker() as session:
        assert (await session.execute(select(Case.channel))).scalar_one() == "department"


async def test_concurrent_hand_outs_and_paid_events_apply_once(caseflow):
    await fee_matter(caseflow, "FEE-D", due_before="delivery")
    case = await approved(caseflow, matter_code="FEE-D", materials=[])
    no = case["case_no"]
    await issue_licence(caseflow, no)
    sheet = (await caseflow.get(f"/cases/{no}/hand-out", headers=counter_officer())).json()
    assert sheet["waiting_for"] == ["fees_paid"]
    # the same order announced twice at once: one is recorded; a loser of the race is retried, as the
    # consumer redelivers it, and changes nothing then
    results = await asyncio.gather(*(deliver(caseflow, paid(no, order="ORD-C")) for _ in range(3)),
                                   return_exceptions=True)  # fmt: skip
    for result in results:
        if isinstance(result, BaseException):
            assert await deliver(caseflow, paid(no, order="ORD-C")) is True
    version = (await caseflow.get(f"/cases/{no}/hand-out", headers=counter_officer())).json()["version"]
    windows = [counter_officer("HALL", f"officer:hall.window{i}") for i in range(3)]
    answers = await asyncio.gather(*(
        caseflow.post(f"/cases/{no}/hand-out", json={"receiver": "applicant"}, headers={**w, "If-Match": str(version)})
        for w in windows
    ))  # fmt: skip
    assert {a.status_code for a in answers} <= {200, 409} and 200 in {a.status_code for a in answers}
    timeline = (await caseflow.get(f"/cases/{no}", headers=officer("acceptor"))).json()["timeline"]
    actions = [line["action"] for line in timeline]
    assert (actions.count("fees_paid"), actions.count("complete"), actions.count("hand_out")) == (1, 1, 1)
