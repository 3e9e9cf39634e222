"""秒批秒办 and 零填报 through caseflow's HTTP API (ADR 0027): an instant matter approved within the
submit request with its rule and facts recorded, a failing condition sent to the worklist, an
expired licence failing the licence condition, a fee awaited before the decision, sampling and
the officers' review, and the prefilled form equal to the token's and the licence's facts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from stdnum.cn import ric

from kit.signing import SignatureRejected, verify_request
from kit.testing import serve
from services.caseflow.adapters.licences import SandboxLicences
from services.caseflow.cases import instant
from services.caseflow.models import Case, CaseInstant, SupervisionWarning, outbox
from services.caseflow.tests.conftest import (
    COMPANY,
    LI_SI,
    ZHANG_SAN,
    add_matter,
    bearer,
    keyed,
    matter_definition,
    officer,
    running_caseflow,
    token,
)

RENEWAL = "SCJG-YX"
ELDERLY = "MZ-GLJT"
ENTERPRISE = bearer(token(COMPANY, kind="enterprise", level=3))
AGENT = bearer(token(COMPANY, kind="enterprise", level=3, actor=LI_SI, scope="caseflow"))
RULE = "renewal-unchanged"


def _id_number(birth: str, region: str = "110105") -> str:
    body = f"{region}{birth}001"
    return body + ric.calc_check_digit(body + "0")  # it reads 17 of 18 characters


YOUNG = _id_number("20000101")  # 26 on 2026-11-02
FROM_ELSEWHERE = _id_number("19400101", region="371402")  # 86, but not of 110105


def renewal(**changes) -> dict:
    """J10's matter: an enterprise renews its food business licence (seeded as SCJGJ-XK-0007)."""
    return matter_definition(
        RENEWAL, name="食品经营许可证延续", audience=["enterprise"],
        materials=[{"name": "食品经营许可证", "required": False, "forms": ["electronic"], "count": 1,
                    "licence_type": "food_business_licence"}],
        result={"name": "食品经营许可证", "form": "licence", "licence_type": "food_business_licence",
                "delivery": ["electronic"]},
        fees=[{"item": "许可证书工本费", "amount_yuan": "10"}],
        form_fields=[
            {"name": "enterprise_name", "label": "企业名称", "kind": "text", "required": True, "max_length": 100,
             "prefill": "applicant.name"},
            {"name": "uscc", "label": "统一社会信用代码", "kind": "subject_id", "required": True, "format": "uscc",
             "prefill": "applicant.subject"},
            {"name": "licence_number", "label": "原许可证编号", "kind": "text", "required": True, "max_length": 64,
             "prefill": "licence:food_business_licence.number"},
            {"name": "address", "label": "经营场所", "kind": "address", "required": True, "max_length": 200,
             "prefill": "licence:food_business_licence.data.address"},
            {"name": "business_area", "label": "经营面积", "kind": "number", "required": True, "minimum": 1},
            {"name": "no_change", "label": "经营条件未变化", "kind": "choice", "required": True, "options": ["是", "否"]},
        ],
        instant={"rules": [{"id": RULE, "description": "有效期届满前90日内、条件未变化的延续，即时准予", "conditions": [
            {"fact": "applicant.kind", "op": "eq", "value": "enterprise"},
            {"fact": "licence:food_business_licence.valid", "op": "eq", "value": True},
            {"fact": "licence:food_business_licence.days_left", "op": "le", "value": 90},
            {"fact": "form.no_change", "op": "eq", "value": "是"},
            {"fact": "form.business_area", "op": "le", "value": 500},
        ]}], "sample_rate": 0.0},
    ) | changes  # fmt: skip


