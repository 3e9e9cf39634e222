"""Submission, idempotency, applicant rules, reading a case, the public progress query."""

from __future__ import annotations

import asyncio

from services.caseflow.domain.case_number import valid_case_number
from services.caseflow.tests.conftest import (
    COMPANY,
    LI_SI,
    ZHANG_SAN,
    add_matter,
    bearer,
    keyed,
    matter_definition,
    officer,
    person,
    submission,
    submit,
    token,
    upload,
)


async def test_submit_gives_a_case_number_query_code_and_clocks(caseflow):
    case = await submit(caseflow)
    assert valid_case_number(case["case_no"])
    assert case["case_no"].startswith("32080220261102")  # division of the matter + received date
    assert len(case["query_code"]) == 6
    assert case["state"] == "submitted" and case["version"] == 1
    assert case["matter"] == {"code": "SCJG-001", "version": 1, "name": "个体工商户设立登记"}
    assert case["clock_step"] == "pre_review"
    assert case["due_on"] == "2026-11-04"  # Mon + 2 working days
    assert case["deadlines"]["acceptance"]["due"] == "2026-11-09"  # Art. 32: + 5 working days
    assert case["deadlines"]["pre_review"]["explanation"][0].startswith("start 2026-11-02")
    assert case["timeline"][0]["action"] == "submit"
    licence = next(m for m in case["materials"] if m["name"] == "居民身份证")
    assert licence["licence_id"] == "LIC-ID-1" and licence["licence_version"] == 1
    second = await submit(caseflow)
    assert int(second["case_no"][14:20]) == int(case["case_no"][14:20]) + 1


async def test_idempotent_retry_returns_the_same_case(caseflow):
    headers = {**person(), "Idempotency-Key": "phone-retry-1"}
    blob = await upload(caseflow, person())
    body = submission(
        materials=[{"name": "居民身份证", "licence_id": "L1"}, {"name": "经营场所租赁合同", "blob_id": blob}]
    )
    first = await caseflow.post("/cases", json=body, headers=keyed(headers))
    again = await caseflow.post("/cases", json=body, headers=keyed(headers))
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["case_no"] == again.json()["case_no"]
    changed = await caseflow.post("/cases", json={**body, "form": {"business_scope": "零售"}}, headers=keyed(headers))
    assert changed.status_code == 422 and changed.json()["type"].endswith("idempotency-key-reused")
    mine = (await caseflow.get("/cases", headers=person())).json()
    assert mine["total"] == 1
    # The same key from another applicant is another submission.
    other = await caseflow.post("/cases", json=body, headers={**person(LI_SI), "Idempotency-Key": "phone-retry-1"})
    assert other.status_code == 422  # Li Si cannot use Zhang San's upload
    assert other.json()["errors"][0]["field"] == "materials.1.blob_id"


async def test_concurrent_retries_make_one_case(caseflow):
    headers = {**person(), "Idempotency-Key": "double-tap"}
    blob = await upload(caseflow, person())
    body = submission(
        materials=[{"name": "居民身份证", "licence_id": "L1"}, {"name": "经营场所租赁合同", "blob_id": blob}]
    )
    responses = await asyncio.gather(*(caseflow.post("/cases", json=body, headers=keyed(headers)) for _ in range(3)))
    assert sorted(r.status_code for r in responses) == [200, 200, 201]
    assert len({r.json()["case_no"] for r in responses}) == 1


async def test_applicant_rules_name_the_rule(caseflow):
    low = await caseflow.post("/cases", json=submission(materials=[]), headers=keyed(person(level=1)))
    assert low.status_code == 403 and low.json()["rule"] == "min_level"
    # The problem type says what is wrong, and by how much: the client sends the citizen to verification.
    assert low.json()["type"].endswith("/problems/level-too-low")
    assert low.json()["required"] == 2 and low.json()["actual"] == 1
    officer_submit = await caseflow.post("/cases", json=submission(materials=[]), headers=keyed(officer("acceptor")))
    assert officer_submit.status_code == 403 and officer_submit.json()["rule"] == "relation"  # access table
    company = bearer(token(COMPANY, kind="enterprise", level=3))
    audience = await caseflow.post("/cases", json=submission(materials=[]), headers=keyed(company))
    assert audience.status_code == 403 and audience.json()["rule"] == "audience"


