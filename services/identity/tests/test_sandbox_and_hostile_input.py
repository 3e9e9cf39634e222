"""Sandbox pages only in a sandbox; hostile input to every write endpoint is a 4xx problem naming
the field, never a 500; codes, tokens, ID and phone numbers never reach the logs in clear."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from services.identity.officers import create_officer
from services.identity.schemas import CreateOfficer
from services.identity.tests.conftest import bearer, login, register, sms_code

ZHANG = "11010519491231002X"
WANG = "440524188001010014"
COMPANY = "91110000600037341L"


# --- sandbox pages ------------------------------------------------------------------------------


@pytest.mark.identity_settings(sandbox=False)
async def test_without_the_sandbox_flag_there_are_no_sandbox_pages_but_the_sandbox_adapters_work(identity):
    assert (await identity.get("/sandbox/sms", params={"mobile": "13800138000"})).status_code == 404
    assert (await identity.get("/sandbox/enterprises")).status_code == 404
    assert "/sandbox/sms" not in (await identity.get("/openapi.json")).json()["paths"]
    # the SMS adapter is still the sandbox one: registration works, the code just is not shown
    assert (await identity.post("/sms-codes", json={"mobile": "13800138000", "purpose": "register"})).status_code == 202
    text = identity.app.state.identity.adapters.sms.messages[-1]["text"]
    code = re.search(r"\d{6}", text).group(0)
    body = {"id_number": ZHANG, "name": "张三", "mobile": "13800138000", "password": "secret123", "sms_code": code}
    assert (await identity.post("/register", json=body)).status_code == 201


@pytest.mark.identity_settings(sandbox=True, sms_adapter="http", sms_http_url="http://127.0.0.1:9/sms")
async def test_a_sandbox_page_needs_its_sandbox_adapter_too(identity):
    assert (await identity.get("/sandbox/sms", params={"mobile": "13800138000"})).status_code == 404
    register_page = (await identity.get("/sandbox/enterprises")).json()
    assert {
        "uscc": COMPANY,
        "name": "某某餐饮有限公司",
        "legal_representative": WANG,
        "status": "存续",
    } in register_page


async def test_the_sandbox_sms_page_refuses_a_hostile_mobile(identity):
    response = await identity.get("/sandbox/sms", params={"mobile": "1380013800\x00"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "query.mobile"


# --- hostile input ------------------------------------------------------------------------------

DEEP: object = "x"
for _ in range(200):
    DEEP = {"a": DEEP}
HOSTILE = {
    "lone surrogate": "\ud800",
    "nul": "abc\x00def",
    "newline": "张\n三",
    "rtl override": "张\u202e三",
    "100k characters": "张" * 100_000,
    "number past 64 bits": 10**30,
    "negative huge": -(10**30),
    "nested object": DEEP,
    "list": ["a", ["b"]],
    "null": None,
}
PASSWORD = "pass-2026-x"


@pytest.fixture
async def tokens(identity):
    """A citizen at L2 with a bound enterprise, an agent, an admin and a counter officer."""
    assert (await register(identity, WANG, "13800138000", name="王五")).status_code == 201
    assert (await register(identity, ZHANG, "13900139000", name="张三")).status_code == 201
    wang = (await login(identity, WANG)).json()
    await identity.post("/me/verification", json={"method": "registry"}, headers=bearer(wang["access_token"]))
    assert (
        await identity.post("/enterprises", json={"uscc": COMPANY}, headers=bearer(wang["access_token"]))
    ).status_code == 201
    async with identity.app.state.sessionmaker() as session, session.begin():
        for body in (
            CreateOfficer(login="root", name="管理员", department="ADMIN", roles=["admin"], password=PASSWORD),
            CreateOfficer(login="desk", name="窗口", department="ZWFW", roles=["counter"], password=PASSWORD),
        ):
            await create_officer(session, identity.app.state.identity.passwords, body, created_by="test")

    async def officer(name):
        response = await identity.post("/sessions", json={"method": "officer", "login": name, "password": PASSWORD})
        return response.json()["access_token"]

    return identity, {"citizen": wang["access_token"], "refresh": wang["refresh_token"], "admin": await officer("root"),
                      "counter": await officer("desk")}  # fmt: skip


def write_endpoints(t: dict) -> list[tuple[str, str, dict, str | None]]:
    """(method, path, a valid body, whose token) for every identity write endpoint with a body."""
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    officer = {"login": "new.one", "name": "新人", "department": "SCJGJ", "roles": ["acceptor"], "password": PASSWORD}
    return [
        ("POST", "/sms-codes", {"mobile": "13700137000", "purpose": "register"}, None),
        (
            "POST",
            "/register",
            {
                "id_number": ZHANG,
                "name": "张三",
                "mobile": "13700137000",
                "password": "secret123",
                "sms_code": "123456",
            },
            None,
        ),  # fmt: skip
        ("POST", "/sessions", {"method": "password", "login": ZHANG, "password": "secret123"}, None),
        ("POST", "/sessions", {"method": "sms", "mobile": "13700137000", "code": "123456"}, None),
        ("POST", "/sessions", {"method": "wechat", "code": "wx-a-1", "bind": {"login": ZHANG, "password": "x1"}}, None),
        ("POST", "/sessions", {"method": "officer", "login": "root", "password": PASSWORD}, None),
        ("POST", "/sessions/refresh", {"refresh_token": t["refresh"]}, None),
        ("POST", "/sessions/act-as", {"enterprise": COMPANY}, "citizen"),
        ("POST", "/me/verification", {"method": "face", "liveness_token": "live-1"}, "citizen"),
        ("POST", "/enterprises", {"uscc": COMPANY, "name": "某某餐饮有限公司"}, "citizen"),
        (
            "POST",
            f"/enterprises/{COMPANY}/agents",
            {"agent_id_number": ZHANG, "scopes": ["caseflow"], "expires_at": expires},
            "citizen",
        ),  # fmt: skip
        ("POST", "/officers", officer, "admin"),
        ("PATCH", "/officers/desk", {"name": "窗口", "department": "ZWFW", "roles": ["counter"]}, "admin"),
    ]


def leaves(body: dict, prefix: tuple = ()) -> list[tuple]:
    """Paths to every field of a body (nested objects and list items included)."""
    paths = []
    for key, value in body.items():
        path = (*prefix, key)
        paths.append(path)
        if isinstance(value, dict):
            paths.extend(leaves(value, path))
        if isinstance(value, list):
            paths.append((*path, 0))
    return paths


async def send(client, method: str, path: str, body: dict, headers: dict):
    """JSON as a hostile client writes it: a lone surrogate travels as the escape \\ud800."""
    return await client.request(
        method, path, content=json.dumps(body), headers={**headers, "content-type": "application/json"}
    )


def replaced(body: dict, path: tuple, value) -> dict:
    import copy

    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


async def test_every_write_endpoint_answers_hostile_values_with_a_problem_naming_the_field(tokens):
    client, t = tokens
    failures = []
    tried = 0
    for method, path, body, who in write_endpoints(t):
        headers = bearer(t[who]) if who else {}
        for field in leaves(body):
            if field == ("method",):
                continue  # the discriminator: a hostile one is "no such login method", checked below
            for label, value in HOSTILE.items():
                if value is None and field in (("name",), ("liveness_token",), ("department",), ("roles",),
                                               ("bind",)):  # fmt: skip
                    continue  # optional fields: null means "not given" there
                tried += 1
                response = await send(client, method, path, replaced(body, field, value), headers)
                named = [e.get("field", "") for e in response.json().get("errors", [])] if response.content else []
                wanted = ".".join(str(p) for p in field)
                if not (
                    400 <= response.status_code < 500
                    and response.headers["content-type"].startswith("application/problem+json")
                    and any(wanted in name for name in named)
                ):
                    failures.append((method, path, wanted, label, response.status_code, named))
    assert tried > 300
    assert failures == []


async def test_hostile_discriminators_path_parameters_and_bodies_are_problems(tokens):
    client, t = tokens
    for value in ("\ud800", "x" * 100_000, 10**30, {"a": {"b": "c"}}):
        response = await send(client, "POST", "/sessions", {"method": value, "login": ZHANG, "password": "x"}, {})
        assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
    admin, citizen, counter = bearer(t["admin"]), bearer(t["citizen"]), bearer(t["counter"])
    for method, path, headers in [
        ("POST", "/persons/%ED%A0%80/counter-verification", counter),
        ("POST", "/persons/1101051949123100%00X/counter-verification", counter),
        ("POST", f"/persons/{'1' * 10_000}/counter-verification", counter),
        ("GET", "/enterprises/%E2%80%AE91110000600037341L/agents", citizen),
        ("DELETE", f"/enterprises/{COMPANY}/agents/not-a-uuid", citizen),
        ("DELETE", f"/enterprises/{COMPANY}/agents/{'9' * 40}", citizen),
        ("PATCH", "/officers/%00root", admin),
        ("DELETE", "/officers/r%0Aoot", admin),
    ]:
        response = await client.request(method, path, headers=headers, json={} if method == "PATCH" else None)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["errors"][0]["field"].startswith("path."), path
    for raw in (b'{"mobile": "13800138000", "purpose": "register"', b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000):
        response = await client.post("/sms-codes", content=raw, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, raw[:20]


async def test_names_with_controls_or_bidi_overrides_are_never_stored(identity):
    await identity.post("/sms-codes", json={"mobile": "13800138000", "purpose": "register"})
    code = await sms_code(identity, "13800138000")
    for name in ("张\u202e三", "张\x00三", "张\n三", "\ud800"):
        body = {"id_number": ZHANG, "name": name, "mobile": "13800138000", "password": "secret123", "sms_code": code}
        response = await send(identity, "POST", "/register", body, {})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.name"
    ok = await identity.post("/register", json={**body, "name": "张三"})
    assert ok.status_code == 201  # the code was not spent by the refused attempts


# --- logs ---------------------------------------------------------------------------------------


@pytest.mark.identity_settings(log_level="DEBUG", lockout_max_failures=2)
async def test_codes_tokens_and_numbers_never_reach_the_logs_in_clear(identity):
    # Read what identity's own log handler (kit.logs, with its masking) writes, at DEBUG: SQL and all.
    root = logging.getLogger()
    written = io.StringIO()
    copy = logging.StreamHandler(written)
    copy.setFormatter(root.handlers[0].formatter)
    root.addHandler(copy)
    secrets = []
    await identity.post("/sms-codes", json={"mobile": "13800138000", "purpose": "register"})
    code = await sms_code(identity, "13800138000")
    secrets.append(code)
    body = {"id_number": ZHANG, "name": "张三", "mobile": "13800138000", "password": "secret123", "sms_code": code}
    assert (await identity.post("/register", json=body)).status_code == 201
    tokens = (await login(identity, ZHANG)).json()
    secrets += [tokens["access_token"], tokens["refresh_token"], "secret123"]
    refreshed = (await identity.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
    secrets += [refreshed["access_token"], refreshed["refresh_token"]]
    await identity.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})  # reuse: revoked
    for _ in range(3):
        await login(identity, ZHANG, "wrong-pass-9")  # failures and a lock are logged
    secrets.append("wrong-pass-9")
    await identity.post("/sms-codes", json={"mobile": "13800138000", "purpose": "login"})
    login_code = await sms_code(identity, "13800138000")
    secrets.append(login_code)
    await identity.post("/sessions", json={"method": "sms", "mobile": "13800138000", "code": login_code})
    root.removeHandler(copy)
    output = written.getvalue()
    assert "login failed" in output and "tokens revoked" in output  # identity does log these events
    for secret in [*secrets, ZHANG, "13800138000"]:
        assert secret not in output, f"{secret[:12]}… in the logs"
