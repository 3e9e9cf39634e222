"""Catalog through its HTTP API: guides, versions, publishing, search, directory, bundles."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
from sqlalchemy import select

from services.catalog.domain.guide import Guide
from services.catalog.models import outbox
from services.catalog.seed_data import MATTERS
from services.catalog.tests.conftest import admin_of, bearer, token

SCHEMAS = Path(__file__).resolve().parents[3] / "contracts" / "schemas"

FULL_GUIDE = {
    "code": "SCJGJ-XK-0100",
    "name": "药品零售企业经营许可",
    "aliases": ["药店开办许可", "药品经营许可证核发"],
    "keywords": ["药店", "药品"],
    "matter_type": "行政许可",
    "department": "SCJGJ",
    "level": "county",
    "division_code": "371402",
    "legal_basis": ["《中华人民共和国药品管理法》第五十二条"],
    "conditions": ["有依法经过资格认定的药师", "有与所经营药品相适应的营业场所"],
    "audience": ["enterprise"],
    "themes": ["operating_permits", "start_business"],
    "materials": [
        {
            "name": "营业执照",
            "required": True,
            "forms": ["copy", "electronic"],
            "count": 1,
            "template_file": None,
            "licence_type": "business_licence",
            "note": "电子证照可免提交",
        },
        {
            "name": "药品经营许可证申请表",
            "required": True,
            "forms": ["original"],
            "count": 2,
            "template_file": "templates/scjgj/drug-retail.docx",
            "licence_type": None,
            "note": None,
        },
    ],
    "statutory_limit_days": 30,
    "promised_limit_days": 15,
    "kind": "promised",
    "fees": [{"item": "工本费", "amount_yuan": "10.50", "basis": "鲁价费发〔2020〕1号"}],
    "result": {
        "name": "药品经营许可证",
        "form": "licence",
        "licence_type": "drug_business_licence",
        "delivery": ["window", "express"],
    },
    "depth": 3,
    "max_visits": 1,
    "online": True,
    "express": True,
    "min_level": 3,
    "steps": [
        {"name": "受理", "roles": ["acceptor"], "limit_days": 1},
        {"name": "现场检查", "roles": ["reviewer"], "limit_days": 10},
        {"name": "决定", "roles": ["decider"], "limit_days": None},
    ],
    "form_fields": [
        {
            "name": "enterprise_name",
            "label": "企业名称",
            "kind": "text",
            "required": True,
            "max_length": 100,
            "format": None,
            "options": None,
            "minimum": None,
            "maximum": None,
            "prefill": "applicant.name",
        },
        {
            "name": "mobile",
            "label": "联系电话",
            "kind": "text",
            "required": True,
            "max_length": 11,
            "format": "mobile",
            "options": None,
            "minimum": None,
            "maximum": None,
            "prefill": None,
        },
        {
            "name": "shop_kind",
            "label": "店铺类型",
            "kind": "choice",
            "required": False,
            "max_length": None,
            "format": None,
            "options": ["餐饮", "零售"],
            "minimum": None,
            "maximum": None,
            "prefill": None,
        },
        {
            "name": "area",
            "label": "经营面积（平方米）",
            "kind": "number",
            "required": True,
            "max_length": None,
            "format": None,
            "options": None,
            "minimum": 1.0,
            "maximum": 100000.0,
            "prefill": None,
        },
    ],  # fmt: skip
    "faq": [{"question": "连锁门店需要分别申请吗？", "answer": "需要，每个门店单独申请。"}],
    "parallel_departments": ["WJW"],
    "consult_phone": "0534-2688000",
    "window": "德城区政务服务中心二楼 A12",
    "channels": ["online", "kiosk"],
    "payment": {"due_before": "decision", "refund_on": ["withdrawn", "denied"], "assessed": False},
    "instant": None,  # with parallel departments the platform cannot decide: test_instant_guides.py
}


async def create_and_publish(client, guide: dict, headers=None) -> dict:
    headers = headers or admin_of(guide["department"])
    created = await client.post("/matters", json=guide, headers=headers)
    assert created.status_code == 201, created.text
    version = created.json()["version"]
    published = await client.post(f"/matters/{guide['code']}/versions/{version}/publish", headers=headers)
    assert published.status_code == 200, published.text
    return published.json()


async def test_guide_round_trips_with_every_field(catalog):
    # Every field of the guide model is set here, so a field the store drops fails this test.
    assert set(FULL_GUIDE) == set(Guide.model_fields)
    published = await create_and_publish(catalog, FULL_GUIDE)
    assert published["status"] == "published" and published["version"] == 1
    detail = (await catalog.get(f"/matters/{FULL_GUIDE['code']}")).json()
    assert detail["guide"] == FULL_GUIDE
    version = (await catalog.get(f"/matters/{FULL_GUIDE['code']}/versions/1")).json()
    assert version["guide"] == FULL_GUIDE and version["effective_from"]


async def test_published_version_cannot_change(catalog):
    code = "SCJGJ-XK-0001"
    before = (await catalog.get(f"/matters/{code}/versions/1")).json()
    changed = copy.deepcopy(before["guide"])
    changed["promised_limit_days"] = 3
    headers = admin_of("SCJGJ")
    response = await catalog.put(f"/matters/{code}/versions/1", json=changed, headers=headers)
    assert response.status_code == 409 and response.json()["type"].endswith("/version-immutable")
    again = await catalog.post(f"/matters/{code}/versions/1/publish", headers=headers)
    assert again.status_code == 409
    assert (await catalog.get(f"/matters/{code}/versions/1")).json() == before


async def test_new_version_diff_and_pinned_old_version(catalog):
    code = "SCJGJ-XK-0001"
    headers = admin_of("SCJGJ")
    v1 = (await catalog.get(f"/matters/{code}/versions/1")).json()["guide"]
    v2 = copy.deepcopy(v1)
    v2["promised_limit_days"] = 2
    v2["fees"] = [{"item": "加急费", "amount_yuan": "0.00", "basis": None}]
    created = await catalog.post("/matters", json=v2, headers=headers)
    assert created.status_code == 201 and created.json()["version"] == 2
    # One open draft at a time.
    assert (await catalog.post("/matters", json=v2, headers=headers)).status_code == 409
    # Drafts can change until published.
    v2["express"] = False
    assert (await catalog.put(f"/matters/{code}/versions/2", json=v2, headers=headers)).status_code == 200
    assert (await catalog.get(f"/matters/{code}")).json()["version"] == 1  # drafts are not current
    assert (await catalog.post(f"/matters/{code}/versions/2/publish", headers=headers)).status_code == 200

    diff = (await catalog.get(f"/matters/{code}/diff", params={"from": 1, "to": 2})).json()
    assert {c["path"]: (c["old"], c["new"]) for c in diff["changes"]} == {
        "promised_limit_days": (1, 2),
        "fees[加急费]": (None, {"item": "加急费", "amount_yuan": "0.00", "basis": None}),
        "express": (True, False),
    }
    assert (await catalog.get(f"/matters/{code}")).json()["version"] == 2
    # A case submitted under version 1 still reads version 1, now closed by version 2's start.
    pinned = (await catalog.get(f"/matters/{code}/versions/1")).json()
    assert pinned["guide"] == v1 and pinned["effective_to"] is not None
    versions = (await catalog.get(f"/matters/{code}/versions")).json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "published"), (2, "published")]
    search = (await catalog.get("/matters", params={"q": "个体工商户设立登记"})).json()
    assert [(i["code"], i["version"]) for i in search["items"]][:1] == [(code, 2)]


async def test_business_licence_found_by_initials_chinese_and_substring(catalog):
    expected = {"SCJGJ-XK-0001", "SCJGJ-XK-0002", "SCJGJ-XK-0004", "SCJGJ-QT-0006"}
    for q in ("yyzz", "营业执照", "营业", "YYZZ", "yingye"):
        found = (await catalog.get("/matters", params={"q": q, "page_size": 100})).json()
        codes = {i["code"] for i in found["items"]}
        assert expected <= codes, (q, codes)
    # Exact name and exact initials rank first; several words must all occur.
    first = (await catalog.get("/matters", params={"q": "企业设立登记"})).json()["items"][0]
    assert first["code"] == "SCJGJ-XK-0002"
    first = (await catalog.get("/matters", params={"q": "yyzzysbl"})).json()["items"][0]
    assert first["code"] == "SCJGJ-QT-0006"
    both = (await catalog.get("/matters", params={"q": "营业执照 注销"})).json()
    assert [i["code"] for i in both["items"]] == []  # 企业注销登记 mentions no 营业执照 in its names
    both = (await catalog.get("/matters", params={"q": "个体 营业"})).json()
    assert [i["code"] for i in both["items"]] == ["SCJGJ-XK-0001"]
    assert (await catalog.get("/matters", params={"q": "100%_"})).json()["total"] == 0


async def test_filters_combine_and_paginate(catalog):
    params = {"department": "SCJGJ", "audience": "enterprise", "depth": 4, "max_visits": 0, "online": "true"}
    found = (await catalog.get("/matters", params=params)).json()
    expected = sorted(
        m["code"]
        for m in MATTERS
        if m["department"] == "SCJGJ" and "enterprise" in m["audience"] and m["depth"] >= 4 and m["max_visits"] == 0
    )
    assert sorted(i["code"] for i in found["items"]) == expected and found["total"] == len(expected) == 3
    themed = (await catalog.get("/matters", params={"theme": "start_business", "type": "行政许可"})).json()
    assert sorted(i["code"] for i in themed["items"]) == ["SCJGJ-XK-0001", "SCJGJ-XK-0002"]
    person = (await catalog.get("/matters", params={"audience": "person", "q": "身份证"})).json()
    assert {i["code"] for i in person["items"]} == {"GAJ-XK-0002", "GAJ-XK-0003"}
    everything = (await catalog.get("/matters", params={"page_size": 100})).json()
    assert everything["total"] == len(MATTERS)
    pages = [(await catalog.get("/matters", params={"page": p, "page_size": 10})).json() for p in (1, 2, 3, 4)]
    codes = [i["code"] for page in pages for i in page["items"]]
    assert len(codes) == len(set(codes)) == len(MATTERS) and pages[3]["total"] == len(MATTERS)
    bad = await catalog.get("/matters", params={"page_size": 1000})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.page_size"
    bad = await catalog.get("/matters", params={"type": "许可"})
    assert bad.status_code == 422


async def test_incomplete_matter_cannot_be_published(catalog):
    draft = {"code": "SWJ-QT-0100", "name": "跨区域涉税事项报告", "department": "SWJ", "kind": "promised"}
    headers = admin_of("SWJ")
    assert (await catalog.post("/matters", json=draft, headers=headers)).status_code == 201
    response = await catalog.post("/matters/SWJ-QT-0100/versions/1/publish", headers=headers)
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["type"].endswith("/incomplete-guide")
    assert {e["field"] for e in body["errors"]} == {
        "matter_type",
        "level",
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
        "promised_limit_days",
    }
    assert (await catalog.get("/matters/SWJ-QT-0100")).status_code == 404
    assert (await catalog.get("/matters/SWJ-QT-0100/versions/1")).json()["status"] == "draft"


async def test_writes_need_the_admin_of_that_department(catalog):
    guide = {**FULL_GUIDE, "code": "SCJGJ-XK-0101"}
    assert (await catalog.post("/matters", json=guide)).status_code == 401
    refused = [
        bearer(token(roles=("acceptor", "reviewer", "decider"), department="SCJGJ")),
        bearer(token(department="SWJ")),
        bearer(token(kind="person", department=None)),
    ]
    for headers in refused:
        response = await catalog.post("/matters", json=guide, headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["type"].endswith("/forbidden")
    assert (await catalog.post("/matters/SCJGJ-XK-0001/retire", headers=admin_of("SWJ"))).status_code == 403
    draft = (await catalog.post("/matters", json=guide, headers=admin_of("SCJGJ"))).json()
    assert draft["status"] == "draft"
    # Moving a matter to another department needs both departments' admin.
    moved = {**guide, "department": "SWJ"}
    assert (
        await catalog.put("/matters/SCJGJ-XK-0101/versions/1", json=moved, headers=admin_of("SWJ"))
    ).status_code == 403
    assert (await catalog.post("/matters/SCJGJ-XK-0101/versions/1/publish", headers=admin_of("SWJ"))).status_code == 403
    # The platform administrator (department ADMIN) maintains every department.
    assert (
        await catalog.post("/matters/SCJGJ-XK-0101/versions/1/publish", headers=admin_of("ADMIN"))
    ).status_code == 200
    unknown = {**guide, "code": "SCJGJ-XK-0102", "parallel_departments": ["NOPE"]}
    response = await catalog.post("/matters", json=unknown, headers=admin_of("SCJGJ"))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "parallel_departments.0"


async def _outbox_events(client) -> list[dict]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.payload).order_by(outbox.table.c.id))).scalars().all()
    return [json.loads(r) for r in rows]


async def test_published_and_retired_events_validate_against_committed_schemas(catalog):
    await create_and_publish(catalog, FULL_GUIDE)
    retired = await catalog.post(f"/matters/{FULL_GUIDE['code']}/retire", headers=admin_of("SCJGJ"))
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    events = [e for e in await _outbox_events(catalog) if e["subject"] == FULL_GUIDE["code"]]
    assert [e["type"] for e in events] == ["yiwang.catalog.matter.published.v1", "yiwang.catalog.matter.retired.v1"]
    for event in events:
        schema = json.loads((SCHEMAS / f"{event['type']}.json").read_text())
        jsonschema.validate(event["data"], schema)
    published = events[0]["data"]
    assert published["version"] == 1 and published["materials"][0]["licence_type"] == "business_licence"
    assert published["result"]["licence_type"] == "drug_business_licence"
    assert published["steps"][1]["roles"] == ["reviewer"] and published["min_level"] == 3
    # The department's name from the directory travels with the matter (caseflow shows who acted, ADR 0021).
    assert published["department"] == "SCJGJ" and published["department_name"] == "德州市市场监督管理局"
    # Retired: not found by search or detail, but every version stays readable for its cases.
    assert (await catalog.get(f"/matters/{FULL_GUIDE['code']}")).status_code == 404
    assert (await catalog.get("/matters", params={"q": "药店"})).json()["total"] == 0
    assert (await catalog.get(f"/matters/{FULL_GUIDE['code']}/versions/1")).json()["status"] == "retired"
    # Seeded matters were published through the same path, so their events are there too.
    seeded = [e for e in await _outbox_events(catalog) if e["type"] == "yiwang.catalog.matter.published.v1"]
    assert len(seeded) == len(MATTERS) + 1


async def test_directory_departments_themes_bundles(catalog):
    departments = {d["code"]: d for d in (await catalog.get("/departments")).json()}
    assert {"SCJGJ", "BDCDJ", "SWJ", "RSJ", "GAJ"} <= set(departments)
    assert departments["SCJGJ"]["matters"] == 7 and departments["SCJGJ"]["division_code"] == "371400"
    county = (await catalog.get("/departments", params={"division": "371402"})).json()
    assert [d["code"] for d in county] == ["GAJ-DC"]
    themes = {t["code"]: t for t in (await catalog.get("/themes")).json()}
    assert themes["start_business"]["name"] == "开办企业" and themes["birth"]["matters"] >= 5
    assert len((await catalog.get("/divisions")).json()) == 3
    bundles = (await catalog.get("/bundles")).json()
    assert {b["code"] for b in bundles} == {"BUNDLE-KBQY", "BUNDLE-CSYJS", "BUNDLE-ESFGH"}
    bundle = (await catalog.get("/bundles/BUNDLE-KBQY")).json()
    assert bundle["departments"] == ["GAJ", "RSJ", "SCJGJ", "SWJ"] and bundle["unavailable"] == []
    names = [m["name"] for m in bundle["materials"]]
    assert sorted(names) == sorted(set(names))  # shared materials asked once
    business = next(m for m in bundle["materials"] if m["licence_type"] == "business_licence")
    assert len(business["matters"]) == 3 and business["produced_by"] == "SCJGJ-XK-0002"
    assert bundle["audience"] == ["person", "enterprise"] and bundle["min_level"] == 2
    seal = next(f for f in bundle["form_fields"] if f["name"] == "seal_kinds")
    assert seal["kind"] == "choice" and "公章" in seal["options"]
    assert (await catalog.get("/bundles/NOPE")).status_code == 404
    assert (await catalog.get("/matters/NOPE")).json()["status"] == 404


SEARCHES = [
    {"q": "yyzz"},
    {"q": "营业"},
    {"q": "证", "page_size": 5, "page": 2},
    {"q": "登记", "audience": "person", "online": True},
    {"q": "shebao"},
    {"department": "RSJ"},
    {"department": "SCJGJ", "q": "许可", "depth": 3},
    {"theme": "birth", "max_visits": 1},
    {"matter_type": "行政给付"},
    {"q": "个体工商户设立登记"},  # longer than the index's prefix table
    {"q": "证", "page": 3, "page_size": 7},
    {"q": "社会保险登记 单位"},
    {"q": "bdcdj", "department": "BDCDJ"},
    {},
    {"page": 2, "page_size": 25},
]


async def test_search_index_answers_like_the_database_and_follows_publishing(catalog):
    from services.catalog import matters
    from services.catalog.domain.query import MatterQuery

    cache = catalog.app.state.search_index

    async def both(filters):
        async with catalog.app.state.sessionmaker() as session:
            query = MatterQuery(**filters)
            in_memory = (await cache.current(session)).search(query)
            database = await matters.search_database(session, query)
        return in_memory, database

    for filters in SEARCHES:
        in_memory, database = await both(filters)
        assert in_memory["total"] == database["total"], filters
        assert {i["code"] for i in in_memory["items"]} == {i["code"] for i in database["items"]}, filters
        if filters.get("q") and catalog.app.state.engine.dialect.name == "sqlite":
            assert in_memory["items"] == database["items"], filters  # same order (PostgreSQL collates codes)
    revision = cache.index.revision
    await create_and_publish(catalog, FULL_GUIDE)
    found = (await catalog.get("/matters", params={"q": "ypjyxk"})).json()  # 药品经营许可 initials
    assert found["items"][0]["code"] == FULL_GUIDE["code"] and cache.index.revision == revision + 1


async def test_openapi_and_detail_json(catalog):
    schema = (await catalog.get("/openapi.json")).json()
    assert {"/matters", "/matters/{code}", "/matters/{code}/diff", "/bundles/{code}"} <= set(schema["paths"])
    detail = await catalog.get("/matters/SCJGJ-XK-0001")
    assert detail.headers["content-type"] == "application/json"
    body = detail.json()
    assert body["guide"]["result"]["licence_type"] == "business_licence" and body["status"] == "published"


async def test_the_demo_bundles_are_announced_for_caseflow(catalog):
    from services.catalog.seed_data import BUNDLES

    events = [e for e in await _outbox_events(catalog) if e["type"] == "yiwang.catalog.bundle.published.v1"]
    assert sorted(e["data"]["code"] for e in events) == sorted(b["code"] for b in BUNDLES)
    schema = json.loads((SCHEMAS / "yiwang.catalog.bundle.published.v1.json").read_text())
    for event in events:
        jsonschema.validate(event["data"], schema)
    kbqy = next(e["data"] for e in events if e["data"]["code"] == "BUNDLE-KBQY")
    assert kbqy["matter_codes"][0] == "SCJGJ-XK-0002" and len(kbqy["matter_codes"]) == 4