async def test_agent_needs_a_mandate_covering_the_matter(caseflow):
    await add_matter(caseflow, matter_definition("SCJG-002", audience=["enterprise"], materials=[]))
    body = submission(matter_code="SCJG-002", materials=[])
    outside = bearer(token(COMPANY, kind="enterprise", level=2, actor=LI_SI, scope="licence:read"))
    refused = await caseflow.post("/cases", json=body, headers=keyed(outside))
    assert refused.status_code == 403 and refused.json()["rule"] == "mandate_scope"
    for scope in ("caseflow:SCJG-002", "caseflow", "*"):
        agent = bearer(token(COMPANY, kind="enterprise", level=2, actor=LI_SI, scope=scope))
        response = await caseflow.post("/cases", json=body, headers=keyed(agent))
        assert response.status_code == 201, response.text
        assert response.json()["applicant"] == {
            "subject": COMPANY,
            "kind": "enterprise",
            "name": "淮安某某餐饮有限公司",  # the enterprise's registered name from the token, not null
            "agent": LI_SI,
            "agent_name": "李四",  # act.name
        }


async def test_all_missing_things_are_told_at_once(caseflow):
    response = await caseflow.post(
        "/cases",
        json=submission(form={}, materials=[{"name": "不存在的材料", "licence_id": "X"}]),
        headers=keyed(person()),
    )
    assert response.status_code == 422
    fields = {(e["field"], e["rule"]) for e in response.json()["errors"]}
    assert ("form.business_scope", "required") in fields
    response = await caseflow.post("/cases", json=submission(materials=[{"name": "不存在的材料", "licence_id": "X"}]),
                                   headers=keyed(person()))  # fmt: skip
    fields = {(e["field"], e["rule"]) for e in response.json()["errors"]}
    assert ("materials.0.name", "known_material") in fields
    assert sum(1 for f in fields if f == ("materials", "required")) == 1  # a set; two messages below
    assert len([e for e in response.json()["errors"] if e["rule"] == "required"]) == 2


async def test_delivery_and_material_shapes(caseflow):
    no_address = await caseflow.post(
        "/cases", json=submission(materials=[], delivery={"method": "ems"}), headers=keyed(person())
    )
    assert no_address.status_code == 422 and no_address.json()["errors"][0]["rule"] == "ems_address"
    both = await caseflow.post(
        "/cases",
        json=submission(materials=[{"name": "居民身份证", "licence_id": "L", "blob_id": "b"}]),
        headers=keyed(person()),
    )
    assert both.status_code == 422 and both.json()["errors"][0]["rule"] == "one_of"
    await add_matter(caseflow, matter_definition("SCJG-003", express=False, materials=[],
                                                 result={"name": "r", "form": "document", "delivery": ["window"]}))  # fmt: skip
    ems = await caseflow.post("/cases", json=submission(matter_code="SCJG-003", materials=[]), headers=keyed(person()))
    assert ems.status_code == 422 and ems.json()["errors"][0] == {
        "field": "delivery.method", "rule": "offered", "message": "this matter does not offer EMS delivery"}  # fmt: skip
    unknown = await caseflow.post("/cases", json=submission(matter_code="NOPE", materials=[]), headers=keyed(person()))
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "matter_code"


