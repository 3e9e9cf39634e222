"""套餐 / 一件事 (J4): one form, one case, one branch per other department with its own deadline."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.events.catalog import BundlePublished
from kit.events import envelope
from services.caseflow import matters
from services.caseflow.tests.conftest import (
    COMPANY,
    add_matter,
    bearer,
    keyed,
    matter_definition,
    officer,
    submission,
    token,
)

FOUNDER = bearer(token(COMPANY, kind="enterprise", level=3))
ACCEPTOR = officer("acceptor")


async def publish_bundle(client) -> None:
    licence = {"name": "营业执照", "required": True, "forms": ["electronic"], "count": 1,
               "licence_type": "business_licence"}  # fmt: skip
    company = matter_definition("KB-SCJG", audience=["enterprise"], promised_limit_days=3, materials=[
        {"name": "公司章程", "required": True, "forms": ["copy"], "count": 1}])  # fmt: skip
    seal = matter_definition("KB-GAJ", department="GAJ", audience=["enterprise"], matter_type="公共服务",
                             statutory_limit_days=5, promised_limit_days=1, materials=[licence],
                             form_fields=[{"name": "seal_kinds", "label": "印章种类", "kind": "text", "required": True}])  # fmt: skip
    tax = matter_definition("KB-SWJ", department="SWJ", audience=["enterprise"], matter_type="公共服务",
                            statutory_limit_days=10, promised_limit_days=2, materials=[licence])  # fmt: skip
    for data in (company, seal, tax):
        await add_matter(client, data)
    event = BundlePublished(code="BUNDLE-KBQY", name="开办企业一件事", description="", published_at=datetime.now(UTC),
                            matter_codes=["KB-SCJG", "KB-GAJ", "KB-SWJ"])  # fmt: skip
    async with client.app.state.sessionmaker() as session, session.begin():
        await matters.on_bundle_published(session, envelope(event, source="test", subject="BUNDLE-KBQY"))


def bundle_body(**changes):
    body = submission(
        bundle_code="BUNDLE-KBQY", matter_code=None,
        form={"business_scope": "餐饮服务", "seal_kinds": "公章"},
        materials=[{"name": "营业执照", "licence_id": "LIC-BL-1", "licence_version": 1},
                   {"name": "公司章程", "licence_id": None, "blob_id": None}],
    )  # fmt: skip
    body.update(changes)
    return body


async def submit_bundle(client, body) -> dict:
    upload = await client.post("/materials", files={"file": ("c.pdf", b"%PDF-1.7 charter", "application/pdf")},
                               headers=FOUNDER)  # fmt: skip
    body["materials"] = [m if m.get("licence_id") else {"name": m["name"], "blob_id": upload.json()["id"]}
                         for m in body["materials"]]  # fmt: skip
    return await client.post("/cases", json=body, headers=keyed(FOUNDER))


async def test_one_form_asks_every_matters_materials_and_fields_once(caseflow):
    await publish_bundle(caseflow)
    incomplete = bundle_body(form={"business_scope": "餐饮服务"}, materials=[])
    refused = await caseflow.post("/cases", json=incomplete, headers=keyed(FOUNDER))
    assert refused.status_code == 422
    problems = {(e["field"], e["rule"], e["message"]) for e in refused.json()["errors"]}
    # The form's and the materials' problems in ONE notice (一次性告知).
    assert problems == {
        ("form.seal_kinds", "required", "印章种类 is required"),
        ("materials", "required", "missing required material: 公司章程"),
    }
    missing = await caseflow.post("/cases", json=bundle_body(materials=[]), headers=keyed(FOUNDER))
    messages = sorted(e["message"] for e in missing.json()["errors"])
    # 公司章程 comes from the lead matter; 营业执照, which the lead matter issues, is not demanded of a
    # founder who cannot hold it yet (ADR 0012).
    assert messages == ["missing required material: 公司章程"]
    both = await caseflow.post("/cases", json=bundle_body(matter_code="KB-SCJG", materials=[]), headers=keyed(FOUNDER))
    assert both.status_code == 422 and [e["rule"] for e in both.json()["errors"]] == ["one_of"]
    unknown = await caseflow.post(
        "/cases", json=bundle_body(bundle_code="BUNDLE-NONE", materials=[]), headers=keyed(FOUNDER)
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "bundle_code"


async def test_the_case_fans_out_per_department_and_completes_when_all_decide(caseflow):
    await publish_bundle(caseflow)
    created = await submit_bundle(caseflow, bundle_body())
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["matter"]["code"] == "KB-SCJG" and case["department"] == "SCJGJ"
    accepted = await caseflow.post(f"/cases/{case['case_no']}/actions", json={"action": "accept"},
                                   headers={**ACCEPTOR, "If-Match": str(case["version"])})  # fmt: skip
    assert accepted.status_code == 200, accepted.text
    detail = accepted.json()
    branches = {b["department"]: b for b in detail["branches"]}
    assert set(branches) == {"GAJ", "SWJ"}
    # Accepted Mon 2026-11-02: each branch runs on its own matter's promise (1 and 2 working days).
    assert branches["GAJ"]["due_on"] == "2026-11-03" and branches["SWJ"]["due_on"] == "2026-11-04"
    assert "joint handling" in detail["deadlines"]["decision"]["rule"]
    # The seal office sees the case in its own worklist (a decider of a branch department).
    gaj = officer("decider", "GAJ")
    listed = (await caseflow.get("/worklist", headers=gaj)).json()
    assert case["case_no"] in [item["case_no"] for item in listed["items"]]

    decider = officer("decider")
    early = await caseflow.post(f"/cases/{case['case_no']}/actions", json={"action": "approve"},
                                headers={**decider, "If-Match": str(detail["version"])})  # fmt: skip
    assert early.status_code == 409 and early.json()["pending"] == ["GAJ", "SWJ"]
    for department in ("GAJ", "SWJ"):
        done = await caseflow.post(f"/cases/{case['case_no']}/branches/{department}/actions", json={"action": "approve"},
                                   headers={**officer("decider", department), "If-Match": "1"})  # fmt: skip
        assert done.status_code == 200, done.text
    current = (await caseflow.get(f"/cases/{case['case_no']}", headers=decider)).json()
    approved = await caseflow.post(f"/cases/{case['case_no']}/actions", json={"action": "approve"},
                                   headers={**decider, "If-Match": str(current["version"])})  # fmt: skip
    assert approved.status_code == 200 and approved.json()["state"] == "approved"


async def test_the_bundle_is_pinned_at_submission(caseflow):
    await publish_bundle(caseflow)
    case = (await submit_bundle(caseflow, bundle_body())).json()
    # A later version of a member matter changes nothing for the case already submitted.
    await add_matter(caseflow, matter_definition("KB-GAJ", version=2, department="GAJ", audience=["enterprise"],
                                                 promised_limit_days=9, materials=[]))  # fmt: skip
    accepted = await caseflow.post(f"/cases/{case['case_no']}/actions", json={"action": "accept"},
                                   headers={**ACCEPTOR, "If-Match": "1"})  # fmt: skip
    branches = {b["department"]: b for b in accepted.json()["branches"]}
    assert branches["GAJ"]["due_on"] == "2026-11-03"  # version 1's promise of 1 working day
