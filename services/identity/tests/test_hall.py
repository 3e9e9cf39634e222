"""Tokens made at the hall (ADR 0025), through identity's HTTP API on SQLite and PostgreSQL: the
counter's token for the person an officer verified, the kiosk registry and its sealed secrets, the
kiosk's signed card read and the rules it must pass."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from contracts.events.identity import TokensRevoked
from kit.auth import TokenVerifier
from kit.revocation import RevocationList
from kit.secretbox import SecretBox
from kit.signing import new_nonce, signed_headers
from services.identity.models import Kiosk, KioskNonce, Person
from services.identity.officers import create_officer
from services.identity.schemas import CreateOfficer
from services.identity.tests.conftest import bearer, login, register
from services.identity.tests.test_trust import events

PASSWORD = "pass-2026-x"
LIU = "110101194505060013"  # Old Mr Liu: never registered
REGISTERED = "11010519491231002X"
DOWN = "110101194505069982"  # sequence 998: the sandbox registry / card check does not answer
SERVICE_SECRET = "gateway-identity-secret-for-tests"
KIOSK = "KIOSK-371402-01"
KIOSK_PATH = "/api/v1/identity/kiosk-sessions"  # what the kiosk signs: the gateway's path
HALL = {"device_id": KIOSK, "hall_code": "HALL-371402", "name": "24小时自助机", "location": "一楼东侧"}
CHECKED = "yiwang.identity.person.registered.v1"


async def officer(client, login_name: str, roles: list[str], department: str = "ZWFW") -> dict:
    """An officer made in the database, logged in through the API: the token answer."""
    async with client.app.state.sessionmaker() as session, session.begin():
        body = CreateOfficer(login=login_name, name="刘窗口", department=department, roles=roles, password=PASSWORD)
        await create_officer(session, client.app.state.identity.passwords, body, created_by="test")
    answer = await client.post("/sessions", json={"method": "officer", "login": login_name, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def verified_claims(client, token: str) -> dict:
    """The token checked as every service checks it (EdDSA, identity's published keys)."""
    keyring = client.app.state.identity.keyring
    verifier = TokenVerifier(keyring.public_keys, issuer="yiwang-identity", audience="yiwang")
    return await verifier.verify(token)


async def person(client, id_number: str) -> Person | None:
    async with client.app.state.sessionmaker() as session:
        return await session.get(Person, id_number)


async def person_count(client) -> int:
    async with client.app.state.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(Person))


# --- the counter ----------------------------------------------------------------------------------


