"""The hostile-input corpus, against every write operation with a JSON body in the gateway's merged OpenAPI.

For each such operation a valid-shaped body is built from its schema (every property, with plausible
values), then each string field in turn gets each hostile text value, each number field each number
past 64 bits, and the whole body is replaced once by JSON nested 10,000 levels deep. Every answer must
be a 4xx problem (``application/problem+json``), never a 5xx and never a success; a 422 must name the
field that carried the hostile value. It runs as the citizen (L2) and as the officer.

Values travel as raw JSON text, so a lone surrogate is sent as the escape ``"\\ud800"`` (Python cannot
encode it), and 10**30 as a JSON number.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import CITIZEN_ID, ROLES, valid_id_number

PROBLEM_JSON = "application/problem+json"
MARK = "@@hostile@@"

# Raw JSON text of each hostile value.
HOSTILE_TEXT = {
    "lone-surrogate": '"ab\\ud800cd"',
    "nul": '"ab\\u0000cd"',
    "newline": '"first line\\nsecond line"',
    "rtl-override": '"abc\\u202edef"',
    "100000-chars": json.dumps("x" * 100_000),
    "object-200-deep": '{"a":' * 200 + '"x"' + "}" * 200,
}
HOSTILE_NUMBERS = {"1e30": str(10**30), "-1e30": str(-(10**30))}
DEEP_BODY = '{"a":' * 10_000 + "1" + "}" * 10_000
# A secret nobody else sees may hold a line break or a direction mark: a success there is no harm.
SECRET_FIELDS = {"password"}
HARMLESS_IN_SECRETS = {"newline", "rtl-override"}

METHODS_WITH_BODY = ("post", "put", "patch", "delete")
PATH_VALUES = {
    "case_no": "YW20270104000001",
    "uscc": "91110000600037341L",
    "code": "SCJGJ-XK-0001",
    "version": "1",
    "year": "2027",
    "department": "GAJ",
    "mandate_id": str(uuid.UUID(int=1)),
    "id_number": CITIZEN_ID,
    "identifier": "1.2.156.3005.2.11100000000013338W087.11370800MB28559184.37080001202411010001.001.3",
    "action": "suspend",
}
# Plausible values by field name; the schema decides for the rest.
STRING_VALUES = {
    "id_number": valid_id_number("37140219900909002"),
    "agent_id_number": valid_id_number("37140219900909003"),
    "login": valid_id_number("37140219900909004"),  # nobody: wrong passwords here lock no one out
    "password": "secret-2026",
    "mobile": "13955550002",
    "phone": "13955550002",
    "sms_code": "123456",
    "code": "123456",
    "uscc": "91110000600037341L",
    "enterprise": "91110000600037341L",
    "name": "钱十",
    "applicant_name": "钱十",
    "recipient": "钱十",
    "matter_code": "SCJGJ-XK-0001",
    "bundle_code": None,
    "department": "SCJGJ",
    "division_code": "371402",
    "address": "山东省德州市德城区1号",
    "refresh_token": "not-a-real-refresh-token",
    "liveness_token": "live-ok",
    "reason": "材料齐全",
    "fees_paid_yuan": "0",
    "contact_phone": "13955550002",
    "licence_type": "business_licence",
    "holder": valid_id_number("37140219900909005"),
    "holder_name": "钱十",
    "identifier": "1.2.156.3005.2.11100000000013338W087.11370800MB28559184.37080001202411010001.001.3",
    "number": "37140020260000001",
    "text": "YWL1:NCFOXN*TDLOL%1",
}
# A case's form values: the fields of the default matter's form (SCJGJ-XK-0001, 个体工商户设立登记).
FORM = {
    "applicant_name": "钱十",
    "mobile": "13955550002",
    "business_scope": "餐饮服务",
    "address": "山东省德州市德城区1号",
}
# A material is an uploaded file or an e-licence, never both: one of each.
EITHER_OR = ({"blob_id"}, {"licence_id", "licence_version"})


class Schemas:
    """``$ref`` resolution in the merged document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def choose(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The first non-null alternative of a union (what a client would usually send)."""
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(s) for s in schema[key]]
                concrete = [s for s in options if s.get("type") != "null"]
                return self.choose(concrete[0] if concrete else options[0])
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged.update(self.choose(part))
            return merged
        return schema


def plausible(schemas: Schemas, schema: dict[str, Any], name: str = "", depth: int = 0) -> Any:
    """A valid-shaped value for ``schema``: every property filled, strings and numbers plausible."""
    schema = schemas.choose(schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        value = {key: plausible(schemas, sub, key, depth + 1) for key, sub in schema.get("properties", {}).items()}
        if not schema.get("properties") and schema.get("additionalProperties") not in (None, False):
            value = dict(FORM)  # free-form: a case's form values
        return {k: v for k, v in value.items() if v is not None}
    if kind == "array":
        item = plausible(schemas, schema.get("items", {}), name, depth + 1)
        if isinstance(item, dict) and all(keys <= item.keys() for keys in EITHER_OR):
            return [{k: v for k, v in item.items() if k not in other} for other in EITHER_OR]
        return [item]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2027-06-30T00:00:00+08:00"
        if schema.get("format") == "date":
            return "2027-01-04"
        if name in STRING_VALUES:
            return STRING_VALUES[name]
        if name == "login" or "pattern" in schema:
            return "ab-" + "x" * max(0, int(schema.get("minLength", 3)) - 3)
        return "测试" + "文" * max(0, int(schema.get("minLength", 0)) - 2)
    return "测试"


def leaves(schemas: Schemas, schema: dict[str, Any], value: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """(path, "string" | "number") of every scalar in ``value`` as its schema types it."""
    schema = schemas.choose(schema)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, sub in value.items():
            yield from leaves(schemas, properties.get(key, {"type": _kind(sub)}), sub, (*path, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from leaves(schemas, schema.get("items", {"type": _kind(sub)}), sub, (*path, index))
    elif isinstance(value, str):
        yield path, "string"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path, "number"


def _kind(value: Any) -> str:
    return {str: "string", int: "integer", float: "number", dict: "object", list: "array"}.get(type(value), "string")


def with_raw(body: Any, path: tuple, raw: str) -> str:
    """``body`` as JSON text with the value at ``path`` replaced by the raw JSON text ``raw``."""
    copy = json.loads(json.dumps(body))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = MARK
    text = json.dumps(copy, ensure_ascii=False)
    assert text.count(json.dumps(MARK)) == 1
    return text.replace(json.dumps(MARK), raw)


def write_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, body schema) of every operation that takes a JSON body."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if method in METHODS_WITH_BODY and "application/json" in content:
                found.append((method.upper(), path, content["application/json"].get("schema", {})))
    return found


def concrete_path(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "x"), path)


def names_field(problem: dict[str, Any], path: tuple) -> bool:
    """Whether some error of the problem names the field at ``path`` (its keys, in order, in the error's)."""
    wanted = [str(p) for p in path]
    while wanted and wanted[-1].isdigit():  # a problem with a list's item may name the list
        wanted.pop()
    for error in problem.get("errors") or []:
        parts = iter(str(error.get("field", "")).split("."))
        if all(any(part == w for part in parts) for w in wanted):
            return True
    return False


def verdict(response: httpx.Response, path: tuple | None, hostile: str) -> str | None:
    """What is wrong with the answer to a hostile request, or None."""
    status, content_type = response.status_code, response.headers.get("content-type", "")
    if 200 <= status < 300 and path and path[-1] in SECRET_FIELDS and hostile in HARMLESS_IN_SECRETS:
        return None
    if not 400 <= status < 500:
        return f"{status} {response.text[:160]!r}"
    if not content_type.startswith(PROBLEM_JSON):
        return f"{status} with content type {content_type!r}: {response.text[:120]!r}"
    if status == 422 and path is not None and not names_field(response.json(), path):
        fields = [e.get("field") for e in response.json().get("errors") or []]
        return f"422 names {fields}, not the field"
    return None


def send(client: httpx.Client, method: str, path: str, text: str, headers: dict[str, str]) -> httpx.Response:
    headers = {
        **headers,
        "Content-Type": "application/json",
        # what a write may require before it looks at the body: a retry key and the version it changes
        "Idempotency-Key": uuid.uuid4().hex,
        "If-Match": "1",
    }
    return client.request(method, concrete_path(path), content=text.encode("utf-8", "surrogatepass"), headers=headers)


@pytest.fixture(scope="module")
def client(gateway_url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def corpus(merged_openapi) -> list[tuple[str, str, Any, list[tuple[tuple, str]]]]:
    """(method, path, valid-shaped body, its scalar fields) for every write operation with a JSON body."""
    schemas = Schemas(merged_openapi)
    found = []
    for method, path, schema in write_operations(merged_openapi):
        body = plausible(schemas, schema)
        found.append((method, path, body, list(leaves(schemas, schema, body))))
    return found


def _report(violations: list[str], role: str, what: str) -> str:
    return f"{len(violations)} hostile {what} requests as {role} were not refused with a 4xx problem:\n" + "\n".join(
        violations
    )


@pytest.mark.parametrize("hostile", list(HOSTILE_TEXT))
@pytest.mark.parametrize("role", ROLES)
def test_hostile_text_in_every_string_field_is_refused(hostile, role, corpus, client, callers):
    violations, sent = [], 0
    for method, path, body, fields in corpus:
        for field, kind in fields:
            if kind != "string":
                continue
            response = send(client, method, path, with_raw(body, field, HOSTILE_TEXT[hostile]), callers.headers(role))
            sent += 1
            problem = verdict(response, field, hostile)
            if problem:
                violations.append(f"{method} {path} {'.'.join(map(str, field))}: {problem}")
    assert len(corpus) >= 15 and sent >= 60, f"only {sent} requests over {len(corpus)} operations"
    assert not violations, _report(violations, role, hostile)


@pytest.mark.parametrize("hostile", list(HOSTILE_NUMBERS))
@pytest.mark.parametrize("role", ROLES)
def test_numbers_past_64_bits_in_every_number_field_are_refused(hostile, role, corpus, client, callers):
    violations, sent = [], 0
    for method, path, body, fields in corpus:
        for field, kind in fields:
            if kind != "number":
                continue
            response = send(
                client, method, path, with_raw(body, field, HOSTILE_NUMBERS[hostile]), callers.headers(role)
            )
            sent += 1
            problem = verdict(response, field, hostile)
            if problem:
                violations.append(f"{method} {path} {'.'.join(map(str, field))}: {problem}")
    assert sent >= 5, f"only {sent} number fields found"
    assert not violations, _report(violations, role, hostile)


@pytest.mark.parametrize("role", ROLES)
def test_json_nested_10000_levels_is_refused(role, corpus, client, callers):
    violations = []
    for method, path, _body, _fields in corpus:
        response = send(client, method, path, DEEP_BODY, callers.headers(role))
        problem = verdict(response, None, "deep")
        if problem:
            violations.append(f"{method} {path}: {problem}")
    assert not violations, _report(violations, role, "10,000-deep JSON")
