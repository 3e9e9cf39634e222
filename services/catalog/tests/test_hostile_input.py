"""Hostile input against catalog's write endpoints (and the reads that take numbers): every answer is
a problem (4xx, application/problem+json) that changes nothing — never a 500."""

from __future__ import annotations

import copy
import json

import pytest

from services.catalog.seed_data import MATTERS
from services.catalog.tests.conftest import admin_of

ADMIN = admin_of("SCJGJ")
BASE = copy.deepcopy(next(m for m in MATTERS if m["code"] == "SCJGJ-XK-0001"))
BASE["code"] = "SCJGJ-XK-0900"
HUGE = 2**70


def _with(path: str, value) -> dict:
    """BASE with the value at a dotted path replaced."""
    guide = copy.deepcopy(BASE)
    target = guide
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return guide


def _raw(guide: dict, marker: str, escaped: str) -> bytes:
    """JSON text with a marker replaced by an escape sequence JSON allows but UTF-8 cannot carry."""
    return json.dumps(guide, ensure_ascii=False).replace(marker, escaped).encode()


BAD_GUIDES = [
    ("name", "\u0000名称"),
    ("name", "个体\u202e户"),
    ("name", "x" * 100_000),
    ("name", {"nested": {"deep": [1, 2, 3]}}),
    ("name", 12),
    ("aliases.0", "别名\x07"),
    ("conditions.0", "条件\u2066"),
    ("materials.0.name", "身份证\x1b[31m"),
    ("materials.0.count", HUGE),
    ("materials.0.count", -1),
    ("statutory_limit_days", HUGE),
    ("statutory_limit_days", -(2**64)),
    ("promised_limit_days", 1e308),
    ("fees", [{"item": "工本费", "amount_yuan": "1e400"}]),
    ("fees", [{"item": "工本费", "amount_yuan": "NaN"}]),
    ("depth", HUGE),
    ("min_level", "L2"),
    ("department", "SCJGJ\u0000"),
    ("parallel_departments", ["SWJ\n"]),
    ("form_fields.0", {"name": "x", "label": "性别", "kind": "choice"}),  # a choice without options
    ("form_fields.0", {"name": "x", "label": "性别", "kind": "text", "options": ["男"]}),
    ("form_fields.0", {"name": "x", "label": "金额", "kind": "number", "minimum": 10, "maximum": 1}),
    ("form_fields.0", {"name": "x", "label": "金额", "kind": "number", "maximum": HUGE}),
    ("form_fields.0", {"name": "x", "label": "电话", "kind": "text", "format": "fax"}),
    ("form_fields.0", {"name": "x", "label": "电话", "kind": "text", "max_length": HUGE}),
    ("form_fields.0", {"name": "x", "label": "性别", "kind": "choice", "options": ["男", "男"]}),
    ("form_fields.0", {"name": "x", "label": "性别", "kind": "choice", "options": ["男\u0000"]}),
    ("faq", [{"question": "问", "answer": "答\ufeff"}]),
    ("window", "大厅\u2028"),
    ("unknown_key", "x"),
]


def _assert_problem(response, *, status: int = 422) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


async def _unchanged(catalog, code: str = "SCJGJ-XK-0900") -> None:
    assert (await catalog.get(f"/matters/{code}/versions")).status_code == 404


@pytest.mark.parametrize(("path", "value"), BAD_GUIDES, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD_GUIDES)])
async def test_a_hostile_guide_is_a_problem_naming_the_field(catalog, path, value):
    response = await catalog.post("/matters", json=_with(path, value), headers=ADMIN)
    problem = _assert_problem(response)
    assert problem["errors"] and all(error["field"] for error in problem["errors"])
    if path != "unknown_key":
        fields = [error["field"].removeprefix("body.") for error in problem["errors"]]
        assert any(field.startswith(path.split(".")[0]) for field in fields), problem
    await _unchanged(catalog)