def elderly(sample_rate: float = 0.0, **changes) -> dict:
    """A person's matter without fees: 高龄津贴 (seeded as MZJ-GF-0002), its age lowered for the test IDs."""
    return matter_definition(
        ELDERLY, name="高龄津贴申领", department="MZJ", matter_type="行政给付", audience=["person"], materials=[],
        result={"name": "高龄津贴发放", "form": "payment", "delivery": ["electronic"]},
        form_fields=[{"name": "applicant_name", "label": "申请人姓名", "kind": "text", "required": True,
                      "prefill": "applicant.name"},
                     {"name": "applicant_id", "label": "证件号码", "kind": "subject_id", "required": True,
                      "format": "id_number", "prefill": "applicant.subject"}],
        instant={"rules": [{"id": "age-and-residence", "description": "年满75周岁的本区居民，即时核准", "conditions": [
            {"fact": "applicant.kind", "op": "eq", "value": "person"},
            {"fact": "applicant.age", "op": "ge", "value": 75},
            {"fact": "applicant.division", "op": "in", "value": ["110105", "110106"]},
        ]}], "sample_rate": sample_rate},
    ) | changes  # fmt: skip


@pytest.fixture
async def client(database_url, nats_server, tmp_path):
    async with running_caseflow(database_url, nats_server.url, tmp_path, instant_sample_seed="test-seed") as c:
        await add_matter(c, renewal())
        await add_matter(c, elderly())
        yield c


def hold_food_licence(client, *, days_left: int = 60, holder: str = COMPANY, **more) -> str:
    sandbox: SandboxLicences = client.app.state.licences
    today = client.clock().date()
    sandbox.register("FOOD-1", licence_type="food_business_licence", holder=holder, number="JY13714020001234",
                     valid_until=today + timedelta(days=days_left), data={"address": "德州市德城区新湖大街1号"},
                     **more)  # fmt: skip
    return "FOOD-1"


async def prefilled(client, code: str, headers) -> dict:
    response = await client.get(f"/matters/{code}/prefill", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def apply(client, code: str, form: dict, headers, materials=None):
    body = {"matter_code": code, "form": form, "materials": materials or [], "delivery": {"method": "window"}}
    return await client.post("/cases", json=body, headers=keyed(headers))


async def events(client, kind: str) -> list[dict]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.event_type, outbox.table.c.payload))).all()
    return [json.loads(p)["data"] for t, p in rows if f".case.{kind}." in t]


async def stored(client, case_no: str) -> CaseInstant:
    async with client.app.state.sessionmaker() as session:
        return (await session.execute(select(CaseInstant).where(CaseInstant.case_no == case_no))).scalar_one()


# ---- 零填报 ---------------------------------------------------------------------------------------
async def test_prefill_comes_from_the_token_and_the_licence_and_submits_unchanged(client):
    hold_food_licence(client)
    answer = await prefilled(client, RENEWAL, ENTERPRISE)
    assert answer["form"] == {"enterprise_name": "淮安某某餐饮有限公司", "uscc": COMPANY,
                              "licence_number": "JY13714020001234", "address": "德州市德城区新湖大街1号"}  # fmt: skip
    assert answer["sources"] == {"enterprise_name": "applicant.name", "uscc": "applicant.subject",
                                 "licence_number": "licence:food_business_licence.number",
                                 "address": "licence:food_business_licence.data.address"}  # fmt: skip
    # an agent acting for the enterprise gets the enterprise's; the request cannot change a value
    assert (await client.get(f"/matters/{RENEWAL}/prefill?enterprise_name=X", headers=AGENT)).json() == answer
    # the applicant confirms, adds what only she knows, and submits the prefilled values unchanged
    form = {**answer["form"], "business_area": 120, "no_change": "是"}
    submitted = await apply(client, RENEWAL, form, ENTERPRISE)
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["form"] == form
    sandbox: SandboxLicences = client.app.state.licences
    assert ("caseflow", f"prefill:{RENEWAL}") in {(r.reader, r.purpose) for r in sandbox.access_log}


