"""Enterprises, mandates (agents acting for them), real-name levels and officers."""

import asyncio
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.identity.cli import DEMO_PASSWORD, demo_officers
from services.identity.schemas import Me
from services.identity.tests.conftest import bearer, login, register

WANG = "440524188001010014"  # legal representative in the sandbox enterprise register
ZHAO = "11010519491231002X"  # agent
USCC = "91110000600037341L"  # 某某餐饮有限公司


async def token_of(client, login_name: str) -> str:
    return (await login(client, login_name)).json()["access_token"]


@pytest.fixture
async def company(identity):
    await register(identity, WANG, "13800138000", name="王五")
    await register(identity, ZHAO, "13900139000", name="赵六")
    wang = await token_of(identity, WANG)
    verified = await identity.post("/me/verification", json={"method": "registry"}, headers=bearer(wang))
    assert verified.json() == {"level": 2, "method": "registry"}
    wang = await token_of(identity, WANG)  # the level is a claim: a new token carries L2
    created = await identity.post("/enterprises", json={"uscc": USCC, "name": "某某餐饮有限公司"}, headers=bearer(wang))
    assert created.status_code == 201, created.text
    return identity, wang


async def test_enterprise_needs_l2_valid_code_and_no_duplicate(identity):
    await register(identity, WANG, "13800138000")
    token = await token_of(identity, WANG)
    low = await identity.post("/enterprises", json={"uscc": USCC, "name": "公司"}, headers=bearer(token))
    assert low.status_code == 403
    await identity.post("/me/verification", json={"method": "registry"}, headers=bearer(token))
    token = await token_of(identity, WANG)
    bad = await identity.post(
        "/enterprises", json={"uscc": "91110000600037341M", "name": "公司"}, headers=bearer(token)
    )
    assert bad.status_code == 422 and bad.json()["errors"][0] == {
        "field": "body.uscc",
        "rule": "checksum",
        "message": "the check character (GB 32100) does not match",
    }
    ok = await identity.post("/enterprises", json={"uscc": USCC.lower()}, headers=bearer(token))
    assert ok.status_code == 201 and ok.json()["uscc"] == USCC
    assert ok.json()["name"] == "某某餐饮有限公司"  # the registered name, not one from the body
    dup = await identity.post("/enterprises", json={"uscc": USCC}, headers=bearer(token))
    assert dup.status_code == 409


async def test_me_lists_what_the_person_owns_and_their_usable_mandates_as_the_model_writes_them(company):
    client, wang = company
    expires = datetime.now(UTC) + timedelta(days=30, microseconds=1500)
    granted = await client.post(
        f"/enterprises/{USCC}/agents",
        json={"agent_id_number": ZHAO, "scopes": ["caseflow:food-permit"], "expires_at": expires.isoformat()},
        headers=bearer(wang),
    )
    assert granted.status_code == 201, granted.text
    owner = (await client.get("/me", headers=bearer(wang))).json()
    assert owner["enterprises"] == [
        {"uscc": USCC, "name": "某某餐饮有限公司", "legal_representative": "4405**********0014",
         "role": "legal_representative"}
    ] and owner["mandates"] == [] and owner["id_number"] == WANG  # fmt: skip
    agent = (await client.get("/me", headers=bearer(await token_of(client, ZHAO)))).json()
    [mandate] = agent["mandates"]
    assert mandate["agent"] == ZHAO and mandate["enterprise"] == USCC and mandate["scopes"] == ["caseflow:food-permit"]
    assert mandate["active"] is True and mandate["revoked_at"] is None
    assert datetime.fromisoformat(mandate["expires_at"]) == expires and mandate["expires_at"].endswith("Z")
    for body in (owner, agent):  # every field, written as the response model writes it
        assert Me.model_validate(body).model_dump(mode="json") == body