async def test_a_counter_token_is_the_persons_with_the_officer_as_helper(identity):
    counter = await officer(identity, "liu.window", ["counter"])
    answer = await identity.post(
        "/counter-sessions", json={"id_number": LIU, "name": "刘老汉"}, headers=bearer(counter["access_token"])
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["refresh_token"] is None and body["expires_in"] == 1800
    claims = await verified_claims(identity, body["access_token"])
    officer_claims = await verified_claims(identity, counter["access_token"])
    assert set(claims) == {"iss", "aud", "sub", "kind", "lvl", "name", "chn", "hlp", "jti", "iat", "exp"}
    assert (claims["iss"], claims["aud"], claims["sub"], claims["kind"]) == ("yiwang-identity", "yiwang", LIU, "person")
    assert (claims["lvl"], claims["name"], claims["chn"]) == (4, "刘老汉", "counter")
    assert claims["hlp"] == {"sub": "officer:liu.window", "name": "刘窗口", "dept": "ZWFW",
                             "sid": officer_claims["sid"]}  # fmt: skip
    assert claims["exp"] - claims["iat"] == pytest.approx(1800, abs=1) and abs(claims["iat"] - time.time()) < 5
    assert "sid" not in claims and "act" not in claims  # nothing refreshes it; the officer holds no mandate
    # Old Mr Liu never registered: made known from the registry, without mobile or password, at L4.
    liu = await person(identity, LIU)
    assert (liu.name, liu.mobile, liu.password_hash, liu.level, liu.level_source) == (
        "刘老汉",
        None,
        None,
        4,
        "counter",
    )
    registered = await events(identity, CHECKED)
    verified = await events(identity, "yiwang.identity.person.verified.v1")
    assert [e["data"]["level"] for e in registered] == [1]
    assert [(e["data"]["level"], e["data"]["method"], e["data"]["verified_by"]) for e in verified] == [
        (4, "counter", "liu.window")
    ]
    # No online login opens the walk-in's record; the counter token shows the person, not the officer.
    assert (await login(identity, LIU, "anything-at-all")).status_code == 401
    me = await identity.get("/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["subject"] == LIU and me.json()["mobile"] is None
    assert me.json()["channels"] == []


async def test_a_registered_person_keeps_their_record_and_rises_to_l4(identity):
    assert (await register(identity, REGISTERED, "13800138000", name="张三")).status_code == 201
    counter = await officer(identity, "zhang.window", ["counter"])
    answer = await identity.post("/counter-sessions", json={"id_number": REGISTERED, "name": "张三"},
                                 headers=bearer(counter["access_token"]))  # fmt: skip
    assert answer.status_code == 201, answer.text
    record = await person(identity, REGISTERED)
    assert (record.level, record.mobile) == (4, "13800138000")
    # the person's own online login now carries L4 too (the same counter verification)
    assert (await login(identity, REGISTERED)).json()["level"] == 4


@pytest.mark.parametrize("roles", [["acceptor", "reviewer", "decider"], ["admin"], ["supervisor"]])
async def test_an_officer_without_the_counter_role_is_refused_and_nothing_is_made(identity, roles):
    other = await officer(identity, "not.counter", roles, department="ADMIN" if roles == ["admin"] else "SCJGJ")
    answer = await identity.post(
        "/counter-sessions", json={"id_number": LIU, "name": "刘老汉"}, headers=bearer(other["access_token"])
    )
    assert answer.status_code == 403, answer.text
    assert await person(identity, LIU) is None and await events(identity, CHECKED) == []


async def test_a_person_cannot_make_a_counter_token_for_someone_else(identity):
    assert (await register(identity, REGISTERED, "13800138000")).status_code == 201
    token = (await login(identity, REGISTERED)).json()["access_token"]
    answer = await identity.post("/counter-sessions", json={"id_number": LIU, "name": "刘老汉"}, headers=bearer(token))
    assert answer.status_code == 403 and await person(identity, LIU) is None


async def test_registry_down_is_503_and_nothing_is_made(identity):
    counter = await officer(identity, "liu.window", ["counter"])
    before = await person_count(identity)
    answer = await identity.post(
        "/counter-sessions", json={"id_number": DOWN, "name": "刘老汉"}, headers=bearer(counter["access_token"])
    )
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5", answer.text
    assert answer.json()["type"].endswith("/check-unavailable")
    assert await person_count(identity) == before and await events(identity, CHECKED) == []


async def test_a_card_name_the_registry_refuses_is_422_and_nothing_is_made(identity):
    counter = await officer(identity, "liu.window", ["counter"])
    answer = await identity.post(
        "/counter-sessions", json={"id_number": LIU, "name": "假名字"}, headers=bearer(counter["access_token"])
    )
    assert answer.status_code == 422 and answer.json()["rule"] == "registry_check", answer.text
    assert await person(identity, LIU) is None


@pytest.mark.parametrize("bad", ["110101194505060012", "11010119450506001", "11010119450532001X"])
async def test_an_id_number_failing_gb_11643_is_422_naming_the_field(identity, bad):
    counter = await officer(identity, "liu.window", ["counter"])
    answer = await identity.post(
        "/counter-sessions", json={"id_number": bad, "name": "刘老汉"}, headers=bearer(counter["access_token"])
    )
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "body.id_number", answer.text


def revocations_from(events_: list[dict]) -> RevocationList:
    revoked = RevocationList()
    for event in events_:
        revoked.add_event(TokensRevoked.model_validate(event["data"]))
    return revoked


@pytest.mark.parametrize("how", ["logout", "disabled"])
async def test_the_officers_logout_or_disabling_revokes_the_counter_tokens_they_made(identity, how):
    counter = await officer(identity, "liu.window", ["counter"])
    made = await identity.post(
        "/counter-sessions", json={"id_number": LIU, "name": "刘老汉"}, headers=bearer(counter["access_token"])
    )
    token = made.json()["access_token"]
    claims = await verified_claims(identity, token)
    assert (await identity.get("/me", headers=bearer(token))).status_code == 200
    # The person's own token made before is not the officer's: Mr Liu has none; a registered person's stays.
    if how == "logout":
        assert (await identity.delete("/sessions/current", headers=bearer(counter["access_token"]))).status_code == 204
    else:
        admin = await officer(identity, "p.admin", ["admin"], department="ADMIN")
        gone = await identity.delete("/officers/liu.window", headers=bearer(admin["access_token"]))
        assert gone.status_code == 200
    # identity itself refuses at once …
    assert (await identity.get("/me", headers=bearer(token))).status_code == 401
    # … and every other verifier does from the published event (kit.revocation, matched on hlp).
    published = await events(identity, TokensRevoked.event_type)
    assert published, "no revocation published"
    until = max(TokensRevoked.model_validate(e["data"]).until.timestamp() for e in published)
    assert until >= claims["exp"] - 1, "the revocation is forgotten before the counter token expires"
    assert revocations_from(published).refusal_for_claims(claims) in {"logout", "officer_changed"}


# --- the kiosk registry -----------------------------------------------------------------------------


async def admin_headers(client) -> dict[str, str]:
    return bearer((await officer(client, "p.admin", ["admin"], department="ADMIN"))["access_token"])


async def kiosk_row(client, device_id: str = KIOSK) -> Kiosk | None:
    async with client.app.state.sessionmaker() as session:
        return await session.get(Kiosk, device_id)


async def test_a_kiosk_secret_is_shown_once_and_stored_sealed(identity):
    headers = await admin_headers(identity)
    made = await identity.post("/kiosks", json=HALL, headers=headers)
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert len(secret) >= 43 and made.json()["kiosk"]["status"] == "active"
    listed = await identity.get("/kiosks", params={"hall_code": "HALL-371402"}, headers=headers)
    assert listed.status_code == 200 and [k["device_id"] for k in listed.json()] == [KIOSK]
    assert secret not in listed.text
    row = await kiosk_row(identity)
    assert secret not in row.secret_ciphertext and row.secret_ciphertext.startswith("v1.")
    box: SecretBox = identity.app.state.identity.box
    assert box.open(row.secret_ciphertext, context=f"kiosk:{KIOSK}") == secret
    with pytest.raises(ValueError):
        box.open(row.secret_ciphertext, context="kiosk:KIOSK-OTHER")  # copied onto another row
    again = await identity.post("/kiosks", json=HALL, headers=headers)
    assert again.status_code == 409
    changes = await events(identity, "yiwang.identity.kiosk.changed.v1")
    assert [(e["data"]["device_id"], e["data"]["change"]) for e in changes] == [(KIOSK, "registered")]
    assert secret not in json.dumps(changes)


@pytest.mark.identity_settings(sandbox=False, secrets_key="")
async def test_without_a_secrets_key_outside_a_sandbox_kiosks_are_503_and_logins_work(identity):
    headers = await admin_headers(identity)
    made = await identity.post("/kiosks", json=HALL, headers=headers)
    assert made.status_code == 503 and made.json()["type"].endswith("/kiosks-unavailable")
    assert await kiosk_row(identity) is None


# --- kiosk sessions -----------------------------------------------------------------------------------


def card(id_number: str = LIU, name: str = "刘老汉", **changes) -> dict:
    today = date.today()
    values = {"id_number": id_number, "name": name, "valid_from": (today - timedelta(days=3000)).isoformat(),
              "valid_until": (today + timedelta(days=600)).isoformat(), "card_serial": "A1B2C3D4"}  # fmt: skip
    values.update(changes)
    return values


async def kiosk_post(client, secret: str, body: dict, *, device: str = KIOSK, timestamp: int | None = None,
                     headers: dict | None = None):  # fmt: skip
    raw = json.dumps(body, ensure_ascii=False).encode()
    signed = headers or signed_headers(device, secret, "POST", KIOSK_PATH, raw, nonce=new_nonce(),
                                       timestamp=int(time.time()) if timestamp is None else timestamp)  # fmt: skip
    answer = await client.post("/kiosk-sessions", content=raw, headers={**signed, "Content-Type": "application/json"})
    return answer, signed


async def registered_kiosk(client) -> str:
    made = await client.post("/kiosks", json=HALL, headers=await admin_headers(client))
    assert made.status_code == 201, made.text
    return made.json()["secret"]


async def test_a_signed_card_read_gets_a_ten_minute_kiosk_token_and_a_walk_in_is_made_at_l2(identity):
    secret = await registered_kiosk(identity)
    answer, _ = await kiosk_post(identity, secret, card())
    assert answer.status_code == 201, answer.text
    assert answer.json()["refresh_token"] is None and answer.json()["expires_in"] == 600
    claims = await verified_claims(identity, answer.json()["access_token"])
    assert set(claims) == {"iss", "aud", "sub", "kind", "lvl", "name", "chn", "dev", "jti", "iat", "exp"}
    assert (claims["sub"], claims["kind"], claims["lvl"], claims["name"]) == (LIU, "person", 2, "刘老汉")
    assert (claims["chn"], claims["dev"]) == ("kiosk", KIOSK)
    assert claims["exp"] - claims["iat"] == pytest.approx(600, abs=1)
    liu = await person(identity, LIU)
    assert (liu.level, liu.mobile, liu.password_hash, liu.level_source) == (2, None, None, "registry")


async def test_a_kiosk_token_carries_the_persons_own_higher_level(identity):
    secret = await registered_kiosk(identity)
    counter = await officer(identity, "liu.window", ["counter"])
    await identity.post("/counter-sessions", json={"id_number": LIU, "name": "刘老汉"},
                        headers=bearer(counter["access_token"]))  # fmt: skip
    answer, _ = await kiosk_post(identity, secret, card())
    assert (await verified_claims(identity, answer.json()["access_token"]))["lvl"] == 4


async def test_forged_stale_replayed_unknown_and_revoked_devices_are_401(identity):
    secret = await registered_kiosk(identity)
    forged, _ = await kiosk_post(identity, "not-the-kiosks-secret", card())
    stale, _ = await kiosk_post(identity, secret, card(), timestamp=int(time.time()) - 301)
    unknown, _ = await kiosk_post(identity, secret, card(), device="KIOSK-000000-99")
    first, used = await kiosk_post(identity, secret, card())
    replayed, _ = await kiosk_post(identity, secret, card(), headers=used)
    unsigned = await identity.post("/kiosk-sessions", json=card())
    reasons = [a.json().get("reason") for a in (forged, stale, unknown, replayed, unsigned)]
    assert [a.status_code for a in (forged, stale, unknown, replayed, unsigned)] == [401] * 5
    assert first.status_code == 201
    assert reasons == ["bad-signature", "stale", "unknown-device", "replay", "missing"]
    # a body changed after signing is forged too
    raw = json.dumps(card()).encode()
    headers = signed_headers(KIOSK, secret, "POST", KIOSK_PATH, raw, nonce=new_nonce(), timestamp=int(time.time()))
    tampered = await identity.post("/kiosk-sessions", content=json.dumps(card(name="王五")).encode(),
                                   headers={**headers, "Content-Type": "application/json"})  # fmt: skip
    assert tampered.status_code == 401
    # revoked: refused at once, with the secret it had
    revoked = await identity.post(f"/kiosks/{KIOSK}/revoke", headers=await admin_headers_again(identity))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    after, _ = await kiosk_post(identity, secret, card())
    assert after.status_code == 401 and after.json()["reason"] == "unknown-device"
    rotated = await identity.post(f"/kiosks/{KIOSK}/secret", headers=await admin_headers_again(identity))
    assert rotated.status_code == 409


async def admin_headers_again(client) -> dict[str, str]:
    answer = await client.post("/sessions", json={"method": "officer", "login": "p.admin", "password": PASSWORD})
    return bearer(answer.json()["access_token"])


async def test_a_rotated_secret_replaces_the_old_one_at_once(identity):
    old = await registered_kiosk(identity)
    rotated = await identity.post(f"/kiosks/{KIOSK}/secret", headers=await admin_headers_again(identity))
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old
    assert (await kiosk_post(identity, old, card()))[0].status_code == 401
    assert (await kiosk_post(identity, new, card()))[0].status_code == 201


async def test_nonces_are_kept_in_the_database(identity):
    secret = await registered_kiosk(identity)
    _, used = await kiosk_post(identity, secret, card())
    async with identity.app.state.sessionmaker() as session:
        keys = (await session.scalars(select(KioskNonce.key))).all()
    assert keys == [f"{KIOSK}:{used['X-Nonce']}"]


@pytest.mark.parametrize(
    ("changes", "status", "rule"),
    [
        ({"valid_until": (date.today() - timedelta(days=1)).isoformat()}, 422, "card_expired"),
        ({"valid_from": (date.today() + timedelta(days=2)).isoformat()}, 422, "card_not_yet_valid"),
        ({"name": "假刘"}, 422, "registry_name_mismatch"),
        ({"id_number": "110101194505069990"}, 422, "registry_no_person"),
        ({"card_serial": "LOST0001"}, 422, "card_reported_lost"),
    ],
)
async def test_a_card_read_the_rules_refuse_is_422_naming_the_rule_and_makes_nobody(identity, changes, status, rule):
    secret = await registered_kiosk(identity)
    answer, _ = await kiosk_post(identity, secret, card(**changes))
    assert answer.status_code == status, answer.text
    problem = answer.json()
    named = problem.get("rule") or problem["errors"][0]["rule"]
    assert named == rule
    assert await person_count(identity) == 0


async def test_a_long_term_card_passes_and_the_check_being_down_is_503(identity):
    secret = await registered_kiosk(identity)
    long_term, _ = await kiosk_post(identity, secret, card(valid_until=None))
    assert long_term.status_code == 201, long_term.text
    down, _ = await kiosk_post(identity, secret, card(id_number=DOWN))
    assert down.status_code == 503 and await person(identity, DOWN) is None


@pytest.mark.parametrize(
    "body",
    [
        {"id_number": LIU},
        {**card(), "extra": 1},
        {**card(), "name": "刘\u0000"},
        {**card(), "valid_until": "2099-13-40"},
        {**card(), "card_serial": "x" * 500},
    ],
)
async def test_hostile_card_reads_are_422_never_500(identity, body):
    secret = await registered_kiosk(identity)
    answer, _ = await kiosk_post(identity, secret, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].startswith("body")


async def test_not_json_and_deep_json_are_refused_after_the_signature(identity):
    secret = await registered_kiosk(identity)
    for raw in (b"\xff\xfe", b"[" * 5000 + b"]" * 5000):
        headers = signed_headers(KIOSK, secret, "POST", KIOSK_PATH, raw, nonce=new_nonce(), timestamp=int(time.time()))
        answer = await identity.post("/kiosk-sessions", content=raw, headers=headers)
        assert answer.status_code in (400, 422), answer.text


# --- the gateway's key export ----------------------------------------------------------------------------


@pytest.mark.identity_settings(service_keys={"gateway": SERVICE_SECRET, "caseflow": "another-service-secret"})
async def test_only_the_gateways_signed_request_reads_the_kiosk_keys(identity):
    secret = await registered_kiosk(identity)
    path = "/kiosks/keys"

    def signed(key_id: str, key: str) -> dict:
        return signed_headers(key_id, key, "GET", path, b"", nonce=new_nonce(), timestamp=int(time.time()))

    keys = await identity.get(path, headers=signed("gateway", SERVICE_SECRET))
    assert keys.status_code == 200 and keys.json() == {KIOSK: {"secrets": [secret], "hall_code": "HALL-371402"}}
    assert (await identity.get(path)).status_code == 403
    assert (await identity.get(path, headers=signed("gateway", "wrong"))).status_code == 403
    assert (await identity.get(path, headers=signed("caseflow", "another-service-secret"))).status_code == 403
    await identity.post(f"/kiosks/{KIOSK}/revoke", headers=await admin_headers_again(identity))
    assert (await identity.get(path, headers=signed("gateway", SERVICE_SECRET))).json() == {}


# --- the demo hall's kiosk ---------------------------------------------------------------------------


async def test_seed_demo_registers_the_demo_hall_kiosk_once_with_the_configured_secret(identity, database_url,
                                                                                       nats_server):  # fmt: skip
    from services.identity.cli import seed_kiosk
    from services.identity.tests.conftest import identity_settings

    demo = "make-run-only-kiosk-secret-for-tests"
    settings = identity_settings(database_url, nats_server.url, demo_kiosk_secret=demo)
    assert await seed_kiosk(settings) == "created"
    assert await seed_kiosk(settings) == "already there"
    assert (await seed_kiosk(identity_settings(database_url, nats_server.url))).startswith("skipped")
    assert (await kiosk_post(identity, demo, card()))[0].status_code == 201
    assert (await kiosk_row(identity)).hall_code == "HALL-371402"


# --- concurrency (SQLite and PostgreSQL) ---------------------------------------------------------------


async def test_parallel_first_visits_of_one_walk_in_make_one_record(identity):
    import asyncio

    counters = [await officer(identity, f"window.{n}", ["counter"]) for n in range(4)]
    answers = await asyncio.gather(*(
        identity.post("/counter-sessions", json={"id_number": LIU, "name": "刘老汉"},
                      headers=bearer(c["access_token"]))
        for c in counters
    ))  # fmt: skip
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert await person_count(identity) == 1 and (await person(identity, LIU)).level == 4
    assert len(await events(identity, CHECKED)) == 1
    assert len(await events(identity, "yiwang.identity.person.verified.v1")) == 1


async def test_a_signed_card_read_sent_many_times_at_once_is_accepted_once(identity):
    import asyncio

    secret = await registered_kiosk(identity)
    raw = json.dumps(card(), ensure_ascii=False).encode()
    headers = signed_headers(KIOSK, secret, "POST", KIOSK_PATH, raw, nonce=new_nonce(), timestamp=int(time.time()))
    answers = await asyncio.gather(*(
        identity.post("/kiosk-sessions", content=raw, headers={**headers, "Content-Type": "application/json"})
        for _ in range(5)
    ))  # fmt: skip
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 401, 401, 401, 401], [a.text for a in answers]
    assert {a.json()["reason"] for a in answers if a.status_code == 401} == {"replay"}


async def test_acting_for_an_enterprise_from_a_kiosk_keeps_the_kiosk_binding(identity):
    """A kiosk token's act-as token is bound to the same kiosk and lives no longer (else a kiosk
    session could mint a token usable from anywhere)."""
    from services.identity.tests.test_trust import COMPANY, WANG

    secret = await registered_kiosk(identity)
    answer, _ = await kiosk_post(identity, secret, card(id_number=WANG, name="王五"))
    assert answer.status_code == 201, answer.text
    token = answer.json()["access_token"]
    kiosk_claims = await verified_claims(identity, token)
    assert (await identity.post("/enterprises", json={"uscc": COMPANY}, headers=bearer(token))).status_code == 201
    acting = await identity.post("/sessions/act-as", json={"enterprise": COMPANY}, headers=bearer(token))
    assert acting.status_code == 201, acting.text
    claims = await verified_claims(identity, acting.json()["access_token"])
    assert (claims["sub"], claims["kind"], claims["act"]["sub"]) == (COMPANY, "enterprise", WANG)
    assert (claims["chn"], claims["dev"], "sid" in claims) == ("kiosk", KIOSK, False)
    assert claims["exp"] <= kiosk_claims["exp"] and acting.json()["expires_in"] <= 600


async def test_acting_for_an_enterprise_from_the_counter_keeps_the_helper(identity):
    from services.identity.tests.test_trust import COMPANY, WANG

    counter = await officer(identity, "liu.window", ["counter"])
    made = await identity.post("/counter-sessions", json={"id_number": WANG, "name": "王五"},
                               headers=bearer(counter["access_token"]))  # fmt: skip
    token = made.json()["access_token"]
    assert (await identity.post("/enterprises", json={"uscc": COMPANY}, headers=bearer(token))).status_code == 201
    acting = await identity.post("/sessions/act-as", json={"enterprise": COMPANY}, headers=bearer(token))
    claims = await verified_claims(identity, acting.json()["access_token"])
    assert (claims["chn"], claims["hlp"]["sub"], claims["lvl"]) == ("counter", "officer:liu.window", 4)
    # the officer's logout ends it too
    assert (await identity.delete("/sessions/current", headers=bearer(counter["access_token"]))).status_code == 204
    assert (await identity.get("/me", headers=bearer(acting.json()["access_token"]))).status_code == 401