async def test_uploads_are_sniffed_and_limited(caseflow):
    headers = person()
    pdf = await caseflow.post("/materials", files={"file": ("a.pdf", b"%PDF-1.7\n...", "image/jpeg")}, headers=headers)
    assert pdf.status_code == 201 and pdf.json()["content_type"] == "application/pdf"
    assert len(pdf.json()["sha256"]) == 64
    exe = await caseflow.post("/materials", files={"file": ("a.jpg", b"MZ\x90\x00", "image/jpeg")}, headers=headers)
    assert exe.status_code == 415
    caseflow.app.state.caseflow.settings.max_upload_bytes = 100
    big = await caseflow.post(
        "/materials", files={"file": ("b.png", b"\x89PNG\r\n\x1a\n" + b"0" * 200)}, headers=headers
    )
    assert big.status_code == 413


async def test_other_applicants_and_departments_see_nothing(caseflow):
    case = await submit(caseflow)
    url = f"/cases/{case['case_no']}"
    assert (await caseflow.get(url, headers=person())).status_code == 200
    assert (await caseflow.get(url, headers=person(LI_SI))).status_code == 404
    assert (await caseflow.get(url, headers=officer("acceptor", "SWJ"))).status_code == 404
    assert (await caseflow.get(url, headers=officer("acceptor", "SCJGJ"))).status_code == 200
    assert (await caseflow.get("/cases", headers=person(LI_SI))).json()["total"] == 0
    assert (await caseflow.get("/worklist", headers=officer("acceptor", "SWJ"))).json()["total"] == 0
    assert (await caseflow.get("/worklist", headers=officer("acceptor", "SCJGJ"))).json()["total"] == 1
    action = await caseflow.post(f"{url}/actions", json={"action": "accept"},
                                 headers={**officer("acceptor", "SWJ"), "If-Match": "1"})  # fmt: skip
    assert action.status_code == 404


async def test_public_progress_needs_the_query_code_and_masks_the_name(caseflow):
    case = await submit(caseflow)
    url = f"/progress/{case['case_no']}"
    wrong = await caseflow.get(url, params={"code": "ZZZZZZ"})
    assert wrong.status_code == 404
    right = await caseflow.get(url, params={"code": case["query_code"].lower()})
    assert right.status_code == 200
    body = right.json()
    assert body["applicant"] == "张*" and body["state"] == "submitted"
    text = right.text
    assert ZHANG_SAN not in text and "13800138000" not in text and "江苏省" not in text
    assert (await caseflow.get("/progress/123", params={"code": "ABCDEF"})).status_code == 404


async def test_correction_uploads_go_to_the_case(caseflow):
    case = await submit(caseflow)
    url = f"/cases/{case['case_no']}/materials"
    png = b"\x89PNG\r\n\x1a\n" + b"1" * 32
    uploaded = await caseflow.post(url, files={"file": ("new.png", png)}, headers=person())
    assert uploaded.status_code == 201 and uploaded.json()["content_type"] == "image/png"
    assert (await caseflow.post(url, files={"file": ("x.png", png)}, headers=person(LI_SI))).status_code == 404


async def test_an_agent_outside_the_mandate_cannot_withdraw_or_resubmit_the_company_case(caseflow):
    await add_matter(caseflow, matter_definition("SCJG-002", audience=["enterprise"], materials=[]))
    agent = bearer(token(COMPANY, kind="enterprise", level=2, actor=LI_SI, scope="caseflow:SCJG-002"))
    created = await caseflow.post("/cases", json=submission(matter_code="SCJG-002", materials=[]), headers=keyed(agent))
    case_no = created.json()["case_no"]
    other = bearer(token(COMPANY, kind="enterprise", level=2, actor=LI_SI, scope="licence:read"))
    for path, body in ((f"/cases/{case_no}/withdraw", None), (f"/cases/{case_no}/resubmit", {"form": {}})):
        refused = await caseflow.post(path, json=body, headers={**other, "If-Match": "1"})
        assert refused.status_code == 403 and refused.json()["rule"] == "mandate_scope", refused.text
    detail = (await caseflow.get(f"/cases/{case_no}", headers=agent)).json()
    assert detail["state"] == "submitted" and detail["version"] == 1  # nothing changed
    withdrawn = await caseflow.post(f"/cases/{case_no}/withdraw", headers={**agent, "If-Match": "1"})
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
