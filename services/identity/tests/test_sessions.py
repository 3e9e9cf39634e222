"""Logins, lockout, refresh-token rotation and reuse, logout, WeChat, SMS, officers, JWKS."""

import asyncio

import jwt
import pytest

from services.identity.tests.conftest import bearer, login, register, sms_code

ZHANG = "11010519491231002X"
LI = "440524188001010014"


@pytest.fixture
async def zhang(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    return identity


async def test_token_carries_the_claims_contract(zhang):
    tokens = (await login(zhang, "13800138000")).json()  # login by mobile works too
    jwks = (await zhang.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "EdDSA" and header["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["sub"] == ZHANG and claims["kind"] == "person" and claims["lvl"] == 1
    assert claims["iss"] == "yiwang-identity" and claims["aud"] == "yiwang" and claims["sid"]
    assert 599 < claims["exp"] - claims["iat"] <= 600  # iat in milliseconds, exp in seconds


@pytest.mark.identity_settings(lockout_max_failures=5, lockout_duration_seconds=900)
async def test_five_failed_logins_lock_the_account(zhang):
    for _ in range(5):
        assert (await login(zhang, ZHANG, "wrong-password1")).status_code == 401
    locked = await login(zhang, ZHANG)  # even the right password is refused now
    assert locked.status_code == 423
    assert locked.headers["content-type"].startswith("application/problem+json")
    assert 0 < int(locked.headers["retry-after"]) <= 900


@pytest.mark.identity_settings(lockout_max_failures=2, lockout_duration_seconds=1, lockout_window_seconds=60)
async def test_lock_expires_and_success_clears_failures(zhang):
    await login(zhang, ZHANG, "wrong-password1")
    await login(zhang, ZHANG, "wrong-password1")
    assert (await login(zhang, ZHANG)).status_code == 423
    await asyncio.sleep(1.1)
    assert (await login(zhang, ZHANG)).status_code == 201
    assert (await login(zhang, ZHANG, "wrong-password1")).status_code == 401
    assert (await login(zhang, ZHANG)).status_code == 201  # one failure after a success: not locked


async def test_unknown_login_and_wrong_password_look_the_same(zhang):
    unknown = await login(zhang, "13999999999", "whatever123")
    wrong = await login(zhang, ZHANG, "whatever123")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]


async def test_refresh_rotates_and_reuse_revokes_the_family(zhang):
    first = (await login(zhang, ZHANG)).json()
    second = await zhang.post("/sessions/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await zhang.get("/me", headers=bearer(second["access_token"]))).status_code == 200

    reused = await zhang.post("/sessions/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and "reused" in reused.json()["detail"]
    # the whole family is gone: the newest refresh token and the access tokens of that session
    newest = await zhang.post("/sessions/refresh", json={"refresh_token": second["refresh_token"]})
    assert newest.status_code == 401
    assert (await zhang.get("/me", headers=bearer(second["access_token"]))).status_code == 401
    # another login is unaffected
    other = (await login(zhang, ZHANG)).json()
    assert (await zhang.get("/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_logout_revokes_the_session(zhang):
    tokens = (await login(zhang, ZHANG)).json()
    assert (await zhang.delete("/sessions/current", headers=bearer(tokens["access_token"]))).status_code == 204
    assert (await zhang.get("/me", headers=bearer(tokens["access_token"]))).status_code == 401
    refreshed = await zhang.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401


async def test_sms_code_login_is_single_use(zhang):
    await zhang.post("/sms-codes", json={"mobile": "13800138000", "purpose": "login"})
    code = await sms_code(zhang, "13800138000")
    body = {"method": "sms", "mobile": "13800138000", "code": code}
    assert (await zhang.post("/sessions", json=body)).status_code == 201
    again = await zhang.post("/sessions", json=body)
    assert again.status_code == 422 and again.json()["errors"][0]["rule"] == "sms_code_expired"


async def test_wechat_first_use_must_bind_then_logs_in_directly(zhang):
    first = await zhang.post("/sessions", json={"method": "wechat", "code": "wx-zhang-1"})
    assert first.status_code == 409 and first.json()["type"].endswith("wechat-not-bound")
    bound = await zhang.post(
        "/sessions",
        json={"method": "wechat", "code": "wx-zhang-2", "bind": {"login": ZHANG, "password": "secret123"}},
    )
    assert bound.status_code == 201 and bound.json()["subject"] == ZHANG
    direct = await zhang.post("/sessions", json={"method": "wechat", "code": "wx-zhang-3"})
    assert direct.status_code == 201 and direct.json()["subject"] == ZHANG
    used = await zhang.post("/sessions", json={"method": "wechat", "code": "wx-zhang-3"})
    assert used.status_code == 401
    me = (await zhang.get("/me", headers=bearer(direct.json()["access_token"]))).json()
    assert "wechat" in me["channels"]


async def test_tampered_and_foreign_tokens_are_refused(zhang):
    token = (await login(zhang, ZHANG)).json()["access_token"]
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert (await zhang.get("/me", headers=bearer(f"{head}.{payload}.{flipped}"))).status_code == 401
    none_token = jwt.encode({"sub": ZHANG}, key=None, algorithm="none")
    assert (await zhang.get("/me", headers=bearer(none_token))).status_code == 401
    assert (await zhang.get("/me")).status_code == 401


async def test_spoofed_identity_headers_are_ignored(zhang):
    token = (await login(zhang, ZHANG)).json()["access_token"]
    response = await zhang.get("/me", headers={**bearer(token), "X-Subject-Id": LI, "X-Roles": "admin"})
    assert response.json()["subject"] == ZHANG


async def test_key_rotation_keeps_old_tokens_valid(zhang):
    old = (await login(zhang, ZHANG)).json()["access_token"]
    keyring = zhang.app.state.identity.keyring
    keyring.rotation = __import__("datetime").timedelta(seconds=0)
    await keyring.rotate()
    new = (await login(zhang, ZHANG)).json()["access_token"]
    assert jwt.get_unverified_header(old)["kid"] != jwt.get_unverified_header(new)["kid"]
    kids = {k["kid"] for k in (await zhang.get("/.well-known/jwks.json")).json()["keys"]}
    assert {jwt.get_unverified_header(t)["kid"] for t in (old, new)} <= kids
    for token in (old, new):
        assert (await zhang.get("/me", headers=bearer(token))).status_code == 200


async def test_a_key_another_replica_made_is_in_this_replicas_jwks_before_it_signs_anything(zhang):
    """Two replicas: the other one rotates and signs at once; this one's JWKS (it has not looked
    at the database since) already has that key, so no verifier finds the kid unknown."""
    from datetime import timedelta

    from sqlalchemy import func, select, text

    from services.identity.keys import ROTATION_LOCK, KeyRing
    from services.identity.models import SigningKey

    ours = zhang.app.state.identity.keyring
    other = KeyRing(ours.sessionmaker, rotation=timedelta(seconds=0), token_ttl=ours.token_ttl)
    made = await other.rotate()
    assert made.kid != ours.current().kid  # this replica has not seen it
    kids = {k["kid"] for k in (await zhang.get("/.well-known/jwks.json")).json()["keys"]}
    assert made.kid in kids and ours.current().kid in kids

    if ours.sessionmaker.kw["bind"].dialect.name != "postgresql":
        return  # replicas share PostgreSQL (its advisory lock below); SQLite runs one process
    # Both replicas find the newest key too old at once: one new key, not one each. The test holds
    # the rotation lock until both wait on it, so both decide after seeing the same old key.
    later = made.created_at + timedelta(days=2)
    rings = [KeyRing(ours.sessionmaker, rotation=timedelta(days=1), token_ttl=ours.token_ttl) for _ in range(2)]
    async with ours.sessionmaker() as session:
        before = await session.scalar(select(func.count()).select_from(SigningKey))
        await session.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ROTATION_LOCK})
        rotating = asyncio.gather(*(ring.rotate(later) for ring in rings))
        waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        while not rotating.done() and await session.scalar(waiting) < 2:  # (without the lock: done)
            await asyncio.sleep(0.01)
        await session.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ROTATION_LOCK})
        rotated = await rotating
        after = await session.scalar(select(func.count()).select_from(SigningKey))
    assert after == before + 1 and rotated[0].kid == rotated[1].kid