async def test_prefill_leaves_blank_what_no_verified_source_has(client):
    answer = await prefilled(client, RENEWAL, ENTERPRISE)  # no licence held
    assert set(answer["form"]) == {"enterprise_name", "uscc"} and not answer["licences_unavailable"]
    client.app.state.licences.down = True
    down = await prefilled(client, RENEWAL, ENTERPRISE)
    assert down["licences_unavailable"] and set(down["form"]) == {"enterprise_name", "uscc"}
    person = await prefilled(client, ELDERLY, bearer(token(ZHANG_SAN, level=2)))
    assert person["form"] == {"applicant_name": "张三", "applicant_id": ZHANG_SAN}
    refused = await client.get(f"/matters/{RENEWAL}/prefill", headers=bearer(token(ZHANG_SAN, level=2)))
    assert refused.status_code == 403 and refused.json()["rule"] == "audience"
    assert (await client.get("/matters/NOPE-1/prefill", headers=ENTERPRISE)).status_code == 404
    assert (await client.get(f"/matters/{RENEWAL}/prefill", headers=officer("acceptor"))).status_code == 403
    assert (await client.get(f"/matters/{RENEWAL}/prefill")).status_code == 401


# ---- 秒批 -----------------------------------------------------------------------------------------
def renewal_form(**changes) -> dict:
    form = {"enterprise_name": "淮安某某餐饮有限公司", "uscc": COMPANY, "licence_number": "JY13714020001234",
            "address": "德州市德城区新湖大街1号", "business_area": 120, "no_change": "是"}  # fmt: skip
    return {**form, **changes}


async def test_an_instant_matter_is_approved_within_the_submit_request(client):
    licence = hold_food_licence(client, days_left=60)
    response = await apply(client, RENEWAL, renewal_form(), ENTERPRISE,
                           materials=[{"name": "食品经营许可证", "licence_id": licence}])  # fmt: skip
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["state"] == "approved" and case["accepted_on"] == case["decided_on"] == "2026-11-02"
    decided = case["timeline"][-1]
    assert (decided["action"], decided["actor"], decided["from_state"], decided["to_state"]) == (
        "instant_approve", "system", "submitted", "approved")  # fmt: skip
    assert decided["detail"]["rule"] == RULE and decided["detail"]["description"].startswith("有效期届满前90日内")
    assert decided["detail"]["facts"] == {
        "applicant.kind": "enterprise", "licence:food_business_licence.valid": True,
        "licence:food_business_licence.days_left": 60, "form.no_change": "是", "form.business_area": 120,
    }  # fmt: skip
    approved = await events(client, "approved")
    assert len(approved) == 1 and approved[0]["automatic"] is True and approved[0]["rule"] == RULE
    assert approved[0]["result_licence_type"] == "food_business_licence" and approved[0]["form"]["address"]
    assert len(await events(client, "accepted")) == 1
    row = await stored(client, case["case_no"])
    assert (row.status, row.rule, row.sampled) == ("approved", RULE, False)
    again = (await client.get(f"/cases/{case['case_no']}", headers=ENTERPRISE)).json()
    assert again["state"] == "approved" and again["timeline"][-1]["action"] == "instant_approve"


async def test_a_failing_condition_goes_to_the_worklist_with_the_failures_recorded(client):
    hold_food_licence(client, days_left=60)
    response = await apply(client, RENEWAL, renewal_form(business_area=800), ENTERPRISE)
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["state"] == "submitted" and case["decided_on"] is None
    note = case["timeline"][-1]
    assert (note["action"], note["actor"], note["to_state"]) == ("instant_check", "system", "submitted")
    [rule] = note["detail"]["failed"]
    assert rule["rule"] == RULE and [(f["fact"], f["actual"]) for f in rule["failed"]] == [("form.business_area", 800)]
    assert not await events(client, "approved")
    worklist = (await client.get("/worklist", headers=officer("acceptor"))).json()
    assert case["case_no"] in {c["case_no"] for c in worklist["items"]}
    seen = (await client.get(f"/cases/{case['case_no']}", headers=officer("acceptor"))).json()
    assert seen["timeline"][-1]["detail"]["failed"][0]["failed"][0]["fact"] == "form.business_area"
    assert (await stored(client, case["case_no"])).status == "referred"


