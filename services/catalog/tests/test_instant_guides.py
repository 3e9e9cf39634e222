"""秒批 rules, 零填报 prefill, channels and payment in guides: what the admin API refuses (every
problem naming its field and rule, nothing stored) and what the public guide shows."""

from __future__ import annotations

import copy

import pytest

from services.catalog.seed_data import MATTERS
from services.catalog.tests.conftest import admin_of
from services.catalog.tests.test_api import FULL_GUIDE, create_and_publish

INSTANT = {
    "rules": [
        {
            "id": "small-shop",
            "description": "企业申请、经营面积不超过100平方米的零售店",
            "conditions": [
                {"fact": "applicant.kind", "op": "eq", "value": "enterprise"},
                {"fact": "form.area", "op": "le", "value": 100},
                {"fact": "form.shop_kind", "op": "in", "value": ["零售"]},
                {"fact": "licence:business_licence.valid", "op": "eq", "value": True},
            ],
        }
    ],
    "sample_rate": 0.25,
}


def guide(**changes) -> dict:
    """FULL_GUIDE (every field set) as an instant matter: no parallel departments."""
    data = copy.deepcopy(FULL_GUIDE)
    data.update(code="SCJGJ-XK-0200", parallel_departments=[], instant=INSTANT)
    data.update(changes)
    return data


async def test_an_instant_guide_round_trips(catalog):
    await create_and_publish(catalog, guide())
    assert (await catalog.get("/matters/SCJGJ-XK-0200")).json()["guide"] == guide()


def rule(*conditions: dict) -> dict:
    return {"rules": [{"id": "r1", "description": "测试规则", "conditions": list(conditions)}]}


BAD = [
    # (change, field, rule)
    ({"instant": rule({"fact": "form.floor_area", "op": "le", "value": 1})}, "instant.rules.0.conditions.0.fact",
     "form_field"),
    ({"instant": rule({"fact": "form.enterprise_name", "op": "lt", "value": 3})}, "instant.rules.0.conditions.0.op",
     "number_fact"),
    ({"instant": rule({"fact": "applicant.kind", "op": "eq", "value": "officer"})},
     "instant.rules.0.conditions.0.value", "kind"),
    ({"instant": rule({"fact": "applicant.age", "op": "ge", "value": 18})}, "instant.rules.0.conditions.0.fact",
     "audience"),
    ({"instant": rule({"fact": "applicant.salary", "op": "ge", "value": 1})}, "instant.rules.0.conditions.0.fact",
     "string_pattern_mismatch"),
    ({"instant": rule({"fact": "licence:Business.valid", "op": "eq", "value": True})},
     "instant.rules.0.conditions.0.fact", "string_pattern_mismatch"),
    ({"instant": rule({"fact": "applicant.level", "op": "ge"})}, "instant.rules.0.conditions.0", "value_required"),
    ({"instant": rule({"fact": "applicant.level", "op": "in", "value": 3})}, "instant.rules.0.conditions.0",
     "in_takes_a_list"),
    ({"instant": rule({"fact": "applicant.level", "op": "ge", "value": "3"})}, "instant.rules.0.conditions.0",
     "number_for_order"),
    ({"instant": rule({"fact": "applicant.level", "op": "exists", "value": 1})}, "instant.rules.0.conditions.0",
     "exists_without_value"),
    ({"instant": {"rules": []}}, "instant.rules", "too_short"),
    ({"instant": {"rules": [{"id": "a", "description": "x", "conditions": [{"fact": "applicant.level", "op": "ge",
                                                                             "value": 2}]}] * 2}},
     "instant.rules", "unique_ids"),
    ({"instant": {**rule({"fact": "applicant.level", "op": "ge", "value": 2}), "sample_rate": 1.5}},
     "instant.sample_rate", "less_than_equal"),
    ({"payment": {"due_before": "decision"}, "fees": []}, "payment", "fees_required"),
    ({"parallel_departments": ["WJW"]}, "instant", "no_parallel"),
    ({"payment": {"due_before": "tomorrow"}}, "payment.due_before", "literal_error"),
    ({"channels": ["online", "online"]}, "channels", "unique"),
    ({"channels": ["fax"]}, "channels.0", "literal_error"),
    ({"channels": []}, "channels", "too_short"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field", "rule_name"), BAD)
async def test_inconsistent_rules_are_refused_naming_the_field(catalog, change, field, rule_name):
    response = await catalog.post("/matters", json=guide(**change), headers=admin_of("SCJGJ"))
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"].removeprefix("body.") == field and e["rule"] == rule_name for e in errors), errors
    assert (await catalog.get("/matters/SCJGJ-XK-0200/versions")).status_code == 404


async def test_bad_prefill_is_refused(catalog):
    data = guide()
    data["form_fields"][0]["prefill"] = "request.body.name"
    response = await catalog.post("/matters", json=data, headers=admin_of("SCJGJ"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].removeprefix("body.") == "form_fields.0.prefill"
    data["form_fields"][0]["prefill"] = "applicant.subject"  # only a subject_id field takes the subject
    response = await catalog.post("/matters", json=data, headers=admin_of("SCJGJ"))
    assert response.status_code == 422
    assert response.json()["errors"][0] == {"field": "form_fields.0.prefill", "rule": "subject_field",
                                            "message": "only a subject_id field takes the subject"}  # fmt: skip


async def test_a_draft_update_is_checked_too(catalog):
    headers = admin_of("SCJGJ")
    created = await catalog.post("/matters", json=guide(), headers=headers)
    assert created.status_code == 201
    bad = guide(instant=rule({"fact": "form.nothing", "op": "exists"}))
    response = await catalog.put("/matters/SCJGJ-XK-0200/versions/1", json=bad, headers=headers)
    assert response.status_code == 422 and response.json()["errors"][0]["rule"] == "form_field"
    stored = (await catalog.get("/matters/SCJGJ-XK-0200/versions/1")).json()["guide"]
    assert stored["instant"] == INSTANT


async def test_the_public_guide_shows_fees_payment_channels_and_instant_rules(catalog):
    seeded = next(m for m in MATTERS if m["code"] == "SCJGJ-XK-0007")
    shown = (await catalog.get("/matters/SCJGJ-XK-0007")).json()["guide"]
    assert shown["fees"][0]["item"] == seeded["fees"][0]["item"] and shown["fees"][0]["amount_yuan"] in ("10", "10.00")
    assert shown["payment"]["due_before"] == "decision" and "withdrawn" in shown["payment"]["refund_on"]
    assert "kiosk" in shown["channels"]
    assert [r["description"] for r in shown["instant"]["rules"]] == [r["description"] for r in
                                                                      seeded["instant"]["rules"]]  # fmt: skip
    prefilled = {f["name"]: f["prefill"] for f in shown["form_fields"] if f["prefill"]}
    assert prefilled["licence_number"] == "licence:food_business_licence.number"
    # a matter without them shows the defaults: online and counter, nothing paid, officers decide
    plain = (await catalog.get("/matters/SCJGJ-XK-0001")).json()["guide"]
    assert plain["channels"] == ["online", "counter"] and plain["payment"] is None and plain["instant"] is None
