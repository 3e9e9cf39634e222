"""Facts from their source and prompt revocation, through identity's HTTP API: enterprise binding
through the enterprise registry, names in tokens, refresh after a level rise, TokensRevoked."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from services.identity.adapters import build_adapters
from services.identity.adapters.enterprises import (
    HttpEnterpriseRegistry,
    RegistryUnavailable,
    SandboxEnterpriseRegistry,
)
from services.identity.models import Enterprise, outbox
from services.identity.officers import create_officer
from services.identity.schemas import CreateOfficer
from services.identity.tests.conftest import bearer, identity_settings, login, register

WANG = "440524188001010014"  # legal representative of COMPANY in the sandbox register
ZHANG = "11010519491231002X"
COMPANY = "91110000600037341L"  # 某某餐饮有限公司
REVOKED = "9144030071526726XG"  # 吊销, legal representative WANG
CANCELLED = "91620105L015101280"  # 注销, legal representative ZHANG
UNREGISTERED = "121200004013590816"  # a valid code the register does not know


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def events(client, event_type: str) -> list[dict]:
    async with client.app.state.sessionmaker() as session:
        rows = (
            await session.execute(select(outbox.table.c.payload).where(outbox.table.c.event_type == event_type))
        ).scalars()
        return [json.loads(row) for row in rows]


async def l2_token(client, id_number: str, mobile: str, name: str) -> str:
    assert (await register(client, id_number, mobile, name=name)).status_code == 201
    token = (await login(client, id_number)).json()["access_token"]
    verified = await client.post("/me/verification", json={"method": "registry"}, headers=bearer(token))
    assert verified.status_code == 200, verified.text
    return token


async def enterprise_count(client) -> int:
    async with client.app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(Enterprise))).scalar_one()


# --- enterprise binding -------------------------------------------------------------------------


async def test_only_the_registered_legal_representative_binds_and_the_registered_name_is_kept(identity):
    wang = await l2_token(identity, WANG, "13800138000", "王五")
    zhang = await l2_token(identity, ZHANG, "13900139000", "张三")

    stranger = await identity.post("/enterprises", json={"uscc": COMPANY}, headers=bearer(zhang))
    assert stranger.status_code == 403 and stranger.json()["type"].endswith("/not-legal-representative")
    assert (
        await enterprise_count(identity) == 0
        and await events(identity, "yiwang.identity.enterprise.registered.v1") == []
    )

    bound = await identity.post("/enterprises", json={"uscc": COMPANY}, headers=bearer(wang))
    assert bound.status_code == 201, bound.text
    assert bound.json() == {
        "uscc": COMPANY, "name": "某某餐饮有限公司", "legal_representative": "4405**********0014",
        "role": "legal_representative",
    }  # fmt: skip
    me = (await identity.get("/me", headers=bearer(wang))).json()
    assert [e["name"] for e in me["enterprises"]] == ["某某餐饮有限公司"]
    acting = (await identity.post("/sessions/act-as", json={"enterprise": COMPANY}, headers=bearer(wang))).json()
    assert claims_of(acting["access_token"])["name"] == "某某餐饮有限公司" and acting["name"] == "某某餐饮有限公司"
    assert (await identity.get("/me", headers=bearer(acting["access_token"]))).json()["name"] == "某某餐饮有限公司"
    [event] = await events(identity, "yiwang.identity.enterprise.registered.v1")
    assert event["data"]["name"] == "某某餐饮有限公司" and event["data"]["legal_representative"] == WANG


async def test_a_name_from_the_body_is_never_kept(identity):
    wang = await l2_token(identity, WANG, "13800138000", "王五")
    other = await identity.post("/enterprises", json={"uscc": COMPANY, "name": "张伟的公司"}, headers=bearer(wang))
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "name"
    assert await enterprise_count(identity) == 0
    same = await identity.post("/enterprises", json={"uscc": COMPANY, "name": "某某餐饮有限公司"}, headers=bearer(wang))
    assert same.status_code == 201 and same.json()["name"] == "某某餐饮有限公司"


@pytest.mark.parametrize(("uscc", "owner", "status"), [(REVOKED, WANG, "吊销"), (CANCELLED, ZHANG, "注销")])
async def test_a_revoked_or_cancelled_enterprise_cannot_be_bound(identity, uscc, owner, status):
    token = await l2_token(identity, owner, "13800138000", "某人")
    response = await identity.post("/enterprises", json={"uscc": uscc}, headers=bearer(token))
    assert response.status_code == 409 and response.json()["type"].endswith("/enterprise-inactive")
    assert response.json()["registry_status"] == status
    assert await enterprise_count(identity) == 0


async def test_an_enterprise_the_register_does_not_know_is_a_field_problem(identity):
    token = await l2_token(identity, WANG, "13800138000", "王五")
    response = await identity.post("/enterprises", json={"uscc": UNREGISTERED}, headers=bearer(token))
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "uscc", "rule": "registered", "message": "the enterprise register has no enterprise with this code",
    }  # fmt: skip


async def test_a_registry_that_does_not_answer_is_a_503_and_binds_nothing(identity):
    token = await l2_token(identity, WANG, "13800138000", "王五")
    identity.app.state.identity.adapters.enterprises = SandboxEnterpriseRegistry(delay_ms=0, failure_rate=1.0)
    response = await identity.post("/enterprises", json={"uscc": COMPANY}, headers=bearer(token))
    assert response.status_code == 503 and response.json()["type"].endswith("/registry-unavailable")
    assert await enterprise_count(identity) == 0


async def test_the_sandbox_register_takes_extra_enterprises_from_a_file(tmp_path):
    extra = tmp_path / "register.json"
    extra.write_text(json.dumps([{"uscc": UNREGISTERED, "name": "某事业单位", "legal_representative": ZHANG,
                                  "status": "存续"}]), encoding="utf-8")  # fmt: skip
    registry = SandboxEnterpriseRegistry(delay_ms=0, extra_file=str(extra))
    assert (await registry.lookup(UNREGISTERED)).name == "某事业单位"
    assert (await registry.lookup(COMPANY)).legal_representative == WANG


async def test_the_http_registry_adapter():
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-api-key"] == "k"
        code = request.url.path.rsplit("/", 1)[-1]
        if code == COMPANY:
            return httpx.Response(200, json={"uscc": COMPANY, "name": "某某餐饮有限公司",
                                             "legal_representative": WANG, "status": "存续"})  # fmt: skip
        if code == REVOKED:
            return httpx.Response(
                200, json={"uscc": COMPANY, "name": "x", "legal_representative": WANG, "status": "存续"}
            )
        if code == CANCELLED:
            return httpx.Response(500)
        return httpx.Response(404)

    registry = HttpEnterpriseRegistry(
        "https://registry.example/enterprises/", "k", 1.0, transport=httpx.MockTransport(answer)
    )
    record = await registry.lookup(COMPANY)
    assert (record.name, record.legal_representative, record.status) == ("某某餐饮有限公司", WANG, "存续")
    assert await registry.lookup(UNREGISTERED) is None
    for broken in (REVOKED, CANCELLED):  # an answer about another code; a server error
        with pytest.raises(RegistryUnavailable):
            await registry.lookup(broken)


def test_adapter_choices_do_not_depend_on_the_sandbox_flag():
    settings = identity_settings("sqlite+aiosqlite://", "nats://x", sandbox=False)
    assert isinstance(build_adapters(settings).enterprises, SandboxEnterpriseRegistry)
    real = identity_settings(
        "sqlite+aiosqlite://", "nats://x", sandbox=True, enterprise_registry_adapter="http",
        enterprise_registry_http_url="https://registry.example", enterprise_registry_http_api_key="k-7f3a9",
    )  # fmt: skip
    adapter = build_adapters(real).enterprises
    assert isinstance(adapter, HttpEnterpriseRegistry) and adapter.api_key == "k-7f3a9"
    assert "k-7f3a9" not in repr(real)  # a SecretStr
    with pytest.raises(ValueError):
        identity_settings("sqlite+aiosqlite://", "nats://x", enterprise_registry_adapter="carrier-pigeon")


# --- names in tokens, levels at refresh -----------------------------------------------------------


async def test_tokens_carry_the_name_and_refresh_reads_the_level_now(identity):
    assert (await register(identity, ZHANG, "13800138000", name="张三")).status_code == 201
    first = (await login(identity, ZHANG)).json()
    assert claims_of(first["access_token"])["name"] == "张三" and first["level"] == 1
    verified = await identity.post(
        "/me/verification", json={"method": "registry"}, headers=bearer(first["access_token"])
    )
    assert verified.json()["level"] == 2
    refreshed = (await identity.post("/sessions/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert refreshed["level"] == 2 and claims_of(refreshed["access_token"])["lvl"] == 2
    assert claims_of(refreshed["access_token"])["name"] == "张三"
    face = await identity.post(
        "/me/verification",
        json={"method": "face", "liveness_token": "live-1"},
        headers=bearer(refreshed["access_token"]),
    )
    assert face.json()["level"] == 3
    again = (await identity.post("/sessions/refresh", json={"refresh_token": refreshed["refresh_token"]})).json()
    assert again["level"] == 3 and claims_of(again["access_token"])["lvl"] == 3
    registered = (await events(identity, "yiwang.identity.person.registered.v1"))[0]["data"]
    verified_events = [e["data"] for e in await events(identity, "yiwang.identity.person.verified.v1")]
    assert registered["name"] == "张三" and [(e["level"], e["name"]) for e in verified_events] == [
        (2, "张三"),
        (3, "张三"),
    ]


async def test_a_counter_check_shows_at_the_next_refresh_and_officer_tokens_carry_names(identity):
    async with identity.app.state.sessionmaker() as session, session.begin():
        body = CreateOfficer(
            login="chuang.kou", name="窗口甲", department="ZWFW", roles=["counter"], password="pass12345"
        )
        await create_officer(session, identity.app.state.identity.passwords, body, created_by="test")
    officer = (
        await identity.post("/sessions", json={"method": "officer", "login": "chuang.kou", "password": "pass12345"})
    ).json()
    assert claims_of(officer["access_token"])["name"] == "窗口甲" and officer["name"] == "窗口甲"
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    citizen = (await login(identity, ZHANG)).json()
    counter = await identity.post(f"/persons/{ZHANG}/counter-verification", headers=bearer(officer["access_token"]))
    assert counter.json() == {"level": 4, "method": "counter"}
    refreshed = (await identity.post("/sessions/refresh", json={"refresh_token": citizen["refresh_token"]})).json()
    assert refreshed["level"] == 4 and claims_of(refreshed["access_token"])["lvl"] == 4


# --- revocations published ------------------------------------------------------------------------


def assert_window(event: dict, ttl: int = 600) -> None:
    data = event["data"]
    issued_before = datetime.fromisoformat(data["issued_before"])
    assert abs(issued_before - datetime.now(UTC)) < timedelta(seconds=30)
    assert datetime.fromisoformat(data["until"]) - issued_before == timedelta(seconds=ttl)


async def test_logout_publishes_the_session_revocation_once(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    tokens = (await login(identity, ZHANG)).json()
    sid = claims_of(tokens["access_token"])["sid"]
    assert (await identity.delete("/sessions/current", headers=bearer(tokens["access_token"]))).status_code == 204
    assert (await identity.delete("/sessions/current", headers=bearer(tokens["access_token"]))).status_code == 401
    [event] = await events(identity, "yiwang.identity.tokens.revoked.v1")
    assert event["data"]["reason"] == "logout" and event["data"]["session_id"] == sid
    assert event["data"]["subject"] is None
    assert_window(event)


async def test_refresh_token_reuse_publishes_the_session_revocation(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    tokens = (await login(identity, ZHANG)).json()
    assert (
        await identity.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 200
    assert (
        await identity.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 401
    [event] = await events(identity, "yiwang.identity.tokens.revoked.v1")
    assert event["data"]["reason"] == "refresh_reuse"
    assert event["data"]["session_id"] == claims_of(tokens["access_token"])["sid"]


async def test_mandate_revocation_publishes_enterprise_and_agent_and_stops_the_act_as_token(identity):
    wang = await l2_token(identity, WANG, "13800138000", "王五")
    assert (await identity.post("/enterprises", json={"uscc": COMPANY}, headers=bearer(wang))).status_code == 201
    assert (await register(identity, ZHANG, "13900139000", name="张三")).status_code == 201
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    mandate = (
        await identity.post(
            f"/enterprises/{COMPANY}/agents",
            json={"agent_id_number": ZHANG, "scopes": ["caseflow"], "expires_at": expires},
            headers=bearer(wang),
        )  # fmt: skip
    ).json()
    zhang = (await login(identity, ZHANG)).json()["access_token"]
    acting = (await identity.post("/sessions/act-as", json={"enterprise": COMPANY}, headers=bearer(zhang))).json()
    assert claims_of(acting["access_token"])["act"] == {"sub": ZHANG, "name": "张三"}
    assert (await identity.get("/me", headers=bearer(acting["access_token"]))).status_code == 200
    revoked = await identity.delete(f"/enterprises/{COMPANY}/agents/{mandate['id']}", headers=bearer(wang))
    assert revoked.status_code == 204
    [event] = await events(identity, "yiwang.identity.tokens.revoked.v1")
    assert event["data"]["reason"] == "mandate_revoked"
    assert (event["data"]["subject"], event["data"]["actor"], event["data"]["session_id"]) == (COMPANY, ZHANG, None)
    assert_window(event)
    # identity itself refuses the act-as token at once
    assert (await identity.get("/me", headers=bearer(acting["access_token"]))).status_code == 401


async def test_changing_or_disabling_an_officer_publishes_and_ends_their_sessions(identity):
    async with identity.app.state.sessionmaker() as session, session.begin():
        for body in (
            CreateOfficer(login="root", name="平台管理员", department="ADMIN", roles=["admin"], password="pass12345"),
            CreateOfficer(login="li.si", name="李四", department="SCJGJ", roles=["acceptor"], password="pass12345"),
        ):
            await create_officer(session, identity.app.state.identity.passwords, body, created_by="test")

    async def officer_login(name: str) -> dict:
        return (
            await identity.post("/sessions", json={"method": "officer", "login": name, "password": "pass12345"})
        ).json()

    admin = bearer((await officer_login("root"))["access_token"])
    li = await officer_login("li.si")
    renamed = await identity.patch("/officers/li.si", json={"name": "李四四"}, headers=admin)
    assert renamed.status_code == 200 and await events(identity, "yiwang.identity.tokens.revoked.v1") == []
    assert (await identity.get("/me", headers=bearer(li["access_token"]))).status_code == 200  # a name is no access

    changed = await identity.patch("/officers/li.si", json={"roles": ["reviewer"]}, headers=admin)
    assert changed.status_code == 200 and changed.json()["roles"] == ["reviewer"]
    [event] = await events(identity, "yiwang.identity.tokens.revoked.v1")
    assert (event["data"]["reason"], event["data"]["subject"]) == ("officer_changed", "officer:li.si")
    assert_window(event, ttl=1800)  # an officer's revocation outlives the counter tokens they made (ADR 0025)
    assert (await identity.get("/me", headers=bearer(li["access_token"]))).status_code == 401
    assert (await identity.post("/sessions/refresh", json={"refresh_token": li["refresh_token"]})).status_code == 401
    fresh = await officer_login("li.si")
    assert claims_of(fresh["access_token"])["roles"] == ["reviewer"]
    # signed right after the revocation, usually within the same second: not caught by it (iat in ms)
    assert (await identity.get("/me", headers=bearer(fresh["access_token"]))).status_code == 200

    disabled = await identity.delete("/officers/li.si", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert len(await events(identity, "yiwang.identity.tokens.revoked.v1")) == 2
    assert (await identity.get("/me", headers=bearer(fresh["access_token"]))).status_code == 401
    assert (await identity.post("/sessions/refresh", json={"refresh_token": fresh["refresh_token"]})).status_code == 401
    login_again = await identity.post(
        "/sessions", json={"method": "officer", "login": "li.si", "password": "pass12345"}
    )
    assert login_again.status_code == 401 and login_again.json()["detail"] == "login or password is wrong"