@pytest.mark.parametrize(
    ("days_left", "status", "failing"),
    [(-1, "expired", {"licence:food_business_licence.valid": False}),  # -1 ≤ 90 holds
     (30, "suspended", {"licence:food_business_licence.valid": False}),
     (200, "valid", {"licence:food_business_licence.days_left": 200})],
)  # fmt: skip
async def test_an_expired_or_unusable_licence_fails_the_licence_condition(client, days_left, status, failing):
    hold_food_licence(client, days_left=days_left, status=status)
    case = (await apply(client, RENEWAL, renewal_form(), ENTERPRISE)).json()
    assert case["state"] == "submitted"
    failed = {f["fact"]: f["actual"] for f in case["timeline"][-1]["detail"]["failed"][0]["failed"]}
    assert failed == failing


async def test_no_licence_and_no_licence_service_leave_it_to_officers(client):
    case = (await apply(client, RENEWAL, renewal_form(), ENTERPRISE)).json()  # holds none
    assert case["state"] == "submitted"
    hold_food_licence(client)
    client.app.state.licences.down = True
    case = (await apply(client, RENEWAL, renewal_form(), ENTERPRISE)).json()
    assert case["state"] == "submitted" and case["timeline"][-1]["detail"]["licences_unavailable"] is True


async def test_a_person_without_fees_is_approved_on_the_id_number_s_facts(client):
    old = await apply(client, ELDERLY, {"applicant_name": "张三", "applicant_id": ZHANG_SAN},
                      bearer(token(ZHANG_SAN, level=2)))  # fmt: skip
    assert old.status_code == 201 and old.json()["state"] == "approved"
    facts = old.json()["timeline"][-1]["detail"]["facts"]
    assert facts == {"applicant.kind": "person", "applicant.age": 76, "applicant.division": "110105"}
    approved = (await events(client, "approved"))[-1]
    assert approved["automatic"] and approved["rule"] == "age-and-residence" and approved["result_licence_type"] is None
    for subject, fact in ((YOUNG, "applicant.age"), (FROM_ELSEWHERE, "applicant.division")):
        response = await apply(client, ELDERLY, {"applicant_name": "王五", "applicant_id": subject},
                               bearer(token(subject, level=2, name="王五")))  # fmt: skip
        assert response.status_code == 201 and response.json()["state"] == "submitted", response.text
        failed = response.json()["timeline"][-1]["detail"]["failed"][0]["failed"]
        assert [f["fact"] for f in failed] == [fact]