@pytest.mark.parametrize("escaped", ["\\ud800", "\\udfff", "\\ud83d"])
async def test_a_lone_surrogate_anywhere_in_a_guide_is_a_problem(catalog, escaped):
    for path in ("name", "materials.0.name", "form_fields.0.label", "legal_basis.0"):
        body = _raw(_with(path, "MARK"), '"MARK"', f'"x{escaped}"')
        response = await catalog.post("/matters", content=body, headers={**ADMIN, "Content-Type": "application/json"})
        _assert_problem(response)
    await _unchanged(catalog)


async def test_malformed_and_deep_json_is_never_a_server_error(catalog):
    headers = {**ADMIN, "Content-Type": "application/json"}
    for body in (b"{", b"[]", b"null", b'"x"', b"\xff\xfe", json.dumps(_with("conditions", [[[["deep"]]]])).encode()):
        response = await catalog.post("/matters", content=body, headers=headers)
        assert 400 <= response.status_code < 500, (body[:20], response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json"), (body[:20], response.text)
    # Nesting past the parser's depth: refused, never a 500 (its problem+json shape is the kit's JSON
    # limits' concern, the same for every service).
    deep = await catalog.post("/matters", content=b"[" * 5000 + b"]" * 5000, headers=headers)
    assert 400 <= deep.status_code < 500
    await _unchanged(catalog)


@pytest.mark.parametrize("version", [str(HUGE), str(2**63), str(2**31), "0", "-1", "1e3", "１"])
async def test_a_version_out_of_range_is_a_422_problem(catalog, version):
    code = "SCJGJ-XK-0001"
    guide = (await catalog.get(f"/matters/{code}")).json()["guide"]
    for method, url, kwargs in [
        ("GET", f"/matters/{code}/versions/{version}", {}),
        ("PUT", f"/matters/{code}/versions/{version}", {"json": guide, "headers": ADMIN}),
        ("POST", f"/matters/{code}/versions/{version}/publish", {"headers": ADMIN}),
        ("GET", f"/matters/{code}/diff?from=1&to={version}", {}),
        ("GET", f"/matters/{code}/diff?from={version}&to=1", {}),
    ]:
        response = await catalog.request(method, url, **kwargs)
        _assert_problem(response)
    assert [v["version"] for v in (await catalog.get(f"/matters/{code}/versions")).json()] == [1]


async def test_hostile_draft_updates_and_publishes_change_nothing(catalog):
    created = await catalog.post("/matters", json=BASE, headers=ADMIN)
    assert created.status_code == 201, created.text
    url = "/matters/SCJGJ-XK-0900/versions/1"
    before = (await catalog.get(url)).json()
    for path, value in BAD_GUIDES:
        _assert_problem(await catalog.put(url, json=_with(path, value), headers=ADMIN))
    body = _raw(_with("name", "MARK"), '"MARK"', '"\\ud800"')
    _assert_problem(await catalog.put(url, content=body, headers={**ADMIN, "Content-Type": "application/json"}))
    for publish_body in ({"effective_from": "2026-02-30"}, {"effective_from": HUGE}, {"x": 1}, [1]):
        _assert_problem(await catalog.post(f"{url}/publish", json=publish_body, headers=ADMIN))
    assert (await catalog.get(url)).json() == before
    assert before["status"] == "draft"


async def test_reads_with_hostile_query_strings_are_never_server_errors(catalog):
    for query in ("q=%00", "q=%ED%A0%80", "department=%00", "theme=%00%00", f"depth={HUGE}", f"page={HUGE}",
                  f"page_size={HUGE}", "max_visits=-1", "audience=robot", "type=%E2%80%AE"):  # fmt: skip
        response = await catalog.get(f"/matters?{query}")
        assert response.status_code in (200, 422), (query, response.status_code, response.text)
        if response.status_code == 422:
            assert response.headers["content-type"].startswith("application/problem+json")
    for path in ("/matters/%00", "/matters/%ED%A0%80", "/bundles/%00", "/matters/%00/versions",
                 "/matters/%00/versions/1", "/matters/%00/diff?from=1&to=1", "/departments?division=%00"):  # fmt: skip
        response = await catalog.get(path)
        assert response.status_code in (404, 422), (path, response.status_code)
    assert (await catalog.post("/matters/%00/retire", headers=ADMIN)).status_code in (404, 422)
