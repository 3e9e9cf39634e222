"""Hostile input is ordinary input: every caseflow write endpoint, every text and number field,
a corpus of values that broke things before (issue 9). Each gets a 4xx problem+json naming the
field — never a 500 — and nothing is stored."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from services.caseflow.models import Blob, Case, CaseEvent, Evaluation
from services.caseflow.tests.conftest import act, keyed, officer, person, submission, submit, upload

LONE_SURROGATE, NUL, NEWLINE, BIDI = "\ud800", "a\x00b", "a\nb", "\u202egpj.exe"
HUGE_TEXT, HUGE_NUMBER, NESTED = "x" * 100_000, 10**30, {"a": {"b": [1, {"c": 2}]}}
FOR_LINES = [LONE_SURROGATE, NUL, NEWLINE, BIDI, HUGE_TEXT, HUGE_NUMBER, NESTED, [["x"]]]
FOR_TEXTS = [LONE_SURROGATE, NUL, BIDI, HUGE_TEXT, HUGE_NUMBER, NESTED]  # line breaks are allowed in texts
FOR_NUMBERS = [HUGE_NUMBER, -HUGE_NUMBER, "1" * 40, NESTED, LONE_SURROGATE, 1e308]


JSON = {"Content-Type": "application/json"}


def _json(body: Any) -> bytes:
    """As a client sends it: ASCII JSON with \\u escapes (a lone surrogate cannot be UTF-8)."""
    return json.dumps(body).encode()


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return body


async def _snapshot(client) -> tuple[int, ...]:
    async with client.app.state.sessionmaker() as session:
        return tuple(
            [(await session.execute(select(func.count()).select_from(t))).scalar_one()
             for t in (Case, CaseEvent, Blob, Evaluation)]
            + [sum((await session.execute(select(Case.version))).scalars())]
        )  # fmt: skip


SUBMIT_FIELDS = {
    "matter_code": FOR_LINES, "form.business_scope": FOR_LINES, "materials.0.name": FOR_LINES,
    "materials.0.licence_id": FOR_LINES, "materials.0.licence_version": FOR_NUMBERS, "delivery.recipient": FOR_LINES,
    "delivery.phone": FOR_LINES, "delivery.address": FOR_LINES, "fees_paid_yuan": FOR_LINES,
    "contact_phone": FOR_LINES, "matter_version": FOR_NUMBERS,
}  # fmt: skip


def _names(response, path: str) -> bool:
    fields = [e["field"] for e in response.json().get("errors", [])]
    wanted = path if path.startswith("form.") else f"body.{path}"
    return any(f == wanted or f.startswith(wanted + ".") or wanted.startswith(f + ".") for f in fields) or any(
        wanted in f for f in fields
    )


async def _refused(client, method: str, url: str, body: dict, headers: dict, path: str, before) -> None:
    response = await client.request(method, url, content=_json(body), headers={**headers, **JSON})
    assert 400 <= response.status_code < 500, (url, path, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json"), (url, path)
    assert _names(response, path), (url, path, response.text[:300])
    assert await _snapshot(client) == before, (url, path)


async def test_submission_fields(caseflow):
    base = submission(materials=[{"name": "居民身份证", "licence_id": "L1", "licence_version": 1}])
    before = await _snapshot(caseflow)
    for path, values in SUBMIT_FIELDS.items():
        for value in values:
            await _refused(caseflow, "POST", "/cases", _set(base, path, value), keyed(person()), path, before)
    for key in (LONE_SURROGATE, NUL, BIDI, "k" * 10_000):  # hostile form keys
        body = _set(base, "form", {"business_scope": "餐饮", key: "v"})
        response = await caseflow.post("/cases", content=_json(body), headers={**keyed(person()), **JSON})
        # The kit's body guard refuses unsafe text anywhere first; a merely unknown key is the form's.
        expected = "unknown_field" if key.isascii() and key.isalpha() else {"no_surrogates", "no_control_characters"}
        rule = response.json()["errors"][0]["rule"]
        assert response.status_code == 422 and (rule == expected or rule in expected), response.text
    for depth in (500, 50_000):  # deep JSON where a string is expected (the gateway limits depth first)
        marked = _json(_set(base, "form.business_scope", "DEEP"))
        raw = marked.replace(b'"DEEP"', b"[" * depth + b'"x"' + b"]" * depth)
        response = await caseflow.post("/cases", content=raw, headers={**keyed(person()), **JSON})
        assert 400 <= response.status_code < 500, depth
    assert await _snapshot(caseflow) == before


@pytest.fixture
async def a_case(caseflow):
    return await submit(caseflow)


async def test_officer_action_fields(caseflow, a_case):
    url = f"/cases/{a_case['case_no']}/actions"
    headers = {**officer("acceptor"), "If-Match": "1"}
    before = await _snapshot(caseflow)
    correction = {"action": "request_correction", "items": [{"material": "经营场所租赁合同", "problem": "不清晰"}]}
    for path, values in {"items.0.material": FOR_LINES, "items.0.problem": FOR_TEXTS}.items():
        for value in values:
            await _refused(caseflow, "POST", url, _set(correction, path, value), headers, path, before)
    for value in FOR_TEXTS:
        await _refused(caseflow, "POST", url, {"action": "reject", "reason": value}, headers, "reason", before)
    for value in FOR_NUMBERS:
        body = {"action": "suspend", "suspension": "testing", "expected_days": value}
        await _refused(caseflow, "POST", url, body, headers, "expected_days", before)
    for value in FOR_LINES:
        await _refused(caseflow, "POST", url, {"action": value}, headers, "action", before)
    huge_version = await caseflow.post(url, json={"action": "accept"}, headers={**headers, "If-Match": "9" * 19})
    assert huge_version.status_code in {409, 422} and await _snapshot(caseflow) == before


async def test_applicant_fields(caseflow, a_case):
    no = a_case["case_no"]
    await act(caseflow, a_case, officer("acceptor"), "request_correction",
              items=[{"material": "经营场所租赁合同", "problem": "不清晰"}])  # fmt: skip
    before = await _snapshot(caseflow)
    for value in FOR_LINES:
        await _refused(caseflow, "POST", f"/cases/{no}/resubmit", {"form": {"business_scope": value}},
                       person(), "form.business_scope", before)  # fmt: skip
        body = {"materials": [{"name": value, "blob_id": "b"}]}
        await _refused(caseflow, "POST", f"/cases/{no}/resubmit", body, person(), "materials.0.name", before)
    for value in FOR_TEXTS:
        await _refused(caseflow, "POST", f"/cases/{no}/evaluation", {"score": 5, "comment": value}, person(),
                       "comment", before)  # fmt: skip
    for value in FOR_NUMBERS:
        await _refused(caseflow, "POST", f"/cases/{no}/evaluation", {"score": value}, person(), "score", before)
    for value in FOR_TEXTS:
        url = f"/cases/{no}/branches/GAJ/actions"
        await _refused(caseflow, "POST", url, {"action": "deny", "reason": value},
                       {**officer("decider", "GAJ"), "If-Match": "1"}, "reason", before)  # fmt: skip


async def test_paths_queries_and_uploads(caseflow, a_case):
    before = await _snapshot(caseflow)
    for url in (f"/cases/{'9' * 5000}", "/cases?page=99999999999999999999", "/worklist?page_size=10000000000000",
                "/progress/1?code=%00%00%00%00", f"/progress/{a_case['case_no']}?code=" + "Z" * 500,
                "/cases?state=%E2%80%AE"):  # fmt: skip
        response = await caseflow.get(url, headers=officer("acceptor") if "worklist" in url else person())
        assert 400 <= response.status_code < 500, (url, response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json")
    blob = await upload(caseflow, person())
    named = await caseflow.post("/materials", files={"file": ("\u202egpj.exe\x00\n", b"%PDF-1.7 x")}, headers=person())
    assert named.status_code == 201  # the file is kept; its unsafe name is not
    async with caseflow.app.state.sessionmaker() as session:
        assert (await session.get(Blob, named.json()["id"])).filename is None
        assert (await session.get(Blob, blob)).filename == "lease.jpg"
    assert (await _snapshot(caseflow))[0] == before[0]
