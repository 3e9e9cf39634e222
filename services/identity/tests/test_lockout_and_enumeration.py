"""The atomic lockout (a parallel burst checks at most 5 passwords) and no account enumeration
(registration, SMS codes, logins answer alike whether or not an account exists)."""

from __future__ import annotations

import asyncio

import pytest

from services.identity.officers import create_officer
from services.identity.schemas import CreateOfficer
from services.identity.tests.conftest import login, register, sms_code

ZHANG = "11010519491231002X"
LI = "440524188001010014"
MAX_FAILURES = 5


def count_verifications(client) -> list[int]:
    """Wrap the password verifier so the test sees every real check."""
    passwords = client.app.state.identity.passwords
    calls = [0]
    original = passwords.verify

    async def counted(password_hash, password):
        calls[0] += 1
        await asyncio.sleep(0.01)  # keep checks in flight long enough to overlap
        return await original(password_hash, password)

    passwords.verify = counted
    return calls


async def burst(client, body: dict, n: int = 40) -> list[int]:
    responses = await asyncio.gather(*(client.post("/sessions", json=body) for _ in range(n)))
    for response in responses:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return [r.status_code for r in responses]


@pytest.mark.identity_settings(lockout_max_failures=MAX_FAILURES)
async def test_a_parallel_burst_of_40_wrong_passwords_checks_at_most_5(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    calls = count_verifications(identity)
    statuses = await burst(identity, {"method": "password", "login": ZHANG, "password": "wrong-pass-1"})
    assert 1 <= calls[0] <= MAX_FAILURES, f"{calls[0]} passwords checked"
    assert statuses.count(401) == calls[0] and statuses.count(423) == 40 - calls[0]
    # the account is locked now: even the right password is refused, and not checked
    before = calls[0]
    assert (await login(identity, ZHANG)).status_code == 423
    assert calls[0] == before


@pytest.mark.identity_settings(lockout_max_failures=MAX_FAILURES)
async def test_a_parallel_burst_against_an_officer_checks_at_most_5(identity):
    async with identity.app.state.sessionmaker() as session, session.begin():
        body = CreateOfficer(login="li.si", name="李四", department="SCJGJ", roles=["acceptor"], password="pass12345")
        await create_officer(session, identity.app.state.identity.passwords, body, created_by="test")
    calls = count_verifications(identity)
    statuses = await burst(identity, {"method": "officer", "login": "li.si", "password": "wrong-pass-1"})
    assert 1 <= calls[0] <= MAX_FAILURES and statuses.count(401) == calls[0]


@pytest.mark.identity_settings(lockout_max_failures=3, lockout_duration_seconds=1, lockout_window_seconds=60)
async def test_the_lock_ends_and_a_success_frees_the_slots(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    for _ in range(2):
        assert (await login(identity, ZHANG, "wrong-pass-1")).status_code == 401
    assert (await login(identity, ZHANG)).status_code == 201  # a success resets the count
    for _ in range(3):
        assert (await login(identity, ZHANG, "wrong-pass-1")).status_code == 401
    locked = await login(identity, ZHANG)
    assert locked.status_code == 423 and locked.headers["retry-after"] == "1"
    await asyncio.sleep(1.1)
    assert (await login(identity, ZHANG)).status_code == 201


def comparable(response) -> tuple[int, dict]:
    body = dict(response.json())
    body.pop("instance", None)
    return response.status_code, body


async def test_a_wrong_registration_code_answers_alike_for_taken_and_new_numbers(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    answers = []
    # taken mobile + taken ID number / taken mobile + new ID / new mobile + taken ID / all new
    for id_number, mobile in [(ZHANG, "13800138000"), (LI, "13800138000"), (ZHANG, "13900139000"), (LI, "13900139000")]:
        await identity.post("/sms-codes", json={"mobile": mobile, "purpose": "register"})
        code = await sms_code(identity, mobile)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        response = await identity.post(
            "/register",
            json={"id_number": id_number, "name": "张三", "mobile": mobile, "password": "secret123", "sms_code": wrong},
        )
        answers.append(comparable(response))
    assert answers[0][0] == 422 and answers[0][1]["errors"][0]["rule"] == "sms_code_mismatch"
    assert all(answer == answers[0] for answer in answers), answers


async def test_without_any_code_a_taken_number_answers_like_a_new_one(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    body = {"id_number": ZHANG, "name": "张三", "mobile": "13800138000", "password": "secret123", "sms_code": "123456"}
    taken = await identity.post("/register", json={**body, "mobile": "13800138000"})
    new = await identity.post("/register", json={**body, "id_number": LI, "mobile": "13700137000"})
    assert comparable(taken) == comparable(new) and taken.status_code == 422


async def test_a_duplicate_shows_only_after_the_right_code_and_spends_it(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    await identity.post("/sms-codes", json={"mobile": "13900139000", "purpose": "register"})
    code = await sms_code(identity, "13900139000")
    body = {"id_number": ZHANG, "name": "张三", "mobile": "13900139000", "password": "secret123", "sms_code": code}
    duplicate = await identity.post("/register", json=body)
    assert duplicate.status_code == 409 and duplicate.json()["errors"][0]["field"] == "id_number"
    again = await identity.post("/register", json={**body, "id_number": LI})
    assert again.status_code == 422 and again.json()["errors"][0]["rule"] == "sms_code_expired"


async def test_sms_codes_and_sms_logins_answer_alike_for_unknown_numbers(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    known = await identity.post("/sms-codes", json={"mobile": "13800138000", "purpose": "login"})
    unknown = await identity.post("/sms-codes", json={"mobile": "13900139000", "purpose": "login"})
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()) == (202, {"expires_in": 300})
    answers = []
    for mobile in ("13800138000", "13900139000"):
        code = await sms_code(identity, mobile)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        answers.append(
            comparable(await identity.post("/sessions", json={"method": "sms", "mobile": mobile, "code": wrong}))
        )
    assert answers[0] == answers[1] and answers[0][0] == 422


@pytest.mark.identity_settings(lockout_max_failures=3)
async def test_password_logins_answer_alike_for_unknown_accounts_even_when_locked(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    for login_name in (ZHANG, LI):
        answers = [comparable(await login(identity, login_name, "wrong-pass-1")) for _ in range(4)]
        assert [status for status, _ in answers] == [401, 401, 401, 423], login_name
        assert answers[0] == (401, {"type": "https://yiwang.example/problems/unauthorized",
                                    "title": "Authentication required", "status": 401,
                                    "detail": "login or password is wrong"})  # fmt: skip
