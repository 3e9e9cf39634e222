"""开办企业一件事 (BUNDLE-KBQY) as catalog publishes it, applied for through caseflow's public API by
the person founding the company (L2): the founder is who applies, and the list catalog shows is
what the submission needs — no business licence the bundle is about to issue. (Reads catalog's
seed and its publishing rule on purpose: see pyproject.toml's import-linter exception.)"""

from __future__ import annotations

from datetime import UTC, date, datetime

from contracts.events.catalog import BundlePublished
from kit.events import envelope
from services.caseflow import matters
from services.caseflow.tests.conftest import ZHANG_SAN, add_matter, person, submission, upload
from services.catalog.domain.bundles import merge
from services.catalog.matters import parse_guide, published_event
from services.catalog.models import MatterVersion
from services.catalog.seed_data import BUNDLES, INVOICE_KINDS, MATTERS, SEAL_KINDS

KBQY = next(b for b in BUNDLES if b["code"] == "BUNDLE-KBQY")


async def _publish_kbqy(client) -> dict:
    """Each member as catalog's publish() builds its event, then the bundle; returns catalog's merged view."""
    guides = []
    for code in KBQY["matter_codes"]:
        guide = parse_guide(next(m for m in MATTERS if m["code"] == code))
        row = MatterVersion(code=code, version=1, effective_from=date(2026, 1, 1),
                            published_at=datetime(2026, 1, 1, tzinfo=UTC), published_by="officer:seed-demo")  # fmt: skip
        await add_matter(client, published_event(row, guide).model_dump(mode="json"))
        guides.append(guide)
    event = BundlePublished(code=KBQY["code"], name=KBQY["name"], description=KBQY["description"],
                            matter_codes=KBQY["matter_codes"], published_at=datetime.now(UTC))  # fmt: skip
    async with client.app.state.sessionmaker() as session, session.begin():
        await matters.on_bundle_published(session, envelope(event, subject=KBQY["code"]))
    return merge(guides)


FOUNDER_FORM = {
    "applicant_name": "张三", "applicant_id": ZHANG_SAN, "mobile": "13800138000",
    "enterprise_name": "德州市示例餐饮有限公司", "address": "山东省德州市德城区示例路1号", "legal_representative": "张三",
    "registered_capital": 100, "invoice_kind": INVOICE_KINDS[0], "seal_kinds": SEAL_KINDS[0],
    "business_scope": "餐饮服务", "bank_account": "6222020000000000000",
}  # fmt: skip


async def test_a_person_founding_a_company_applies_for_kbqy(caseflow):
    shown = await _publish_kbqy(caseflow)
    founder = person(ZHANG_SAN, level=2)
    blob = await upload(caseflow, founder)
    required = [m for m in shown["materials"] if m["required"]]
    # What catalog shows as required, and only that: a card by licence, the rest uploaded.
    materials = [
        {"name": m["name"], "licence_id": f"LIC-{index}", "licence_version": 1} if m.get("licence_type")
        else {"name": m["name"], "blob_id": blob}
        for index, m in enumerate(required)
    ]  # fmt: skip
    for index, m in enumerate(required):  # the founder's own e-licences, in the sandbox licence service
        if m.get("licence_type"):
            caseflow.app.state.licences.register(f"LIC-{index}", licence_type=m["licence_type"], holder=ZHANG_SAN)
    assert "法定代表人居民身份证" in {m["name"] for m in required}
    assert "营业执照" not in {m["name"] for m in required}  # issued by the lead matter of this very bundle
    form = {f["name"]: FOUNDER_FORM[f["name"]] for f in shown["form_fields"] if f["name"] in FOUNDER_FORM}
    body = submission(bundle_code="BUNDLE-KBQY", matter_code=None, form=form, materials=materials)
    created = await caseflow.post("/cases", json=body, headers={**founder, "Idempotency-Key": "kbqy-founder-1"})
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["matter"]["code"] == "SCJGJ-XK-0002" and case["applicant"]["kind"] == "person"
    # Short of one required material, the problem names exactly it (the list shown is the list checked).
    short = submission(bundle_code="BUNDLE-KBQY", matter_code=None, form=form,
                       materials=[m for m in materials if m["name"] != "法定代表人居民身份证"])  # fmt: skip
    refused = await caseflow.post("/cases", json=short, headers={**founder, "Idempotency-Key": "kbqy-founder-2"})
    assert refused.status_code == 422
    assert [e["message"] for e in refused.json()["errors"]] == ["missing required material: 法定代表人居民身份证"]
    # An L1 account cannot (the members' highest level is L2).
    low = person(ZHANG_SAN, level=1)
    too_low = await caseflow.post("/cases", json=body, headers={**low, "Idempotency-Key": "kbqy-founder-3"})
    assert too_low.status_code == 403 and too_low.json()["rule"] == "min_level"
