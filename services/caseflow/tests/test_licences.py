"""E-licence reuse through caseflow's HTTP API (ADR 0016): materials checked with the licence service
(the sandbox adapter, and the HTTP adapter against a real server on a socket, its signatures
verified with kit.signing), refusals and outages that create nothing, and the licence issued for a
case arriving over NATS once however often it is delivered."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contracts.events.licence import LicenceExpiring, LicenceIssued
from kit.bus import Bus
from kit.events import envelope
from kit.signing import SignatureRejected, verify_request
from kit.testing import serve
from services.caseflow.models import Case, CaseLicence, Notification, inbox
from services.caseflow.tests.conftest import (
    COMPANY,
    LI_SI,
    ZHANG_SAN,
    act,
    add_matter,
    bearer,
    keyed,
    matter_definition,
    officer,
    person,
    running_caseflow,
    submission,
    submit,
    token,
    upload,
)

SECRET = "caseflow-licence-secret-for-tests"


async def case_count(client) -> int:
    async with client.app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(Case))).scalar_one()


async def refused_submission(client, licence_id: str, headers=None) -> dict:
    """A submission giving ``licence_id`` as the ID card: 422, and no case made."""
    headers = headers or person()
    blob = await upload(client, headers)
    body = submission(materials=[{"name": "居民身份证", "licence_id": licence_id}, {"name": "经营场所租赁合同",
                                                                              "blob_id": blob}])  # fmt: skip
    before = await case_count(client)
    response = await client.post("/cases", json=body, headers=keyed(headers))
    assert response.status_code == 422, response.text
    assert await case_count(client) == before
    return response.json()


async def test_a_licence_of_the_applicant_serves_as_the_material(caseflow):
    sandbox = caseflow.app.state.licences
    case = await submit(caseflow)
    card = next(m for m in case["materials"] if m["name"] == "居民身份证")
    assert card == {"name": "居民身份证", "licence_id": "LIC-ID-1", "licence_version": 1, "verified": True,
                    "number": "11010519491231002X-ID", "licence_type": "resident_id_card"}  # fmt: skip
    asked = sandbox.calls[-1]
    assert (asked.holder, asked.licence_type, asked.case_no) == (ZHANG_SAN, "resident_id_card", case["case_no"])
    assert sandbox.access_log[-1].purpose == "material:居民身份证"
    # The applicant reads it back the same way.
    shown = (await caseflow.get(f"/cases/{case['case_no']}", headers=person())).json()
    assert shown["materials"] == case["materials"] and shown["licence"] is None


async def test_an_enterprise_acting_through_its_agent_is_the_holder(caseflow):
    sandbox = caseflow.app.state.licences
    await add_matter(caseflow, matter_definition("SCJG-003", audience=["enterprise"], materials=[
        {"name": "营业执照", "required": True, "forms": ["electronic"], "count": 1, "licence_type": "business_licence"},
    ]))  # fmt: skip
    sandbox.register("LIC-BL-LISI", licence_type="business_licence", holder=LI_SI)  # the agent's own
    agent = bearer(token(COMPANY, kind="enterprise", level=2, actor=LI_SI, scope="caseflow"))
    body = submission(matter_code="SCJG-003", materials=[{"name": "营业执照", "licence_id": "LIC-BL-1"}])
    created = await caseflow.post("/cases", json=body, headers=keyed(agent))
    assert created.status_code == 201, created.text
    assert sandbox.calls[-1].holder == COMPANY  # the principal of the mandate, not the agent
    assert created.json()["materials"][0]["verified"] is True
    body["materials"] = [{"name": "营业执照", "licence_id": "LIC-BL-LISI"}]
    refused = await caseflow.post("/cases", json=body, headers=keyed(agent))
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "materials.0.licence_id", "rule": "holder",
                                         "message": "this e-licence is not held by the applicant"}]  # fmt: skip


async def test_each_refusal_names_the_material_and_the_rule_and_creates_nothing(caseflow):
    sandbox = caseflow.app.state.licences
    sandbox.register("LIC-ID-LISI", licence_type="resident_id_card", holder=LI_SI)
    sandbox.register("LIC-BDC-ZS", licence_type="real_estate_certificate", holder=ZHANG_SAN)
    sandbox.register("LIC-ID-SUSPENDED", licence_type="resident_id_card", holder=ZHANG_SAN, status="suspended")
    sandbox.register("LIC-ID-OLD", licence_type="resident_id_card", holder=ZHANG_SAN, valid_until=date(2026, 11, 1))
    expected = {"LIC-NONE": "not_found", "LIC-ID-LISI": "holder", "LIC-BDC-ZS": "licence_type",
                "LIC-ID-SUSPENDED": "status", "LIC-ID-OLD": "status"}  # fmt: skip
    problems = {licence_id: await refused_submission(caseflow, licence_id) for licence_id in expected}
    for licence_id, rule in expected.items():
        errors = problems[licence_id]["errors"]
        assert [(e["field"], e["rule"]) for e in errors] == [("materials.0.licence_id", rule)], licence_id
    assert LI_SI not in json.dumps(problems["LIC-ID-LISI"])  # a holder refusal never names the holder
    # No number was consumed: the next case is the day's first.
    case = await submit(caseflow)
    assert case["case_no"][6:20] == "20261102000001"


async def test_every_refused_licence_is_listed_in_one_answer(caseflow):
    await add_matter(caseflow, matter_definition("SCJG-004", materials=[
        {"name": "居民身份证", "required": True, "forms": ["electronic"], "count": 1, "licence_type": "resident_id_card"},
        {"name": "不动产权证书", "required": True, "forms": ["electronic"], "count": 1,
         "licence_type": "real_estate_certificate"},
    ]))  # fmt: skip
    body = submission(matter_code="SCJG-004", materials=[{"name": "居民身份证", "licence_id": "LIC-NONE"},
                                                         {"name": "不动产权证书", "licence_id": "LIC-ID-1"}])  # fmt: skip
    refused = await caseflow.post("/cases", json=body, headers=keyed(person()))
    assert refused.status_code == 422
    assert [(e["field"], e["rule"]) for e in refused.json()["errors"]] == [
        ("materials.0.licence_id", "not_found"), ("materials.1.licence_id", "licence_type")]  # fmt: skip


async def test_licence_service_down_is_503_and_nothing_is_created(caseflow):
    sandbox = caseflow.app.state.licences
    sandbox.down = True
    blob = await upload(caseflow, person())
    body = submission(materials=[{"name": "居民身份证", "licence_id": "LIC-ID-1"}, {"name": "经营场所租赁合同",
                                                                             "blob_id": blob}])  # fmt: skip
    response = await caseflow.post("/cases", json=body, headers=keyed(person()))
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith("/licence-unavailable") and response.headers["Retry-After"]
    assert await case_count(caseflow) == 0
    sandbox.down = False
    sandbox.fail_first = 1  # an outage that answered 503 (it may have logged a read): that number is a gap
    assert (await caseflow.post("/cases", json=body, headers=keyed(person()))).status_code == 503
    assert await case_count(caseflow) == 0
    case = await submit(caseflow)
    assert case["case_no"][6:20] == "20261102000002"


async def test_a_retry_returns_the_case_without_asking_licence_again(caseflow):
    sandbox = caseflow.app.state.licences
    blob = await upload(caseflow, person())
    body = submission(materials=[{"name": "居民身份证", "licence_id": "LIC-ID-1"}, {"name": "经营场所租赁合同",
                                                                             "blob_id": blob}])  # fmt: skip
    headers = {"Idempotency-Key": "phone-retry-1", **person()}
    first = await caseflow.post("/cases", json=body, headers=headers)
    assert first.status_code == 201
    asked = len(sandbox.calls)
    sandbox.down = True  # even while licence is away, the retry gets its case
    again = await caseflow.post("/cases", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["case_no"] == first.json()["case_no"]
    assert len(sandbox.calls) == asked


async def test_a_resubmitted_licence_is_checked_too(caseflow):
    sandbox = caseflow.app.state.licences
    sandbox.register("LIC-ID-2", licence_type="resident_id_card", holder=ZHANG_SAN, number="ID-2", version=3)
    sandbox.register("LIC-ID-LISI", licence_type="resident_id_card", holder=LI_SI)
    case = await submit(caseflow)
    items = [{"material": "居民身份证", "problem": "证件照片不清晰"}]
    assert (await act(caseflow, case, officer("acceptor"), "request_correction", items=items)).status_code == 200
    url = f"/cases/{case['case_no']}/resubmit"
    refused = await caseflow.post(url, json={"materials": [{"name": "居民身份证", "licence_id": "LIC-ID-LISI"}]},
                                  headers=person())  # fmt: skip
    assert refused.status_code == 422 and refused.json()["errors"][0]["rule"] == "holder"
    assert (await caseflow.get(f"/cases/{case['case_no']}", headers=person())).json()["state"] == "correction_requested"
    done = await caseflow.post(url, json={"materials": [{"name": "居民身份证", "licence_id": "LIC-ID-2"}]},
                               headers=person())  # fmt: skip
    assert done.status_code == 200, done.text
    card = next(m for m in done.json()["materials"] if m["name"] == "居民身份证")
    assert (card["licence_id"], card["licence_version"], card["number"], card["verified"]) == ("LIC-ID-2", 3, "ID-2",
                                                                                             True)  # fmt: skip
    assert sandbox.access_log[-1].case_no == case["case_no"]


# ---- the HTTP adapter against a real licence server ---------------------------------------------
class FakeLicenceServer:
    """A licence service's /checks on a real socket: verifies the signature with kit.signing
    (401 otherwise), answers from ``licences``; ``status`` forces an answer (500, …)."""

    def __init__(self) -> None:
        self.licences: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.status: int | None = None
        self.app = Starlette(routes=[Route("/checks", self.checks, methods=["POST"])])

    async def checks(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            partner, _ = verify_request({"caseflow": [SECRET]}, method=request.method, path=request.url.path,
                                        query=request.url.query, headers=request.headers, body=body,
                                        now=datetime.now(UTC).timestamp(), max_age=300)  # fmt: skip
        except SignatureRejected as rejected:
            self.requests.append({"rejected": rejected.reason})
            return JSONResponse({"type": "bad-signature", "status": 401}, status_code=401)
        asked = json.loads(body)
        self.requests.append({"partner": partner, "headers": dict(request.headers), **asked})
        if self.status is not None:
            return JSONResponse({"status": self.status}, status_code=self.status)
        licence = self.licences.get(asked["identifier"])
        rule = ("not_found" if licence is None else "holder" if licence["holder"] != asked["holder"]
                else "licence_type" if licence["licence_type"] != asked["licence_type"] else None)  # fmt: skip
        if rule:
            return JSONResponse({"status": 422, "errors": [{"field": "identifier", "rule": rule}]}, status_code=422)
        return JSONResponse({**licence, "identifier": asked["identifier"], "status": "valid"})


async def test_the_http_adapter_signs_its_checks_and_maps_every_answer(database_url, nats_server, tmp_path):
    licence = FakeLicenceServer()
    licence.licences["1.2.156.3005.2.11100000000013338W.001.0001"] = {
        "licence_type": "resident_id_card", "number": "110105-0001", "holder": ZHANG_SAN, "holder_name": "张三",
        "version": 2, "valid_until": "2036-01-01",
    }  # fmt: skip
    identifier = "1.2.156.3005.2.11100000000013338W.001.0001"
    async with serve(licence.app, lifespan="off") as url:
        overrides = dict(licence_adapter="http", licence_url=url, licence_secret=SECRET, licence_timeout_seconds=3)
        async with running_caseflow(database_url, nats_server.url, tmp_path, **overrides) as client:
            blob = await upload(client, person())
            body = submission(materials=[{"name": "居民身份证", "licence_id": identifier},
                                         {"name": "经营场所租赁合同", "blob_id": blob}])  # fmt: skip
            created = await client.post("/cases", json=body, headers=keyed(person()))
            assert created.status_code == 201, created.text
            card = created.json()["materials"][0]
            assert (card["number"], card["licence_version"], card["verified"]) == ("110105-0001", 2, True)
            asked = licence.requests[-1]
            assert asked["partner"] == "caseflow" and asked["headers"]["x-partner-id"] == "caseflow"
            assert (asked["holder"], asked["licence_type"], asked["material"], asked["case_no"]) == (
                ZHANG_SAN, "resident_id_card", "居民身份证", created.json()["case_no"])  # fmt: skip

            body["materials"][0]["licence_id"] = "1.2.156.3005.2.unknown"
            refused = await client.post("/cases", json=body, headers=keyed(person()))
            assert refused.status_code == 422 and refused.json()["errors"][0]["rule"] == "not_found"

            body["materials"][0]["licence_id"] = identifier
            licence.status = 500
            assert (await client.post("/cases", json=body, headers=keyed(person()))).status_code == 503
            licence.status = None
            client.app.state.licences._poster._secret = "not-the-secret"  # a key the licence service does not know
            assert (await client.post("/cases", json=body, headers=keyed(person()))).status_code == 503
            assert licence.requests[-1] == {"rejected": "bad-signature"}
            assert await case_count(client) == 1
    # The licence server is gone: no connection is a 503 too, and nothing is created.
    async with running_caseflow(database_url, nats_server.url, tmp_path, licence_adapter="http", licence_url=url,
                                licence_secret=SECRET, licence_timeout_seconds=3) as client:  # fmt: skip
        blob = await upload(client, person())
        body["materials"][1]["blob_id"] = blob
        gone = await client.post("/cases", json=body, headers=keyed(person()))
        assert gone.status_code == 503 and gone.json()["type"].endswith("/licence-unavailable")
        assert await case_count(client) == 1


# ---- the licence issued for a case --------------------------------------------------------------
async def test_the_issued_licence_is_recorded_once_and_shown(database_url, nats_server, tmp_path):
    async with running_caseflow(database_url, nats_server.url, tmp_path, consume_licence_events=True) as client:
        case = await submit(client)
        for role, action in (("acceptor", "accept"), ("reviewer", "review"), ("decider", "approve")):
            assert (await act(client, case, officer(role), action)).status_code == 200
        identifier = f"1.2.156.3005.2.11100000000013338W.002.{datetime.now(UTC):%H%M%S%f}"
        issued = LicenceIssued(identifier=identifier, licence_type="business_licence", number="320802600012345",
                               holder=ZHANG_SAN, holder_kind="person", issuer="SCJGJ", version=1,
                               at=datetime.now(UTC), issued_on=date(2026, 11, 2), valid_until=None,
                               case_no=case["case_no"], source="case")  # fmt: skip
        event = envelope(issued, source="yiwang.licence", subject=identifier)
        again = envelope(issued, source="yiwang.licence", subject=identifier)  # re-announced: another event id
        other = issued.model_copy(update={"identifier": identifier + ".9", "case_no": None, "source": "officer"})
        sentinel = envelope(other, source="yiwang.licence", subject=identifier + ".9")
        bus = Bus(nats_server.url, name="licence", streams={"LICENCE": ["licence.>"]})
        await bus.start()
        await bus.wait_connected(10)
        try:
            js = await bus.jetstream()
            for sent, msg_id in ((event, event.id), (event, event.id + "-redelivered"), (again, again.id),
                                 (sentinel, sentinel.id)):  # fmt: skip
                await js.publish(issued.nats_subject, sent.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id})
            for _ in range(300):  # until the last one is applied (one consumer applies them in order)
                async with client.app.state.sessionmaker() as session:
                    seen = (await session.execute(select(inbox.c.event_id).where(
                        inbox.c.event_id == sentinel.id))).scalar_one_or_none()  # fmt: skip
                if seen:
                    break
                await asyncio.sleep(0.1)
            assert seen, "the licence events were not consumed"
        finally:
            await bus.close()

        async with client.app.state.sessionmaker() as session:
            rows = (await session.execute(select(CaseLicence))).scalars().all()
            texts = (await session.execute(select(Notification.text).where(
                Notification.template == "licence_issued"))).scalars().all()  # fmt: skip
        assert [(r.identifier, r.number) for r in rows] == [(identifier, "320802600012345")]
        assert texts == [f"您的办件{case['case_no']}的电子证照（营业执照）已签发，可在电子证照库中查看和使用。"]
        detail = (await client.get(f"/cases/{case['case_no']}", headers=person())).json()
        assert detail["licence"] == {"identifier": identifier, "number": "320802600012345",
                                     "licence_type": "business_licence", "version": 1, "issued_on": "2026-11-02",
                                     "valid_until": None}  # fmt: skip
        assert [line["action"] for line in detail["timeline"]].count("licence_issued") == 1
        progress = await client.get(f"/progress/{case['case_no']}", params={"code": detail["query_code"]})
        assert progress.status_code == 200
        assert progress.json()["licence"] == {"identifier": identifier, "licence_type": "business_licence"}
        assert "320802600012345" not in progress.text and ZHANG_SAN not in progress.text
        assert "licence_issued" in [s["action"] for s in progress.json()["steps"]]

        # 30 days before it ends, licence reminds: the case's applicant gets one SMS (Art. 50), however
        # often the reminder is delivered; a reminder for a licence of no case of ours tells no one.
        expiring = LicenceExpiring(**issued.model_dump(include=set(LicenceExpiring.model_fields) - {"valid_until",
                                   "days_left"}), valid_until=date(2031, 11, 1), days_left=30)  # fmt: skip
        reminder = envelope(expiring, subject=identifier)
        stranger = envelope(expiring.model_copy(update={"identifier": identifier + ".9"}), subject=identifier + ".9")
        bus = Bus(nats_server.url, name="licence", streams={"LICENCE": ["licence.>"]})
        await bus.start()
        await bus.wait_connected(10)
        try:
            js = await bus.jetstream()
            for sent, msg_id in ((reminder, reminder.id), (reminder, reminder.id + "-again"), (stranger, stranger.id)):
                await js.publish(
                    expiring.nats_subject, sent.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id}
                )
            for _ in range(300):
                async with client.app.state.sessionmaker() as session:
                    seen = (await session.execute(select(inbox.c.event_id).where(
                        inbox.c.event_id == stranger.id))).scalar_one_or_none()  # fmt: skip
                if seen:
                    break
                await asyncio.sleep(0.1)
            assert seen, "the reminders were not consumed"
        finally:
            await bus.close()
        async with client.app.state.sessionmaker() as session:
            reminders = (await session.execute(select(Notification.text).where(
                Notification.template == "licence_expiring"))).scalars().all()  # fmt: skip
        assert reminders == [
            f"您经办件{case['case_no']}取得的电子证照（营业执照）将于2031-11-01到期，如需延续，请在到期30日前申请。"
        ]
