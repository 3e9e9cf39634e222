"""POST /checks (caseflow, signed), issuing from caseflow.case.approved exactly once, the expiry timer."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import date

from sqlalchemy import func, select

from contracts.events.caseflow import CaseApproved
from kit.events import envelope
from services.licence.expiry import run_expiry_once
from services.licence.handlers import CASE_APPROVED
from services.licence.models import Licence, inbox, outbox
from services.licence.tests.conftest import COMPANY, LI_SI, ZHANG_SAN, issue, officer, person, signed


def check_body(licence: dict, **changes) -> dict:
    body = {"identifier": licence["identifier"], "licence_type": licence["licence_type"], "holder": licence["holder"],
            "case_no": "371400-20261102-0001", "material": "食品经营许可证"}  # fmt: skip
    body.update(changes)
    return body


async def post_check(client, body: dict, **sign):
    raw, headers = signed(body, **sign)
    return await client.post("/checks", content=raw, headers=headers)


async def test_checks_answer_log_and_refuse_by_rule(licence):
    food = await issue(licence)
    ok = await post_check(licence, check_body(food))
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"identifier": food["identifier"], "licence_type": "food_business_licence",
                         "number": food["number"], "holder": COMPANY, "holder_name": "德州某某餐饮有限公司",
                         "status": "valid", "version": 1, "valid_until": "2031-11-01"}  # fmt: skip
    log = (await licence.get(f"/licences/{food['identifier']}/access-log", headers=_holder())).json()
    assert log["items"] == [{"reader": "caseflow", "reader_kind": "service", "case_no": "371400-20261102-0001",
                             "purpose": "material:食品经营许可证", "at": log["items"][0]["at"],
                             "action": "read", "channel": None, "device": None}]  # fmt: skip

    async def rule(body) -> tuple[int, str]:
        response = await post_check(licence, body)
        return response.status_code, response.json()["errors"][0]["rule"]

    assert await rule(check_body(food, identifier=food["identifier"][:-1] + "0")) == (422, "not_found")
    refused = await post_check(licence, check_body(food, holder=ZHANG_SAN))
    assert refused.json()["errors"][0]["rule"] == "holder" and COMPANY not in refused.text
    assert await rule(check_body(food, licence_type="business_licence")) == (422, "licence_type")
    await licence.post(f"/licences/{food['identifier']}/suspend", json={"reason": "检查"}, headers=officer())
    assert await rule(check_body(food)) == (422, "status")
    log = (await licence.get(f"/licences/{food['identifier']}/access-log", headers=_holder())).json()
    assert log["total"] == 1  # refusals disclose nothing, so nothing was read


def _holder():
    from services.licence.tests.conftest import enterprise

    return enterprise()


async def test_checks_need_a_fresh_valid_signature_used_once(licence):
    food = await issue(licence)
    body = check_body(food)
    assert (await post_check(licence, body, secret="wrong")).status_code == 401
    assert (await post_check(licence, body, key_id="someone")).status_code == 401
    assert (await post_check(licence, body, timestamp=1_000_000)).json()["reason"] == "stale"
    unsigned = await licence.post("/checks", json=body)
    assert unsigned.status_code == 401 and unsigned.json()["reason"] == "missing"
    raw, headers = signed(body)
    assert (await licence.post("/checks", content=raw, headers=headers)).status_code == 200
    replay = await licence.post("/checks", content=raw, headers=headers)
    assert replay.status_code == 401 and replay.json()["reason"] == "replay"
    tampered = raw.replace(b"0001", b"0002")
    assert (
        await licence.post("/checks", content=tampered, headers={**headers, "X-Nonce": "n" * 20})
    ).status_code == 401
    # a person's token is no signature
    assert (await licence.post("/checks", json=body, headers=person())).status_code == 401


def approval(case_no: str = "371400-20261102-0007", **changes) -> CaseApproved:
    data = dict(
        case_no=case_no, matter_code="SCJGJ-XK-0003", matter_version=1, department="SCJGJ", state="approved",
        at="2026-11-02T02:00:00Z", actor="officer:scjgj.decider", applicant=COMPANY,
        result_licence_type="food_business_licence", applicant_kind="enterprise", applicant_name="德州某某餐饮有限公司",
        form={"enterprise_name": "德州某某餐饮有限公司", "address": "德州市德城区新华路1号", "uscc": COMPANY,
              "registered_capital": 50},
        approved_on="2026-11-02",
    )  # fmt: skip
    data.update(changes)
    return CaseApproved.model_validate(data)


async def consume(client, event) -> None:
    """Apply one event the way the JetStream consumer does (inbox row + handler, one transaction)."""
    from kit.consumer import EventConsumer
    from services.licence.handlers import case_approved_handler

    consumer = EventConsumer(bus=None, sessionmaker=client.app.state.sessionmaker, inbox=inbox,  # type: ignore[arg-type]
                             durable="licence-case-approvals", stream="CASEFLOW", filter_subject="caseflow.case.approved",
                             handlers={})  # fmt: skip
    await consumer._apply_once(event, case_approved_handler(lambda: client.app.state.licence))


async def licences_of(client, case_no: str) -> list[Licence]:
    async with client.app.state.sessionmaker() as session:
        return list((await session.execute(select(Licence).where(Licence.case_no == case_no))).scalars())


async def test_an_approved_case_issues_its_licence_once(licence):
    event = envelope(approval(), source="yiwang/caseflow", subject="371400-20261102-0007")
    assert event.type == CASE_APPROVED
    await consume(licence, event)
    await consume(licence, event)  # redelivered: the inbox drops it
    same_case_new_id = envelope(approval(), source="yiwang/caseflow")
    await asyncio.gather(consume(licence, same_case_new_id),
                         consume(licence, envelope(approval(), source="yiwang/caseflow")))  # fmt: skip
    [issued] = await licences_of(licence, "371400-20261102-0007")
    assert issued.source == "case" and issued.holder == COMPANY and issued.holder_name == "德州某某餐饮有限公司"
    # only the fields the type's schema names, taken from the form
    assert json.loads(issued.data) == {"enterprise_name": "德州某某餐饮有限公司", "address": "德州市德城区新华路1号",
                                       "registered_capital": 50}  # fmt: skip
    async with licence.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.payload))).scalars().all()
    issued_events = [json.loads(p)["data"] for p in rows]
    assert len(issued_events) == 1 and issued_events[0]["case_no"] == "371400-20261102-0007"
    assert issued_events[0]["source"] == "case"


async def test_approvals_without_a_licence_or_of_other_departments(licence):
    await consume(licence, envelope(approval("C-1", result_licence_type=None), source="t"))
    await consume(licence, envelope(approval("C-2", result_licence_type="unknown_type"), source="t"))
    # a department that does not issue the type: the type's default issuer does
    await consume(licence, envelope(approval("C-3", department="GAJ"), source="t"))
    # 个体工商户 (a person) gets a business licence numbered by serial
    await consume(licence, envelope(approval("C-4", applicant=ZHANG_SAN, applicant_kind="person", applicant_name="张三",
                                             result_licence_type="business_licence", form={"business_scope": "餐饮"}),
                                    source="t"))  # fmt: skip
    assert await licences_of(licence, "C-1") == [] and await licences_of(licence, "C-2") == []
    [by_default] = await licences_of(licence, "C-3")
    assert by_default.issuer == "SCJGJ"
    [personal] = await licences_of(licence, "C-4")
    assert personal.number == "37140020260000002" and personal.holder_code_type == "111"


async def test_expiry_timer_expires_and_reminds_once_per_window(licence):
    food = await issue(licence)  # valid until 2031-11-01
    other = await issue(licence, holder=LI_SI, holder_name="李四")
    ctx = licence.app.state.licence
    maker = licence.app.state.sessionmaker
    licence.clock.set(date(2031, 10, 1))  # 31 days left: outside the 30-day window
    assert await run_expiry_once(maker, ctx) == {"expired": 0, "expiring": 0}
    licence.clock.set(date(2031, 10, 2))
    assert await run_expiry_once(maker, ctx) == {"expired": 0, "expiring": 2}
    assert await run_expiry_once(maker, ctx) == {"expired": 0, "expiring": 0}  # once per window
    await licence.post(f"/licences/{other['identifier']}/suspend", json={"reason": "检查"}, headers=officer())
    licence.clock.set(date(2031, 11, 1))
    assert await run_expiry_once(maker, ctx) == {"expired": 0, "expiring": 0}  # the last valid day
    licence.clock.set(date(2031, 11, 2))
    assert await run_expiry_once(maker, ctx) == {"expired": 2, "expiring": 0}  # the suspended one too
    assert await run_expiry_once(maker, ctx) == {"expired": 0, "expiring": 0}
    read = await licence.get(f"/licences/{food['identifier']}", headers=_holder())
    assert read.json()["status"] == "expired"
    async with maker() as session:
        kinds = (await session.execute(select(outbox.table.c.event_type, func.count()).group_by(
            outbox.table.c.event_type))).all()  # fmt: skip
    counted = {kind.split(".")[-2]: n for kind, n in kinds}
    assert counted == {"issued": 2, "expiring": 2, "suspended": 1, "expired": 2}
    expiring = await _payloads(licence, "expiring")
    assert {e["days_left"] for e in expiring} == {30}


async def _payloads(client, kind):
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.event_type, outbox.table.c.payload))).all()
    return [json.loads(p)["data"] for t, p in rows if t.endswith(f".{kind}.v1")]


async def test_two_replicas_expiry_timers_at_once_expire_and_remind_each_licence_once(licence):
    for holder, name in ((ZHANG_SAN, "张三"), (LI_SI, "李四"), (ZHANG_SAN, "张三")):
        await issue(licence, holder=holder, holder_name=name)
    ctx = licence.app.state.licence
    maker = licence.app.state.sessionmaker
    ctx_small = dataclasses.replace(ctx, settings=ctx.settings.model_copy(update={"expiry_batch_size": 1}))
    licence.clock.set(date(2031, 10, 2))
    reminded = await asyncio.gather(run_expiry_once(maker, ctx_small), run_expiry_once(maker, ctx_small))
    assert sum(r["expiring"] for r in reminded) == 3
    licence.clock.set(date(2031, 11, 2))
    expired = await asyncio.gather(*(run_expiry_once(maker, ctx_small) for _ in range(3)))
    assert sum(r["expired"] for r in expired) == 3
    async with maker() as session:
        kinds = (await session.execute(select(outbox.table.c.event_type, func.count()).group_by(
            outbox.table.c.event_type))).all()  # fmt: skip
    assert {kind.split(".")[-2]: n for kind, n in kinds} == {"issued": 3, "expiring": 3, "expired": 3}