async def test_a_retry_returns_the_approved_case_once(client):
    hold_food_licence(client)
    body = {"matter_code": RENEWAL, "form": renewal_form(), "materials": [], "delivery": {"method": "window"}}
    headers = keyed(ENTERPRISE)
    first = await client.post("/cases", json=body, headers=headers)
    second = await client.post("/cases", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["state"] == "approved" and second.json()["case_no"] == first.json()["case_no"]
    assert len(await events(client, "approved")) == 1


# ---- fees first: the verdict waits for payment ------------------------------------------------------
async def test_a_fee_due_before_the_decision_makes_the_verdict_wait_for_payment(client):
    await add_matter(client, renewal(version=2, payment={"due_before": "decision"}))
    hold_food_licence(client)
    case = (await apply(client, RENEWAL, renewal_form(), ENTERPRISE)).json()
    assert case["state"] == "submitted"
    assert case["timeline"][-1]["detail"] == {"instant": "pending", "rule": RULE, "waiting_for": "payment",
                                              "description": case["timeline"][-1]["detail"]["description"]}  # fmt: skip
    assert not await events(client, "approved")
    ctx = client.app.state.caseflow
    async with client.app.state.sessionmaker() as session, session.begin():
        row = (await session.execute(select(Case).where(Case.case_no == case["case_no"]))).scalar_one()
        assert await instant.decide_pending(session, ctx, row, ctx.current_time()) is True
    async with client.app.state.sessionmaker() as session, session.begin():  # applied once
        row = (await session.execute(select(Case).where(Case.case_no == case["case_no"]))).scalar_one()
        assert await instant.decide_pending(session, ctx, row, ctx.current_time()) is False
    paid = (await client.get(f"/cases/{case['case_no']}", headers=ENTERPRISE)).json()
    assert paid["state"] == "approved" and paid["timeline"][-1]["detail"]["paid"] is True
    assert paid["timeline"][-1]["detail"]["rule"] == RULE
    [approved] = await events(client, "approved")
    assert approved["automatic"] and approved["rule"] == RULE
    assert (await stored(client, case["case_no"])).status == "approved"


async def test_a_withdrawn_case_s_pending_verdict_lapses(client):
    await add_matter(client, renewal(version=2, payment={"due_before": "acceptance"}))
    hold_food_licence(client)
    case = (await apply(client, RENEWAL, renewal_form(), ENTERPRISE)).json()
    withdrawn = await client.post(f"/cases/{case['case_no']}/withdraw", headers={**ENTERPRISE, "If-Match": "1"})
    assert withdrawn.status_code == 200, withdrawn.text
    ctx = client.app.state.caseflow
    async with client.app.state.sessionmaker() as session, session.begin():
        row = (await session.execute(select(Case).where(Case.case_no == case["case_no"]))).scalar_one()
        assert await instant.decide_pending(session, ctx, row, ctx.current_time()) is False
    assert (await stored(client, case["case_no"])).status == "lapsed"
    assert not await events(client, "approved")


# ---- sampling and review ----------------------------------------------------------------------------
DECIDER = officer("decider", "MZJ")


async def test_sampling_flags_about_the_share_and_officers_review_them(client):
    await add_matter(client, elderly(sample_rate=0.3, version=2))
    numbers = []
    for _ in range(60):
        response = await apply(client, ELDERLY, {"applicant_name": "张三", "applicant_id": ZHANG_SAN},
                               bearer(token(ZHANG_SAN, level=2)))  # fmt: skip
        assert response.json()["state"] == "approved"
        numbers.append(response.json()["case_no"])
    flagged = [n for n in numbers if (await stored(client, n)).sampled]
    assert 8 <= len(flagged) <= 28  # 0.3 of 60 = 18; a binomial draw stays well within this
    assert flagged == [n for n in numbers if instant.sampled(client.app.state.caseflow, n, elderly(sample_rate=0.3))]
    listed = (await client.get("/reviews", params={"page_size": 100}, headers=DECIDER)).json()
    assert sorted(i["case_no"] for i in listed["items"]) == sorted(flagged) and listed["total"] == len(flagged)
    assert listed["items"][0]["verdict"]["rule"] == "age-and-residence"
    assert (await client.get("/reviews", headers=officer("decider", "SCJGJ"))).json()["total"] == 0
    assert (await client.get("/reviews", headers=officer("acceptor", "MZJ"))).status_code == 403

    first, second = flagged[:2]
    agree = await client.post(f"/cases/{first}/sample-review", json={"verdict": "agree"}, headers=DECIDER)
    assert agree.status_code == 200 and agree.json()["review"] == "agree", agree.text
    again = await client.post(f"/cases/{first}/sample-review", json={"verdict": "disagree", "note": "x"},
                              headers=DECIDER)  # fmt: skip
    assert again.status_code == 409
    bare = await client.post(f"/cases/{second}/sample-review", json={"verdict": "disagree"}, headers=DECIDER)
    assert bare.status_code == 422 and bare.json()["errors"][0]["field"] == "note"
    disagree = await client.post(f"/cases/{second}/sample-review",
                                 json={"verdict": "disagree", "note": "户籍地应以户口簿为准"}, headers=DECIDER)  # fmt: skip
    assert disagree.status_code == 200 and disagree.json()["reviewed_by"] == "officer:mzj.decider"
    async with client.app.state.sessionmaker() as session:
        warnings = (await session.execute(select(SupervisionWarning.case_no, SupervisionWarning.step))).all()
    assert warnings == [(second, "instant_disagreed")]
    pending = (await client.get("/reviews", params={"reviewed": "false", "page_size": 100}, headers=DECIDER)).json()
    assert pending["total"] == len(flagged) - 2
    unsampled = next(n for n in numbers if n not in flagged)
    refused = await client.post(f"/cases/{unsampled}/sample-review", json={"verdict": "agree"}, headers=DECIDER)
    assert refused.status_code == 409
    stranger = await client.post(f"/cases/{first}/sample-review", json={"verdict": "agree"},
                                 headers=officer("decider", "SCJGJ"))  # fmt: skip
    assert stranger.status_code == 404


async def test_sample_rates_zero_and_one(client):
    await add_matter(client, elderly(sample_rate=1.0, version=2))
    case = (await apply(client, ELDERLY, {"applicant_name": "张三", "applicant_id": ZHANG_SAN},
                        bearer(token(ZHANG_SAN, level=2)))).json()  # fmt: skip
    assert (await stored(client, case["case_no"])).sampled is True
    await add_matter(client, elderly(sample_rate=0.0, version=3))
    case = (await apply(client, ELDERLY, {"applicant_name": "张三", "applicant_id": ZHANG_SAN},
                        bearer(token(ZHANG_SAN, level=2)))).json()  # fmt: skip
    assert (await stored(client, case["case_no"])).sampled is False


# ---- concurrency and hostile input ------------------------------------------------------------------
async def test_two_officers_reviewing_at_once_record_one_review(client):
    await add_matter(client, elderly(sample_rate=1.0, version=2))
    case = (await apply(client, ELDERLY, {"applicant_name": "张三", "applicant_id": ZHANG_SAN},
                        bearer(token(ZHANG_SAN, level=2)))).json()  # fmt: skip
    other = bearer(token("officer:mzj.decider2", kind="officer", roles=("decider",), department="MZJ", level=3))
    answers = await asyncio.gather(
        client.post(f"/cases/{case['case_no']}/sample-review", json={"verdict": "agree"}, headers=DECIDER),
        client.post(f"/cases/{case['case_no']}/sample-review", json={"verdict": "disagree", "note": "不同意"},
                    headers=other),
    )  # fmt: skip
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    row = await stored(client, case["case_no"])
    winner = next(a for a in answers if a.status_code == 200).json()
    assert (row.review, row.reviewed_by) == (winner["review"], winner["reviewed_by"])
    async with client.app.state.sessionmaker() as session:
        warnings = (await session.execute(select(SupervisionWarning.step))).scalars().all()
    assert warnings == (["instant_disagreed"] if row.review == "disagree" else [])


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/matters/%ED%A0%80X/prefill", None), ("GET", "/matters/A%00B/prefill", None),
     ("GET", "/matters/" + "A" * 100 + "/prefill", None), ("GET", "/reviews?reviewed=maybe", None),
     ("GET", "/reviews?page_size=100000", None),
     ("POST", "/cases/X/sample-review", {"verdict": "agree", "note": "a\u0000b"}),
     ("POST", "/cases/X/sample-review", {"verdict": "perhaps"}),
     ("POST", "/cases/X/sample-review", {"verdict": "agree", "extra": 1})],
)  # fmt: skip
async def test_hostile_input_is_a_problem_never_a_500(client, method, path, body):
    response = await client.request(method, path, json=body, headers=DECIDER if method == "POST" or "reviews" in path
                                    else ENTERPRISE)  # fmt: skip
    assert response.status_code in {404, 422}, response.text  # 404: a code that cannot exist
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_odd_facts_in_a_stored_matter_refer_the_case_to_officers(client):
    """A definition with conditions catalog would refuse (e.g. stored before the checks): never a 500."""
    await add_matter(client, elderly(version=2, instant={"rules": [{"id": "odd", "description": "x", "conditions": [
        {"fact": "applicant.age", "op": "ge", "value": "80"}]}], "sample_rate": 0.0}))  # fmt: skip
    response = await apply(client, ELDERLY, {"applicant_name": "张三", "applicant_id": ZHANG_SAN},
                           bearer(token(ZHANG_SAN, level=2)))  # fmt: skip
    assert response.status_code == 201 and response.json()["state"] == "submitted", response.text
    assert response.json()["timeline"][-1]["detail"]["failed"][0]["failed"][0]["reason"] == "malformed"


