"""The bundle rule: one merged form and material list, branches with their own limits."""

from __future__ import annotations

import pytest

from services.caseflow.domain.bundles import branch_limit, bundle_matter
from services.caseflow.domain.case_clock import decision_limit


def matter(code: str, department: str, **changes):
    data = {
        "code": code, "version": 1, "name": code, "department": department, "matter_type": "行政许可",
        "audience": ["person", "enterprise"], "min_level": 2, "statutory_limit_days": 20,
        "promised_limit_days": 3, "parallel_departments": [],
        "materials": [{"name": "营业执照", "required": False}, {"name": f"{code} 申请表", "required": True}],
        "form_fields": [{"name": "company_name", "label": "企业名称", "kind": "text", "required": True}],
    }  # fmt: skip
    data.update(changes)
    return data


BUNDLE = {"code": "BUNDLE-KBQY", "name": "开办企业一件事"}


def test_shared_materials_and_fields_are_asked_once_and_required_if_any_requires_them():
    lead = matter("SCJG", "SCJGJ")
    seal = matter("GAJ", "GAJ", materials=[{"name": "营业执照", "required": True, "licence_type": "business_licence"}])
    merged = bundle_matter(BUNDLE, [lead, seal])
    names = [m["name"] for m in merged["materials"]]
    assert names == ["营业执照", "SCJG 申请表"]  # GAJ asks only for the shared one
    shared = merged["materials"][0]
    assert shared["required"] is True and shared["licence_type"] == "business_licence"
    assert [f["name"] for f in merged["form_fields"]] == ["company_name"]
    assert lead["materials"][0]["required"] is False  # the published definitions are not changed


def test_the_leads_audience_the_strictest_level_and_every_other_department_in_parallel():
    members = [matter("A", "SCJGJ", audience=["person"]), matter("B", "GAJ", audience=["enterprise"], min_level=3),
               matter("C", "SCJGJ"), matter("D", "SWJ"), matter("E", "GAJ")]  # fmt: skip
    merged = bundle_matter(BUNDLE, members)
    # The founder applies (the lead's audience), although the seal office serves the company it creates.
    assert merged["audience"] == ["person"] and merged["min_level"] == 3
    assert merged["parallel_departments"] == ["GAJ", "SWJ"]  # the lead's own department is not a branch
    assert merged["code"] == "A" and merged["bundle"]["code"] == "BUNDLE-KBQY"
    # The case decides under joint handling: Art. 42's 45 days, or the lead's shorter promise.
    assert decision_limit(merged)[1].endswith("Art. 42 (joint handling)")


def test_each_branch_has_its_own_matters_limit():
    members = [matter("A", "SCJGJ"), matter("B", "GAJ", promised_limit_days=1),
               matter("C", "SWJ", promised_limit_days=None), matter("D", "GAJ", promised_limit_days=2)]  # fmt: skip
    merged = bundle_matter(BUNDLE, members)
    assert branch_limit(merged, "GAJ")[0] == 2  # the longer of its two matters
    assert branch_limit(merged, "SWJ")[0] == 20  # no promise: Art. 42
    plain = matter("M", "SCJGJ", parallel_departments=["GAJ"])
    assert branch_limit(plain, "GAJ") == decision_limit(plain)  # not a bundle: the case's own limit


def test_a_licence_the_bundle_issues_is_listed_but_not_required():
    lead = matter("SCJG", "SCJGJ", result={"name": "营业执照", "licence_type": "business_licence"},
                  materials=[{"name": "公司章程", "required": True}])  # fmt: skip
    seal = matter("GAJ", "GAJ", materials=[
        {"name": "营业执照", "required": True, "licence_type": "business_licence"},
        {"name": "法定代表人居民身份证", "required": True, "licence_type": "resident_id_card"}])  # fmt: skip
    merged = bundle_matter(BUNDLE, [lead, seal])
    by_name = {m["name"]: m for m in merged["materials"]}
    assert by_name["营业执照"]["required"] is False and by_name["营业执照"]["produced_by"] == "SCJG"
    assert by_name["法定代表人居民身份证"]["required"] is True and "produced_by" not in by_name["法定代表人居民身份证"]
    # Issued by a LATER member: the applicant must still bring it (the bundle cannot wait for itself).
    reversed_order = bundle_matter(BUNDLE, [seal, lead])
    assert {m["name"]: m["required"] for m in reversed_order["materials"]}["营业执照"] is True


def test_a_bundle_needs_two_matters():
    with pytest.raises(ValueError):
        bundle_matter(BUNDLE, [matter("A", "SCJGJ")])
