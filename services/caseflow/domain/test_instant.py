"""秒批 rule evaluation and 零填报 prefill: every op, missing facts, type mismatches, odd data."""

from __future__ import annotations

from datetime import date

import pytest

from services.caseflow.domain.instant import (
    Holding,
    age_on,
    applicant_facts,
    check_condition,
    evaluate,
    form_facts,
    licence_facts,
    licence_types_of,
    prefill,
    shown,
)

FACTS = {"applicant.kind": "person", "applicant.age": 80, "form.area": 99.5, "form.ok": "是", "licence:x.valid": True}
C = [
    # (fact, op, value, holds, reason when not)
    ("applicant.kind", "eq", "person", True, None),
    ("applicant.kind", "eq", "enterprise", False, "false"),
    ("applicant.kind", "ne", "enterprise", True, None),
    ("applicant.kind", "ne", "person", False, "false"),
    ("applicant.age", "eq", 80, True, None),
    ("applicant.age", "eq", 80.0, True, None),
    ("applicant.age", "lt", 81, True, None),
    ("applicant.age", "lt", 80, False, "false"),
    ("applicant.age", "le", 80, True, None),
    ("applicant.age", "le", 79.9, False, "false"),
    ("applicant.age", "gt", 79, True, None),
    ("applicant.age", "gt", 80, False, "false"),
    ("applicant.age", "ge", 80, True, None),
    ("applicant.age", "ge", 80.5, False, "false"),
    ("form.area", "le", 100, True, None),
    ("form.ok", "in", ["是", "对"], True, None),
    ("form.ok", "in", ["否"], False, "false"),
    ("form.ok", "in", [], False, "false"),
    ("form.ok", "exists", None, True, None),
    ("form.missing", "exists", None, False, "missing"),
    ("licence:x.valid", "eq", True, True, None),
    ("licence:x.valid", "eq", False, False, "false"),
    # missing facts fail every op, ne included
    ("form.missing", "eq", "x", False, "missing"),
    ("form.missing", "ne", "x", False, "missing"),
    ("form.missing", "le", 1, False, "missing"),
    ("form.missing", "in", ["x"], False, "missing"),
    # type mismatches fail, never raise
    ("applicant.age", "eq", "80", False, "type"),
    ("applicant.age", "ne", "80", False, "type"),
    ("form.ok", "lt", 3, False, "type"),
    ("licence:x.valid", "eq", 1, False, "type"),
    ("licence:x.valid", "ge", 1, False, "type"),  # a boolean is not a number
    ("applicant.age", "in", ["80"], False, "type"),
    # malformed conditions fail
    ("applicant.age", "ge", "80", False, "malformed"),
    ("applicant.age", "ge", None, False, "malformed"),
    ("applicant.age", "in", 80, False, "malformed"),
    ("applicant.age", "eq", None, False, "malformed"),
    ("applicant.age", "eq", [80], False, "malformed"),
    ("applicant.age", "like", 80, False, "malformed"),
    ("applicant.age", "ge", float("nan"), False, "malformed"),
    ("applicant.age", "le", float("inf"), False, "malformed"),
]


@pytest.mark.parametrize(("fact", "op", "value", "holds", "reason"), C)
def test_each_op(fact, op, value, holds, reason):
    failed = check_condition({"fact": fact, "op": op, "value": value}, FACTS)
    assert (failed is None) is holds
    if not holds:
        assert failed.reason == reason and failed.actual == FACTS.get(fact)


@pytest.mark.parametrize("odd", [None, 3, "x", [], {"rules": None}, {"rules": "x"}, {"rules": [None, 1, {}]},
                                 {"rules": [{"id": "a", "conditions": [None, "x", {"fact": 1}]}]},
                                 {"rules": [{"id": "a", "conditions": []}]}])  # fmt: skip
def test_odd_rules_never_raise_and_never_approve(odd):
    assert evaluate(odd, FACTS).decided is None


def test_a_nan_fact_fails():
    assert check_condition({"fact": "form.area", "op": "le", "value": 1}, {"form.area": float("nan")}).reason == "type"


def test_first_rule_that_holds_decides_and_the_verdict_names_facts_and_failures():
    instant = {"rules": [
        {"id": "a", "description": "A", "conditions": [{"fact": "applicant.age", "op": "ge", "value": 90},
                                                       {"fact": "form.ok", "op": "eq", "value": "是"}]},
        {"id": "b", "description": "B", "conditions": [{"fact": "applicant.age", "op": "ge", "value": 80}]},
        {"id": "c", "description": "C", "conditions": [{"fact": "applicant.age", "op": "ge", "value": 70}]},
    ]}  # fmt: skip
    verdict = evaluate(instant, FACTS)
    assert verdict.decided.id == "b" and verdict.decided.used == {"applicant.age": 80}
    first = verdict.outcomes[0]
    assert not first.held and [f.fact for f in first.failed] == ["applicant.age"]
    assert verdict.out()["rule"] == "b" and verdict.out()["rules"][0]["failed"][0]["actual"] == 80