# ---- the HTTP adapter ----------------------------------------------------------------------------------
SECRET = "holdings-secret"


class FakeHoldings:
    """A licence service's /holdings on a real socket: verifies caseflow's signature (401 otherwise)."""

    def __init__(self) -> None:
        self.answer: dict | None = None
        self.status = 200
        self.asked: list[dict] = []
        self.app = Starlette(routes=[Route("/holdings", self.holdings, methods=["POST"])])

    async def holdings(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            verify_request({"caseflow": [SECRET]}, method=request.method, path=request.url.path,
                           query=request.url.query, headers=request.headers, body=body,
                           now=datetime.now(UTC).timestamp(), max_age=300)  # fmt: skip
        except SignatureRejected:
            return JSONResponse({"status": 401}, status_code=401)
        asked = json.loads(body)
        self.asked.append(asked)
        answer = self.answer or {"holder": asked["holder"], "holder_name": "x", "licences": []}
        return JSONResponse(answer, status_code=self.status)


async def test_the_http_adapter_asks_holdings_signed_and_refers_on_odd_answers(database_url, nats_server, tmp_path):
    fake = FakeHoldings()
    licence = {"identifier": "FOOD-9", "licence_type": "food_business_licence", "number": "JY1", "status": "valid",
               "valid_until": "2026-12-12", "data": {"address": "德州"}}  # fmt: skip
    async with serve(fake.app, lifespan="off") as url:
        overrides = dict(licence_adapter="http", licence_url=url, licence_secret=SECRET, licence_timeout_seconds=3)
        async with running_caseflow(database_url, nats_server.url, tmp_path, **overrides) as c:
            await add_matter(c, renewal())
            fake.answer = {"holder": COMPANY, "holder_name": "x", "licences": [
                licence, {**licence, "identifier": "BL-1", "licence_type": "business_licence", "valid_until": None}]}  # fmt: skip
            approved = (await apply(c, RENEWAL, renewal_form(), ENTERPRISE)).json()
            assert approved["state"] == "approved", approved
            assert approved["timeline"][-1]["detail"]["facts"]["licence:food_business_licence.days_left"] == 40
            assert fake.asked[-1] == {"holder": COMPANY, "licence_types": ["food_business_licence"],
                                      "purpose": f"instant:{RENEWAL}", "case_no": approved["case_no"]}  # fmt: skip
            form = (await c.get(f"/matters/{RENEWAL}/prefill", headers=ENTERPRISE)).json()["form"]
            assert (form["licence_number"], form["address"]) == ("JY1", "德州")
            for odd in ({"holder": LI_SI, "holder_name": None, "licences": [licence]},  # another holder's
                        {"holder": COMPANY, "licences": [{"identifier": "x"}]}, ["not", "an", "answer"]):  # fmt: skip
                fake.answer = odd  # type: ignore[assignment]
                case = (await apply(c, RENEWAL, renewal_form(), ENTERPRISE)).json()
                assert case["state"] == "submitted" and case["timeline"][-1]["detail"]["licences_unavailable"]
            fake.answer, fake.status = None, 500
            case = (await apply(c, RENEWAL, renewal_form(), ENTERPRISE)).json()
            assert case["state"] == "submitted" and case["timeline"][-1]["detail"]["licences_unavailable"]


async def test_two_payment_notices_at_once_approve_once(client):
    """The paid handler may run twice at once (a duplicate notice): one approval, one CaseApproved."""
    await add_matter(client, renewal(version=2, payment={"due_before": "decision"}))
    hold_food_licence(client)
    case = (await apply(client, RENEWAL, renewal_form(), ENTERPRISE)).json()
    ctx = client.app.state.caseflow

    async def paid() -> object:
        try:
            async with client.app.state.sessionmaker() as session, session.begin():
                row = (await session.execute(select(Case).where(Case.case_no == case["case_no"]))).scalar_one()
                return await instant.decide_pending(session, ctx, row, ctx.current_time())
        except StaleDataError:  # SQLite (no row locks): the loser's version-checked update matched nothing
            return "stale"

    results = await asyncio.gather(paid(), paid())
    assert sorted(map(str, results)) in (["False", "True"], ["True", "stale"]), results
    assert len(await events(client, "approved")) == 1
    assert (await client.get(f"/cases/{case['case_no']}", headers=ENTERPRISE)).json()["state"] == "approved"
