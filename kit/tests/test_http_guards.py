"""Through a service app built by kit.app: hostile JSON bodies, unknown routes and wrong methods,
numbers past 64 bits in paths and queries — each a problem+json naming the field, never a 500."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, select

from kit.app import ServiceParts, create_service_app
from kit.bodyguard import check_json_body
from kit.deps import DbSession
from kit.settings import ServiceSettings

PROBLEM = "application/problem+json"

metadata = MetaData()
widgets = Table(
    "guard_widgets",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("count", Integer),
    Column("name", String(20)),
)


class Submission(BaseModel):
    matter_code: str
    form: dict[str, Any] = {}


class ByPassword(BaseModel):
    method: Literal["password"]
    password: str


class BySms(BaseModel):
    method: Literal["sms"]
    code: str


Login = Annotated[ByPassword | BySms, Field(discriminator="method")]


def make_router() -> APIRouter:
    router = APIRouter()

    @router.post("/logins")
    async def login(body: Login) -> dict:
        return {"method": body.method}

    @router.post("/submissions")
    async def submit(body: Submission) -> dict:
        return {"ok": True, "fields": len(body.form)}

    @router.get("/widgets/{widget_id}")
    async def widget(widget_id: int, session: DbSession) -> dict:
        row = (await session.execute(select(widgets).where(widgets.c.id == widget_id))).first()
        return {"found": row is not None}

    @router.get("/widgets")
    async def count(session: DbSession, min_count: int = 0) -> dict:
        rows = (await session.execute(select(widgets).where(widgets.c.count >= min_count))).all()
        return {"rows": len(rows)}

    return router


@pytest.fixture
async def client(database_url):
    settings = ServiceSettings(service_name="guarded", database_url=database_url, nats_enabled=False)

    async def create_tables(app) -> None:
        async with app.state.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    app = create_service_app(
        ServiceParts(settings=settings, title="guarded", routers=[make_router()], on_startup=[create_tables])
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://guarded") as http:
            yield http


def nested(depth: int) -> str:
    return '{"matter_code": "M1", "form": ' + '{"a": ' * (depth - 1) + "1" + "}" * (depth - 1) + "}"


async def test_over_deep_json_is_a_400_problem_naming_the_rule(client):
    for depth in (33, 200, 5000):
        r = await client.post("/submissions", content=nested(depth), headers={"content-type": "application/json"})
        assert r.status_code == 400, depth
        assert r.headers["content-type"] == PROBLEM
        body = r.json()
        assert body["type"].endswith("/json-too-deep") and body["errors"][0]["rule"] == "max_depth"
        # named by where it starts while the guard could parse it; past the parser's own limit, "body"
        assert body["errors"][0]["field"] == ("body.form.a.a.a.…" if depth < 1000 else "body"), depth
        assert body["instance"] == "/submissions"
        assert "x-request-id" in r.headers
    r = await client.post("/submissions", content=nested(32), headers={"content-type": "application/json"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("raw", "field", "rule"),
    [
        ('{"matter_code": "M1", "form": {"name": "\\ud800"}}', "body.form.name", "no_surrogates"),
        ('{"matter_code": "M1", "form": {"name": "a\\u0000b"}}', "body.form.name", "no_control_characters"),
        (
            '{"matter_code": "M1", "form": {"list": ["ok", "gpj\\u202eexe"]}}',
            "body.form.list.1",
            "no_control_characters",
        ),
        ('{"matter_code": "M1", "form": {"\\ud83d": 1}}', "body.form.\\ud83d", "no_surrogates"),
        ('{"matter_code": "M1\\u2066", "form": {}}', "body.matter_code", "no_control_characters"),
        ('{"matter_code": "M1", "form": {"n": 9223372036854775808}}', "body.form.n", "int64_range"),
        ('{"matter_code": "M1", "form": {"n": -9223372036854775809}}', "body.form.n", "int64_range"),
        ('{"matter_code": "M1", "form": {"n": [1, ' + "9" * 5000 + "]}}", "body.form.n.1", "int64_range"),
        ('{"matter_code": "M1", "form": {"n": 1e999}}', "body.form.n", "finite_number"),
        ('{"matter_code": "M1", "form": {"n": NaN}}', "body.form.n", "finite_number"),
    ],
)
async def test_hostile_values_anywhere_are_422_naming_the_field(client, raw, field, rule):
    r = await client.post("/submissions", content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    errors = r.json()["errors"]
    assert {"field": field, "rule": rule} in [{"field": e["field"], "rule": e["rule"]} for e in errors]


async def test_every_problem_is_listed_and_clean_bodies_pass(client):
    raw = '{"matter_code": "M1", "form": {"a": "\\u0007", "b": 18446744073709551616, "c": "fine\\nline"}}'
    r = await client.post("/submissions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["body.form.a", "body.form.b"]
    ok = {"matter_code": "M1", "form": {"name": "张三", "n": 9223372036854775807, "memo": "两行\n文字\t", "x": [1.5]}}
    r = await client.post("/submissions", json=ok)
    assert r.status_code == 200 and r.json() == {"ok": True, "fields": 4}
    # Without a JSON content type FastAPI does not read the body as JSON: a 422, and nothing stored.
    r = await client.post("/submissions", content=b'{"matter_code": "\\ud800"}')
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"


async def test_invalid_utf8_and_broken_json_are_problems_not_500(client):
    json_type = {"content-type": "application/json"}
    # A surrogate encoded in UTF-8 form (CESU) is the lone surrogate again; other bad bytes: 400.
    r = await client.post("/submissions", content=b'{"matter_code": "\xed\xa0\x80"}', headers=json_type)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.matter_code"
    r = await client.post("/submissions", content=b'{"matter_code": "\xff"}', headers=json_type)
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["rule"] == "utf8"
    r = await client.post("/submissions", content=b'{"matter_code": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


async def test_unknown_route_and_wrong_method_are_problem_json(client):
    r = await client.get("/no/such/route")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("/not-found") and r.json()["instance"] == "/no/such/route"
    r = await client.delete("/submissions")
    assert r.status_code == 405 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("/method-not-allowed") and "POST" in r.headers["allow"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/widgets/9223372036854775808", "path.widget_id"),
        ("/widgets/-99999999999999999999999", "path.widget_id"),
        ("/widgets/" + "9" * 400, "path.widget_id"),
        ("/widgets?min_count=99999999999999999999", "query.min_count"),
        ("/widgets?min_count=3000000000", "query.min_count"),  # an INTEGER column: past 32 bits
    ],
)
async def test_path_and_query_integers_past_the_column_are_422_naming_the_parameter(client, database_url, path, field):
    r = await client.get(path)
    if "3000000000" in path and database_url.startswith("sqlite"):
        assert r.status_code == 200  # SQLite's INTEGER holds 64 bits
        return
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0] == {
        "field": field,
        "rule": "out_of_range",
        "message": r.json()["errors"][0]["message"],
    }
    assert (await client.get("/widgets/9223372036854775807")).json() == {"found": False}


def test_the_guard_costs_little_on_a_submission_body():
    form = {f"field_{i}": f"值 {i} some text of a form field" for i in range(40)}
    form.update(count=3, mobile="13800138000", items=[{"a": 1, "b": "x"}] * 5)
    body = json.dumps({"matter_code": "11440100MB2C93011Y3000111", "form": form}, ensure_ascii=False).encode()
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        assert check_json_body(body) is None
    guarded = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for _ in range(rounds):
        json.loads(body)
    parse_only = (time.perf_counter() - started) / rounds
    print(f"guard {guarded * 1e6:.1f} µs per {len(body)}-byte body; json.loads alone {parse_only * 1e6:.1f} µs")
    # A request on this stack costs about a millisecond; the guard must stay a small part of it.
    assert guarded < 200e-6


def test_the_fast_search_refuses_exactly_what_text_problem_refuses():
    from kit.text import UNSAFE_TEXT, text_problem

    for code in range(0x10000):
        char = chr(code)
        assert (UNSAFE_TEXT.search(char) is not None) == (text_problem(char, multiline=True) is not None), hex(code)


@pytest.mark.parametrize("body", [{"method": "fax"}, {"password": "x"}])
async def test_a_bad_or_missing_union_tag_names_the_tag_field(client, body):
    response = await client.post("/logins", json=body)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["body.method"]


async def test_a_connection_cut_by_a_database_restart_is_a_503_problem_then_recovers(client, database_url):
    """A PostgreSQL restart or failover cuts every pooled connection: the request that meets one is
    told to retry (503, Retry-After), not a 500, and the next gets a fresh connection."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to lose")
    import asyncpg
    from sqlalchemy.engine import make_url

    assert (await client.get("/widgets/1")).json() == {"found": False}  # a pooled connection now
    url = make_url(database_url)
    admin = await asyncpg.connect(url.set(drivername="postgresql", database="postgres").render_as_string(False))
    try:
        cut = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.database,
        )
    finally:
        await admin.close()
    assert cut >= 1
    response = await client.get("/widgets/1")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM) and response.headers["retry-after"] == "1"
    assert response.json()["type"].endswith("database-unavailable")
    assert (await client.get("/widgets/1")).json() == {"found": False}
