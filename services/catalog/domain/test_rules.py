"""Unit tests of catalog's rules: completeness, diff, search text, bundle merge, access."""

from __future__ import annotations

import copy

from kit.auth import Principal
from services.catalog.domain.access import may_administer
from services.catalog.domain.bundles import merge
from services.catalog.domain.completeness import missing_fields
from services.catalog.domain.diff import diff
from services.catalog.domain.guide import Guide
from services.catalog.domain.search_text import query_words, search_text
from services.catalog.seed_data import MATTERS


def seeded(code: str) -> dict:
    return copy.deepcopy(next(m for m in MATTERS if m["code"] == code))


def test_every_demo_matter_is_complete():
    assert all(missing_fields(Guide.model_validate(m)) == [] for m in MATTERS)


def test_draft_names_every_missing_field():
    gaps = missing_fields(Guide(code="X-1", name="草稿事项", department="SCJGJ"))
    fields = {g["field"] for g in gaps}
    assert fields == {
        "matter_type",
        "level",
        "kind",
        "result",
        "depth",
        "max_visits",
        "online",
        "min_level",
        "legal_basis",
        "conditions",
        "audience",
        "materials",
        "steps",
        "statutory_limit_days",
    }
    assert all(g["rule"] == "required" for g in gaps)


def test_consistency_rules():
    data = seeded("SCJGJ-XK-0001")
    data.update(promised_limit_days=30, max_visits=1)
    data["materials"][0] = {**data["materials"][0], "forms": []}
    data["steps"] = [{"name": "受理", "roles": []}]
    data["result"] = {"name": "营业执照", "form": "licence"}
    rules = {(g["field"], g["rule"]) for g in missing_fields(Guide.model_validate(data))}
    assert rules == {
        ("promised_limit_days", "within_statutory"),
        ("max_visits", "depth_4_no_visit"),
        ("materials.0.forms", "required"),
        ("steps.0.roles", "required"),
        ("result.licence_type", "required"),
    }


def test_promised_matter_needs_promised_limit():
    data = seeded("SCJGJ-XK-0002")
    data["promised_limit_days"] = None
    assert [g["field"] for g in missing_fields(Guide.model_validate(data))] == ["promised_limit_days"]


def test_diff_names_exactly_the_changed_paths():
    old = Guide.model_validate(seeded("SCJGJ-XK-0001")).model_dump(mode="json")
    new = copy.deepcopy(old)
    new["promised_limit_days"] = 2
    new["materials"][1]["count"] = 2
    new["materials"].append({**new["materials"][0], "name": "委托书", "licence_type": None})
    new["aliases"] = ["个体户注册"]
    changes = {c["path"]: (c["old"], c["new"]) for c in diff(old, new)}
    assert changes == {
        "promised_limit_days": (1, 2),
        "materials[经营场所使用证明（房产证明或租赁合同）].count": (1, 2),
        "materials[委托书]": (None, new["materials"][-1]),
        "aliases": (["个体户营业执照办理", "个体户注册"], ["个体户注册"]),
    }
    assert diff(old, copy.deepcopy(old)) == []


def test_diff_reports_reordering():
    old = {"steps": [{"name": "a"}, {"name": "b"}]}
    new = {"steps": [{"name": "b"}, {"name": "a"}]}
    assert diff(old, new) == [{"path": "steps[]", "old": ["a", "b"], "new": ["b", "a"]}]


def test_search_text_has_pinyin_and_initials():
    text = search_text(code="C-1", name="营业执照补领", aliases=["执照补办"], keywords=["营业执照"])
    for needle in ("营业执照", "yingyezhizhao", "yyzzbl", "zzbb", "c-1"):
        assert needle in text
    assert query_words(" ＹＹＺＺ  营业 ") == ["yyzz", "营业"]


def test_bundle_asks_shared_materials_once_by_name_and_not_what_it_issues():
    guides = [Guide.model_validate(seeded(c)) for c in ("SCJGJ-XK-0002", "GAJ-BA-0001", "SWJ-QT-0001")]
    merged = merge(guides)
    by_name = {m["name"]: m for m in merged["materials"]}
    # The applicant's card is asked once for the two matters naming it; the legal representative's
    # card is another person's card (the reported hole: demanded, yet missing from the list).
    assert by_name["申请人居民身份证"]["matters"] == ["SCJGJ-XK-0002", "SWJ-QT-0001"]
    assert by_name["法定代表人居民身份证"]["required"] is True
    assert by_name["法定代表人居民身份证"]["matters"] == ["GAJ-BA-0001"]
    # The business licence the lead issues is listed for the two matters that use it, not required.
    assert by_name["营业执照"]["matters"] == ["GAJ-BA-0001", "SWJ-QT-0001"]
    assert by_name["营业执照"]["required"] is False and by_name["营业执照"]["produced_by"] == "SCJGJ-XK-0002"
    fields = {f["name"]: f for f in merged["form_fields"]}
    assert len(fields["enterprise_name"]["matters"]) == 3
    assert fields["seal_kinds"]["options"][0] == "公章"  # a choice field's options reach the bundle's form
    # Who applies: the lead's audience (the founder, a person), not the company it creates.
    assert merged["audience"] == ["person", "enterprise"] and merged["min_level"] == 2


def test_only_admins_of_the_department_administer():
    def officer(dept, roles=("admin",), kind="officer"):
        return Principal(subject="officer:x", kind=kind, level=3, roles=roles, department=dept)

    assert may_administer(officer("SCJGJ"), "SCJGJ")
    assert may_administer(officer("ADMIN"), "SCJGJ")
    assert not may_administer(officer("SWJ"), "SCJGJ")
    assert not may_administer(officer("SCJGJ", roles=("acceptor", "decider")), "SCJGJ")
    assert not may_administer(officer("SCJGJ", kind="person"), "SCJGJ")
