"""Issue 9 in caseflow: facts from their source, required idempotency, checked forms, material
downloads, the query-code limit, offered actions, the sandbox page, approve's reason."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import unquote

from services.caseflow.main import QueryCodeFilter, create_app
from services.caseflow.tests.conftest import (
    COMPANY,
    LI_SI,
    ZHANG_SAN,
    act,
    add_matter,
    bearer,
    fetch_keys,
    keyed,
    matter_definition,
    officer,
    person,
    submission,
    submit,
    token,
    upload,
)

ACCEPTOR, REVIEWER, DECIDER = officer("acceptor"), officer("reviewer"), officer("decider")


async def _body(client, headers=None, **changes):
    blob = await upload(client, headers or person())
    return submission(materials=[{"name": "居民身份证", "licence_id": "L1"}, {"name": "经营场所租赁合同", "blob_id": blob}],
                      **changes)  # fmt: skip


# ---- names ----------------------------------------------------------------------------------
async def test_the_name_comes_from_the_token_never_from_the_body(caseflow):
    body = await _body(caseflow)
    claimed = await caseflow.post("/cases", json={**body, "applicant_name": "张伟"}, headers=keyed(person()))
    assert claimed.status_code == 422 and claimed.json()["errors"][0]["field"] == "body.applicant_name"
    case = await submit(caseflow)
    assert case["applicant"]["name"] == "张三"
    progress = (await caseflow.get(f"/progress/{case['case_no']}", params={"code": case["query_code"]})).json()
    assert progress["applicant"] == "张*"
    old = bearer(token(ZHANG_SAN, name=None))  # issued before tokens carried names
    created = await caseflow.post("/cases", json=await _body(caseflow, old), headers=keyed(old))
    assert created.status_code == 201 and created.json()["applicant"]["name"] is None


async def test_the_forms_applicant_name_is_the_verified_name(caseflow):
    fields = [{"name": "applicant_name", "label": "申请人姓名", "kind": "text", "required": True},
              {"name": "business_scope", "label": "经营范围", "kind": "text", "required": True}]  # fmt: skip
    await add_matter(caseflow, matter_definition("SCJG-NAME", form_fields=fields, materials=[]))
    base = submission(matter_code="SCJG-NAME", materials=[])
    other = await caseflow.post("/cases", json={**base, "form": {"business_scope": "x", "applicant_name": "张伟"}},
                                headers=keyed(person()))  # fmt: skip
    assert other.status_code == 422 and other.json()["errors"] == [
        {"field": "form.applicant_name", "rule": "verified_name",
         "message": "the applicant's name is the verified name of the signed-in subject"}]  # fmt: skip
    filled = await caseflow.post("/cases", json=base, headers=keyed(person()))
    assert filled.status_code == 201 and filled.json()["form"]["applicant_name"] == "张三"


# ---- idempotency ----------------------------------------------------------------------------
async def test_an_idempotency_key_is_required_and_a_retry_consumes_no_number(caseflow):
    body = await _body(caseflow)
    missing = await caseflow.post("/cases", json=body, headers=person())
    assert missing.status_code == 428 and missing.json()["header"] == "Idempotency-Key"
    assert missing.headers["content-type"].startswith("application/problem+json")
    bad = await caseflow.post("/cases", json=body, headers={**person(), "Idempotency-Key": "a b"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "header.Idempotency-Key"
    headers = {**person(), "Idempotency-Key": "retry-number"}
    first = await caseflow.post("/cases", json=body, headers=headers)
    for _ in range(3):
        again = await caseflow.post("/cases", json=body, headers=headers)
        assert again.status_code == 200 and again.json()["case_no"] == first.json()["case_no"]
    following = await submit(caseflow)
    assert int(following["case_no"][14:20]) == int(first.json()["case_no"][14:20]) + 1  # no number lost to retries
    reused = await caseflow.post("/cases", json={**body, "contact_phone": "13900139000"}, headers=headers)
    assert reused.status_code == 422 and reused.json()["type"].endswith("idempotency-key-reused")


# ---- form validation through the API --------------------------------------------------------
async def test_form_values_are_checked_against_the_pinned_version(caseflow):
    fields = [{"name": "business_scope", "label": "经营范围", "kind": "text", "required": True},
              {"name": "mobile", "label": "联系电话", "kind": "text", "required": True, "format": "mobile"},
              {"name": "capital", "label": "注册资本", "kind": "number", "required": False, "maximum": 100000},
              {"name": "kind", "label": "类型", "kind": "choice", "required": False, "options": ["个体", "公司"]}]  # fmt: skip
    await add_matter(caseflow, matter_definition("SCJG-FORM", form_fields=fields, materials=[]))
    form = {"business_scope": "x" * 100_000, "mobile": "not-a-phone", "capital": 10**15,  # within 64 bits (past them the kit's body guard answers first) but over the maximum
            "kind": "合伙",
            "unknown": "y", "nested": {"a": {"b": [1]}}}  # fmt: skip
    response = await caseflow.post("/cases", json=submission(matter_code="SCJG-FORM", materials=[], form=form),
                                   headers=keyed(person()))  # fmt: skip
    assert response.status_code == 422
    assert {(e["field"], e["rule"]) for e in response.json()["errors"]} == {
        ("form.business_scope", "max_length"), ("form.mobile", "mobile"), ("form.capital", "maximum"),
        ("form.kind", "choice"), ("form.unknown", "unknown_field"), ("form.nested", "unknown_field"),
    }  # fmt: skip
    # A later version with another form does not change what the pinned version accepts.
    await add_matter(caseflow, matter_definition("SCJG-FORM", version=2, form_fields=fields[:1], materials=[]))
    good = {"business_scope": "餐饮", "mobile": "13800138000", "capital": 50, "kind": "个体"}
    pinned = await caseflow.post("/cases", json=submission(matter_code="SCJG-FORM", matter_version=1, materials=[],
                                                           form=good), headers=keyed(person()))  # fmt: skip
    assert pinned.status_code == 201 and pinned.json()["form"] == good


# ---- material downloads ---------------------------------------------------------------------
async def test_materials_are_downloaded_by_those_entitled_and_officer_reads_are_logged(caseflow):
    await add_matter(caseflow, matter_definition("JOINT-DL", parallel_departments=["GAJ"], promised_limit_days=None))
    headers = person()
    jpeg = b"\xff\xd8\xff\xe0" + b"\x01" * 64
    blob = await upload(caseflow, headers, jpeg)
    case = await submit(caseflow, matter_code="JOINT-DL",
                        materials=[{"name": "居民身份证", "licence_id": "L1"}, {"name": "经营场所租赁合同", "blob_id": blob}])  # fmt: skip
    url = f"/cases/{case['case_no']}/materials/{blob}"
    own = await caseflow.get(url, headers=headers)
    assert own.status_code == 200 and own.content == jpeg and own.headers["content-type"] == "image/jpeg"
    assert own.headers["x-content-type-options"] == "nosniff"
    disposition = own.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "\n" not in disposition and "\r" not in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "经营场所租赁合同.jpg"
    for reader in (ACCEPTOR, officer("decider", "GAJ")):
        assert (await caseflow.get(url, headers=reader)).status_code == 200
    for outsider in (person(LI_SI), officer("acceptor", "SWJ"), officer("counter"), officer("supervisor", "JCZX")):
        assert (await caseflow.get(url, headers=outsider)).status_code == 404
    assert (await caseflow.get(f"/cases/{case['case_no']}/materials/{'0' * 36}", headers=headers)).status_code == 404
    timeline = (await caseflow.get(f"/cases/{case['case_no']}", headers=headers)).json()["timeline"]
    reads = [(line["actor"], line["detail"]["material"]) for line in timeline if line["action"] == "material_read"]
    assert reads == [("officer:scjgj.acceptor", "经营场所租赁合同"), ("officer:gaj.decider", "经营场所租赁合同")]
    progress = (await caseflow.get(f"/progress/{case['case_no']}", params={"code": case["query_code"]})).json()
    assert "material_read" not in [s["action"] for s in progress["steps"]]


async def test_a_bundle_branch_reads_only_the_materials_its_matters_ask_for(caseflow):
    from services.caseflow.tests.test_bundle_cases import FOUNDER, bundle_body, publish_bundle, submit_bundle

    await publish_bundle(caseflow)
    case = (await submit_bundle(caseflow, bundle_body())).json()
    charter = next(m["blob_id"] for m in case["materials"] if m["name"] == "公司章程")  # only the lead matter asks
    url = f"/cases/{case['case_no']}/materials/{charter}"
    assert (await caseflow.get(url, headers=FOUNDER)).status_code == 200
    assert (await caseflow.get(url, headers=officer("decider", "GAJ"))).status_code == 404
    assert (await caseflow.get(url, headers=ACCEPTOR)).status_code == 200


def test_the_disposition_cannot_inject_headers():
    from services.caseflow.cases.materials import content_disposition

    value = content_disposition('a"\r\nX-Evil: 1;\u202egpj.exe', "application/pdf")
    assert "\r" not in value and "\n" not in value and "\u202e" not in value and '"X' not in value


# ---- query codes ----------------------------------------------------------------------------
async def test_query_codes_have_a_per_case_attempt_limit(caseflow):
    caseflow.app.state.caseflow.settings.query_code_attempts = 10
    case = await submit(caseflow)
    url = f"/progress/{case['case_no']}"
    wrong = await asyncio.gather(*(caseflow.get(url, params={"code": f"ZZZZ{i:02d}"}) for i in range(15)))
    assert sorted(r.status_code for r in wrong) == [404] * 10 + [429] * 5  # a parallel burst gets 10 comparisons
    limited = await caseflow.get(url, params={"code": case["query_code"]})
    assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 3600  # even the right one
    assert limited.json()["type"].endswith("too-many-attempts")
    other = await submit(caseflow)  # another case is not affected
    assert (
        await caseflow.get(f"/progress/{other['case_no']}", params={"code": other["query_code"]})
    ).status_code == 200
    from datetime import timedelta

    caseflow.clock.value += timedelta(hours=1, seconds=1)  # the window ends
    assert (await caseflow.get(url, params={"code": case["query_code"]})).status_code == 200
    assert (await caseflow.get(url, params={"code": "ZZZZZZ"})).status_code == 404


async def test_right_codes_do_not_count(caseflow):
    caseflow.app.state.caseflow.settings.query_code_attempts = 2
    case = await submit(caseflow)
    for _ in range(5):
        ok = await caseflow.get(f"/progress/{case['case_no']}", params={"code": case["query_code"]})
        assert ok.status_code == 200


def test_query_codes_are_masked_in_access_logs():
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1", "GET", "/progress/32080220261102000001?code=AB12CD&x=1", "1.1", 200), None)  # fmt: skip
    QueryCodeFilter().filter(record)
    assert "AB12CD" not in record.getMessage() and "code=[masked]&x=1" in record.getMessage()


# ---- offered actions ------------------------------------------------------------------------
BODIES = {"reject": {"reason": "不符合"}, "deny": {"reason": "不符合"}, "extend": {"reason": "复杂"},
          "approve": {"reason": "符合"},
          "request_correction": {"items": [{"material": "经营场所租赁合同", "problem": "不清晰"}]},
          "suspend": {"suspension": "testing", "expected_days": 3}}  # fmt: skip
STEPS = ("accept", "reject", "request_correction", "review", "approve", "deny", "extend", "suspend", "resume",
         "deliver", "complete")  # fmt: skip


async def _case_at(client, path):
    case = await submit(client)
    for headers, action in path:
        if action == "resubmit":
            response = await client.post(f"/cases/{case['case_no']}/resubmit", json={"form": {}}, headers=person())
        else:
            response = await act(client, case, headers, action, **BODIES.get(action, {}))
        assert response.status_code == 200, response.text
    return case


PATHS = {
    "submitted": [], "resubmitted": [(ACCEPTOR, "request_correction"), (None, "resubmit")],
    "accepted": [(ACCEPTOR, "accept")], "reviewed": [(ACCEPTOR, "accept"), (REVIEWER, "review")],
    "suspended": [(ACCEPTOR, "accept"), (REVIEWER, "suspend")],
    "approved": [(ACCEPTOR, "accept"), (REVIEWER, "review"), (DECIDER, "approve")],
}  # fmt: skip


async def test_every_offered_action_succeeds_and_every_other_is_refused(caseflow):
    multi = officer("acceptor", "SCJGJ", "reviewer", "decider")
    for state, path in PATHS.items():
        for headers in (ACCEPTOR, REVIEWER, DECIDER, multi):
            shared = await _case_at(caseflow, path)
            offered = (await caseflow.get(f"/cases/{shared['case_no']}", headers=headers)).json()["allowed_actions"]
            if state == "resubmitted":
                assert "request_correction" not in offered
            for action in STEPS:
                target = await _case_at(caseflow, path) if action in offered else shared
                response = await act(caseflow, target, headers, action, **BODIES.get(action, {}))
                assert (response.status_code == 200) == (action in offered), (state, action, offered, response.text)


async def test_approve_keeps_its_reason(caseflow):
    case = await _case_at(caseflow, PATHS["reviewed"])
    approved = (await act(caseflow, case, DECIDER, "approve", reason="符合法定条件")).json()
    assert approved["decision_reason"] == "符合法定条件"
    assert approved["timeline"][-1]["detail"]["reason"] == "符合法定条件"
    from services.caseflow.tests.test_workflow import outbox_payloads

    [event] = await outbox_payloads(caseflow, "approved")
    assert event["reason"] == "符合法定条件"  # licence and the published result see why
    # The result is a licence (business_licence): licence prints the verified holder and the form's data.
    assert event["result_licence_type"] == "business_licence"
    assert (event["applicant_kind"], event["applicant_name"]) == ("person", approved["applicant"]["name"])
    assert event["applicant_name"] and event["form"] == approved["form"] and event["form"]


# ---- the sandbox page -----------------------------------------------------------------------
async def test_the_sandbox_page_exists_only_on_a_sandbox(caseflow):
    assert (await caseflow.get("/sandbox/notifications")).status_code == 200
    settings = caseflow.app.state.caseflow.settings.model_copy(update={"sandbox": False})
    app = create_app(settings, key_fetcher=fetch_keys)
    assert not [r for r in app.routes if getattr(r, "path", "").startswith("/sandbox")]
    assert "/sandbox/notifications" not in app.openapi()["paths"]


async def test_agents_list_only_what_their_mandate_covers(caseflow):
    await add_matter(caseflow, matter_definition("SCJG-E1", audience=["enterprise"], materials=[]))
    await add_matter(caseflow, matter_definition("SCJG-E2", audience=["enterprise"], materials=[]))
    boss = bearer(token(COMPANY, kind="enterprise", level=3, actor=LI_SI, scope="*"))
    for code in ("SCJG-E1", "SCJG-E2"):
        created = await caseflow.post("/cases", json=submission(matter_code=code, materials=[]), headers=keyed(boss))
        assert created.status_code == 201, created.text
    narrow = bearer(token(COMPANY, kind="enterprise", level=3, actor=LI_SI, scope="caseflow:SCJG-E1"))
    listed = (await caseflow.get("/cases", headers=narrow)).json()
    assert [i["matter"]["code"] for i in listed["items"]] == ["SCJG-E1"]
    assert (await caseflow.get("/cases", headers=boss)).json()["total"] == 2
