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
from datetime import date

from sqlalchemy import select

from contracts.events.catalog import BundlePublished, MatterPublished
from services.caseflow.domain.bundles import bundle_matter
from services.caseflow.domain.calendar import WorkdayCalendar
from services.caseflow.domain.case_clock import case_deadlines, matter_limits
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