# GB 11643's published example: 11010519491231002X, born 1949-12-31 in 110105 (北京市朝阳区).
def test_applicant_facts_from_the_id_number():
    facts = applicant_facts(subject="11010519491231002X", kind="person", level=3, name="张三", today=date(2029, 12, 30))
    assert facts == {"applicant.kind": "person", "applicant.level": 3, "applicant.name": "张三",
                     "applicant.age": 79, "applicant.division": "110105"}  # fmt: skip
    assert applicant_facts(subject="11010519491231002X", kind="person", level=3, name=None,
                           today=date(2029, 12, 31))["applicant.age"] == 80  # fmt: skip


@pytest.mark.parametrize("subject", ["110105194912310021", "91350100M000100Y43", "", "x" * 18, "\ud800" * 18])
def test_no_age_without_a_valid_id_number(subject):
    facts = applicant_facts(subject=subject, kind="person", level=2, name=None, today=date(2026, 1, 1))
    assert "applicant.age" not in facts and "applicant.division" not in facts


def test_an_enterprise_has_no_age():
    facts = applicant_facts(
        subject="11010519491231002X", kind="enterprise", level=2, name="某公司", today=date(2026, 1, 1)
    )
    assert "applicant.age" not in facts


def test_age_on_birthdays_and_leap_days():
    assert age_on(date(2000, 2, 29), date(2018, 2, 28)) == 17
    assert age_on(date(2000, 2, 29), date(2018, 3, 1)) == 18


TODAY = date(2026, 12, 1)


def test_licence_facts():
    holdings = [
        Holding("a", "food", "F1", "valid", date(2027, 1, 30)),
        Holding("b", "food", "F0", "expired", date(2021, 1, 30)),
        Holding("c", "seal", "S1", "revoked", date(2030, 1, 1)),
        Holding("d", "old", "O1", "valid", date(2026, 11, 30)),  # ended yesterday, timer not yet run
        Holding("e", "forever", "E1", "valid", None),
    ]
    facts = licence_facts({"food", "seal", "old", "forever", "none"}, holdings, TODAY)
    assert facts["licence:food.valid"] is True and facts["licence:food.days_left"] == 60
    assert facts["licence:seal.valid"] is False and facts["licence:seal.days_left"] == (date(2030, 1, 1) - TODAY).days
    assert facts["licence:old.valid"] is False and facts["licence:old.days_left"] == -1
    assert facts["licence:forever.valid"] is True and "licence:forever.days_left" not in facts
    assert facts["licence:none.valid"] is False and "licence:none.days_left" not in facts


def test_licence_types_of_rules_and_form_facts():
    instant = {"rules": [{"conditions": [{"fact": "licence:food.valid"}, {"fact": "licence:seal.days_left"},
                                         {"fact": "form.x"}]}]}  # fmt: skip
    assert licence_types_of(instant) == {"food", "seal"}
    assert form_facts({"a": 1, "b": "x", "c": None, "d": [1]}) == {"form.a": 1, "form.b": "x"}


def test_prefill_takes_verified_facts_only():
    fields = [
        {"name": "name", "kind": "text", "prefill": "applicant.name"},
        {"name": "uscc", "kind": "subject_id", "prefill": "applicant.subject"},
        {"name": "number", "kind": "text", "prefill": "licence:food.number"},
        {"name": "address", "kind": "address", "prefill": "licence:food.data.address"},
        {"name": "capital", "kind": "number", "prefill": "licence:food.data.capital"},
        {"name": "gone", "kind": "text", "prefill": "licence:seal.number"},  # not usable: left blank
        {"name": "nothing", "kind": "text", "prefill": "licence:food.data.nothing"},
        {"name": "area", "kind": "number"},
    ]
    holdings = [Holding("a", "food", "F1", "valid", date(2027, 1, 1), {"address": "德州市德城区", "capital": 50}),
                Holding("c", "seal", "S1", "revoked", None)]  # fmt: skip
    form, sources = prefill(fields, subject="91371400MA3C000007", applicant={"applicant.name": "某公司"},
                            holdings=holdings, today=TODAY)  # fmt: skip
    assert form == {"name": "某公司", "uscc": "91371400MA3C000007", "number": "F1", "address": "德州市德城区",
                    "capital": 50}  # fmt: skip
    assert sources["number"] == "licence:food.number" and set(sources) == set(form)


def test_shown_masks_id_numbers():
    assert shown({"applicant.subject": "11010519491231002X", "a": 1}) == {
        "applicant.subject": "1101**********002X", "a": 1}  # fmt: skip
