"""One truth across the two services, over the whole demo catalog: catalog publishes every seed
matter and bundle (its own outbox, as the bus carries them to caseflow), and caseflow's rules
applied to what it receives must agree with what catalog's API shows:

- a case's statutory and promised decision limits are those of the guide of the version it pins;
- a bundle's published material list (names and required flags), form, audience and level are
  exactly what caseflow demands of a bundle submission.

This module reads both services on purpose (the only caseflow test that does: an import-linter
exception names it in pyproject.toml); catalog runs on its own database here, caseflow's rules are
pure functions.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select
from stdnum.cn import ric, uscc

from contracts.events.catalog import BundlePublished, MatterPublished
from services.caseflow.domain.bundles import bundle_matter
from services.caseflow.domain.calendar import WorkdayCalendar
from services.caseflow.domain.case_clock import case_deadlines, matter_limits
from services.caseflow.domain.form import check_form
from services.caseflow.domain.instant import (
    Holding,
    applicant_facts,
    evaluate,
    form_facts,
    licence_facts,
    prefill,
)
from services.catalog.models import outbox
from services.catalog.seed_data import BUNDLES, MATTERS
from services.catalog.tests.conftest import catalog  # noqa: F401 - the fixture, on catalog's own database

ACCEPTED = date(2026, 11, 2)


async def _published(client) -> tuple[dict[str, dict], dict[str, BundlePublished]]:
    """Every matter and bundle event in catalog's outbox, decoded as caseflow's consumer decodes it."""
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.event_type, outbox.table.c.payload))).all()
    matters: dict[str, dict] = {}
    bundles: dict[str, BundlePublished] = {}
    for event_type, payload in rows:
        data = json.loads(payload)["data"]
        if event_type == MatterPublished.event_type:
            # caseflow stores MatterPublished.model_dump_json() and reads it back as its definition
            definition = json.loads(MatterPublished.model_validate(data).model_dump_json())
            matters[definition["code"]] = definition
        elif event_type == BundlePublished.event_type:
            bundles[data["code"]] = BundlePublished.model_validate(data)
    return matters, bundles


async def test_every_seed_matter_s_case_limits_are_its_guide_s(catalog):  # noqa: F811
    published, _ = await _published(catalog)
    assert set(published) == {m["code"] for m in MATTERS}
    calendar = WorkdayCalendar()
    checked = 0
    for code, definition in sorted(published.items()):
        guide = (await catalog.get(f"/matters/{code}")).json()["guide"]
        clocks = case_deadlines(calendar, matter=definition, state="accepted", received_on=ACCEPTED,
                                resubmitted_on=None, accepted_on=ACCEPTED, approved_on=None, pauses=[],
                                extension_days=0)  # fmt: skip
        limits = matter_limits(definition)
        guide_statutory = guide["statutory_limit_days"] or None  # 0: the guide states none
        assert limits.statutory_source in {"guide", "none"}, code  # the law never overrides a seed guide
        assert (limits.statutory_days, limits.promised_days) == (guide_statutory, guide["promised_limit_days"]), code
        if guide["kind"] == "instant":
            assert "decision" not in clocks, code  # decided on acceptance
            continue
        decision = clocks["decision"]
        assert (decision.statutory_days, decision.promised_days) == (guide_statutory, guide["promised_limit_days"])
        expected = min(d for d in (guide_statutory, guide["promised_limit_days"]) if d is not None)
        assert decision.limit_days == expected, code
        assert str(expected) in decision.rule, (code, decision.rule)
        checked += 1
    assert checked >= 15  # the promised matters of the demo catalog, all of them


def _by_name(items: list[dict]) -> dict[str, bool]:
    return {item["name"]: bool(item.get("required")) for item in items}


async def test_every_seed_bundle_demands_exactly_what_catalog_shows(catalog):  # noqa: F811
    published, bundles = await _published(catalog)
    assert set(bundles) == {b["code"] for b in BUNDLES}
    for code, bundle in sorted(bundles.items()):
        shown = (await catalog.get(f"/bundles/{code}")).json()
        members = [published[c] for c in bundle.matter_codes]
        demanded = bundle_matter(bundle.model_dump(mode="json"), members)
        assert _by_name(demanded["materials"]) == _by_name(shown["materials"]), code
        produced = {m["name"]: m.get("produced_by") for m in shown["materials"]}
        assert {m["name"]: m.get("produced_by") for m in demanded["materials"]} == produced, code
        assert _by_name(demanded["form_fields"]) == _by_name(shown["form_fields"]), code
        for field in demanded["form_fields"]:  # the rules a front-end renders are the rules checked
            shown_field = next(f for f in shown["form_fields"] if f["name"] == field["name"])
            assert {k: field.get(k) for k in ("kind", "max_length", "format", "options", "minimum", "maximum")} == {
                k: shown_field.get(k) for k in ("kind", "max_length", "format", "options", "minimum", "maximum")
            }, (code, field["name"])
        assert sorted(demanded["audience"]) == sorted(shown["audience"]), code
        assert demanded["min_level"] == shown["min_level"], code
    kbqy = (await catalog.get("/bundles/BUNDLE-KBQY")).json()
    materials = {m["name"]: m for m in kbqy["materials"]}
    assert materials["法定代表人居民身份证"]["required"] is True  # the reported hole: demanded but not listed
    assert "person" in kbqy["audience"]  # the founder applies


async def test_seeded_instant_matters_decide_and_prefill_as_their_guides_say(catalog):  # noqa: F811
    """J10 over the demo catalog: what catalog publishes for 食品经营许可证延续 and 高龄津贴, evaluated
    by caseflow's rules (ADR 0027): the prefilled form passes caseflow's form check unchanged, and the
    rules decide on the facts the guide's descriptions promise."""
    published, _ = await _published(catalog)
    today = ACCEPTED
    renewal = published["SCJGJ-XK-0007"]
    assert renewal["payment"]["due_before"] == "decision" and renewal["fees"] and "kiosk" in renewal["channels"]
    company = "91371400MA3C000007"
    company = company[:-1] + uscc.calc_check_digit(company)
    food = Holding("FOOD-1", "food_business_licence", "JY13714020001234", "valid", today + timedelta(days=60),
                   {"address": "德州市德城区新湖大街1号", "business_items": "预包装食品销售"})  # fmt: skip
    applicant = applicant_facts(subject=company, kind="enterprise", level=3, name="德州某某餐饮有限公司", today=today)
    form, sources = prefill(renewal["form_fields"], subject=company, applicant=applicant, holdings=[food], today=today)
    assert form["licence_number"] == food.number and sources["uscc"] == "applicant.subject"
    confirmed = check_form(renewal["form_fields"], {**form, "business_area": 120, "no_change": "是"},
                           verified_name="德州某某餐饮有限公司")  # fmt: skip
    assert {k: confirmed[k] for k in form} == form
    facts = {**applicant, **licence_facts({"food_business_licence"}, [food], today), **form_facts(confirmed)}
    assert evaluate(renewal["instant"], facts).decided.id == "renewal-unchanged"
    assert evaluate(renewal["instant"], {**facts, "form.no_change": "否"}).decided is None
    assert evaluate(renewal["instant"], {**facts, "licence:food_business_licence.days_left": 120}).decided is None

    elderly = published["MZJ-GF-0002"]
    assert elderly["payment"] is None and not elderly["fees"]
    born_1940 = "37140219400101001"
    born_1940 += ric.calc_check_digit(born_1940 + "0")
    facts = applicant_facts(subject=born_1940, kind="person", level=2, name="王奶奶", today=today)
    assert evaluate(elderly["instant"], facts).decided is not None
    from_beijing = "11010519400101001"
    from_beijing += ric.calc_check_digit(from_beijing + "0")
    assert evaluate(elderly["instant"], applicant_facts(subject=from_beijing, kind="person", level=2, name=None,
                                                        today=today)).decided is None  # fmt: skip