async def test_agent_acts_for_the_enterprise_with_its_scopes(company):
    client, wang = company
    expires = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    grant = await client.post(
        f"/enterprises/{USCC}/agents",
        json={"agent_id_number": ZHAO, "scopes": ["caseflow:food-permit"], "expires_at": expires},
        headers=bearer(wang),
    )
    assert grant.status_code == 201, grant.text
    assert grant.json()["agent"] == "1101**********002X"  # masked for the enterprise's view

    zhao = await token_of(client, ZHAO)
    acting = await client.post("/sessions/act-as", json={"enterprise": USCC}, headers=bearer(zhao))
    assert acting.status_code == 201
    claims = jwt.decode(acting.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == USCC and claims["kind"] == "enterprise"
    assert claims["act"] == {"sub": ZHAO, "name": "赵六"} and claims["scope"] == "caseflow:food-permit"
    assert claims["name"] == "某某餐饮有限公司"
    me = (await client.get("/me", headers=bearer(acting.json()["access_token"]))).json()
    assert me["subject"] == USCC and me["actor"] == "1101**********002X" and me["id_number"] is None
    assert me["name"] == "某某餐饮有限公司"

    # the agent cannot hand out mandates
    stranger = await client.post(
        f"/enterprises/{USCC}/agents",
        json={"agent_id_number": WANG, "scopes": ["caseflow"], "expires_at": expires},
        headers=bearer(acting.json()["access_token"]),
    )
    assert stranger.status_code == 403


async def test_expired_mandate_cannot_act(company):
    client, wang = company
    expires = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    grant = await client.post(
        f"/enterprises/{USCC}/agents",
        json={"agent_id_number": ZHAO, "scopes": ["caseflow"], "expires_at": expires},
        headers=bearer(wang),
    )
    assert grant.status_code == 201
    zhao = await token_of(client, ZHAO)
    assert (await client.post("/sessions/act-as", json={"enterprise": USCC}, headers=bearer(zhao))).status_code == 201
    await asyncio.sleep(1.6)
    late = await client.post("/sessions/act-as", json={"enterprise": USCC}, headers=bearer(zhao))
    assert late.status_code == 403 and late.json()["type"].endswith("no-mandate")


async def test_revoked_mandate_stops_at_once_and_publishes(company):
    client, wang = company
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    mandate = (
        await client.post(
            f"/enterprises/{USCC}/agents",
            json={"agent_id_number": ZHAO, "scopes": ["caseflow"], "expires_at": expires},
            headers=bearer(wang),
        )
    ).json()
    assert (await client.delete(f"/enterprises/{USCC}/agents/{mandate['id']}", headers=bearer(wang))).status_code == 204
    zhao = await token_of(client, ZHAO)
    assert (await client.post("/sessions/act-as", json={"enterprise": USCC}, headers=bearer(zhao))).status_code == 403
    listed = (await client.get(f"/enterprises/{USCC}/agents", headers=bearer(wang))).json()
    assert listed[0]["active"] is False and listed[0]["revoked_at"]
    from sqlalchemy import select

    from services.identity.models import outbox

    async with client.app.state.sessionmaker() as session:
        types = (await session.execute(select(outbox.table.c.event_type))).scalars().all()
    assert "yiwang.identity.agent.granted.v1" in types and "yiwang.identity.agent.revoked.v1" in types


async def test_mandate_expiry_in_the_past_is_a_field_problem(company):
    client, wang = company
    response = await client.post(
        f"/enterprises/{USCC}/agents",
        json={"agent_id_number": ZHAO, "scopes": ["caseflow"], "expires_at": "2020-01-01T00:00:00Z"},
        headers=bearer(wang),
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "expires_at"


async def test_registry_mismatch_and_face_order(identity):
    fake = "11010519491231999"
    from stdnum.cn import ric

    fake += ric.calc_check_digit(fake + "0")
    await register(identity, fake, "13700137000")
    token = await token_of(identity, fake)
    refused = await identity.post("/me/verification", json={"method": "registry"}, headers=bearer(token))
    assert refused.status_code == 422 and refused.json()["type"].endswith("verification-failed")
    face_first = await identity.post(
        "/me/verification", json={"method": "face", "liveness_token": "live-1"}, headers=bearer(token)
    )
    assert face_first.status_code == 409


async def test_officers_admin_creates_and_counter_sets_l4(identity):
    from services.identity.officers import create_officer

    async with identity.app.state.sessionmaker() as session, session.begin():
        for body in demo_officers():
            await create_officer(session, identity.app.state.identity.passwords, body, created_by="test")
    officer = await identity.post("/sessions", json={"method": "officer", "login": "admin", "password": DEMO_PASSWORD})
    assert officer.status_code == 201
    admin = officer.json()["access_token"]
    claims = jwt.decode(admin, options={"verify_signature": False})
    assert claims["kind"] == "officer" and claims["roles"] == ["admin"] and claims["dept"] == "ADMIN"

    new = await identity.post(
        "/officers",
        json={"login": "li.si", "name": "李四", "department": "SCJGJ", "roles": ["counter"], "password": "pass12345"},
        headers=bearer(admin),
    )
    assert new.status_code == 201
    await register(identity, WANG, "13800138000")
    citizen = await token_of(identity, WANG)
    forbidden = await identity.post(
        "/officers",
        json={"login": "evil", "name": "坏人", "department": "SCJGJ", "roles": ["admin"], "password": "pass12345"},
        headers=bearer(citizen),
    )
    assert forbidden.status_code == 403

    acceptor = (
        await identity.post("/sessions", json={"method": "officer", "login": "li.si", "password": "pass12345"})
    ).json()["access_token"]
    counter = await identity.post(f"/persons/{WANG}/counter-verification", headers=bearer(acceptor))
    assert counter.json() == {"level": 4, "method": "counter"}
    assert jwt.decode(await token_of(identity, WANG), options={"verify_signature": False})["lvl"] == 4
