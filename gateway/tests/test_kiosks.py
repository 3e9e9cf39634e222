"""Self-service kiosks at the gateway (ADR 0025): kiosks read from identity's signed key source; a
card read needs a kiosk's signature; a kiosk token is forwarded only on requests signed by the kiosk
it names (a stolen one used from a phone is 401); a revoked kiosk is refused after the reload; a
counter token falls with its officer's session."""

from __future__ import annotations

import json
import time

import pytest
from aiohttp import ClientSession

from gateway.kiosks import parse_kiosk_keys
from gateway.tests.conftest import SignedKeySource, gateway_settings, running_gateway
from kit.signing import new_nonce, signed_headers

SERVICE_SECRET = "gateway-identity-secret-for-tests"
KIOSK = "KIOSK-370102-01"
KIOSK_SECRET = "kiosk-01-secret-for-tests"
OTHER = "KIOSK-370102-02"
OTHER_SECRET = "kiosk-02-secret-for-tests"
SESSIONS = "/api/v1/identity/kiosk-sessions"
CASES = "/api/v1/caseflow/cases"


@pytest.fixture
async def source():
    # identity's GET /kiosks/keys as far as the gateway sees it: signed requests only
    document = {
        KIOSK: {"secrets": [KIOSK_SECRET], "hall_code": "HALL-370102"},
        OTHER: {"secrets": [OTHER_SECRET], "hall_code": "HALL-370102"},
    }
    server = await SignedKeySource("/kiosks/keys", SERVICE_SECRET, document, refusal_status=403).start()
    yield server
    await server.stop()


@pytest.fixture
async def hall(upstream, jwks, source):
    settings = gateway_settings(upstream.url, jwks.url, kiosk_source_url=source.url, identity_secret=SERVICE_SECRET,
                                kiosk_refresh_seconds=3600)  # fmt: skip
    async with running_gateway(settings) as running:
        yield running


async def call(base: str, method: str, path: str, *, body: dict | None = None, token: str | None = None,
               device: str | None = None, secret: str | None = None, sign_body: bytes | None = None,
               extra: dict | None = None, signed: dict | None = None) -> tuple[int, dict, dict]:  # fmt: skip
    """(status, JSON answer, the signature headers used) of one request, signed when ``device`` is given."""
    raw = json.dumps(body).encode() if body is not None else b""
    headers: dict[str, str] = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if signed is None and device is not None:
        signed = signed_headers(device, secret or "", method, path, raw if sign_body is None else sign_body,
                                nonce=new_nonce(), timestamp=int(time.time()))  # fmt: skip
    headers.update(signed or {})
    headers.update(extra or {})
    async with ClientSession() as client:
        async with client.request(method, base + path, data=raw or None, headers=headers) as response:
            return response.status, await response.json(content_type=None), signed or {}


def kiosk_token(key, device: str = KIOSK, **claims) -> str:
    return key.token(chn="kiosk", dev=device, sid=None, lvl=2, **claims)


async def test_a_card_read_signed_by_a_registered_kiosk_reaches_identity_with_the_verified_device(hall, upstream,
                                                                                                  source):  # fmt: skip
    _app, base = hall
    assert source.served == 1
    status, _, used = await call(base, "POST", SESSIONS, body={"id_number": "x"}, device=KIOSK, secret=KIOSK_SECRET,
                                 extra={"X-Kiosk-Device": OTHER})  # fmt: skip
    assert status == 200
    seen = upstream.seen[-1]
    assert seen.path == "/kiosk-sessions"
    # identity re-verifies: it gets the signature headers and the device the gateway verified, and
    # a client's own X-Kiosk-Device is never passed on
    assert seen.headers["X-Partner-Id"] == KIOSK and seen.headers.getall("X-Kiosk-Device") == [KIOSK]
    assert seen.headers["X-Signature"] == used["X-Signature"] and seen.headers["X-Nonce"] == used["X-Nonce"]


async def test_a_card_read_without_a_valid_kiosk_signature_is_refused(hall, upstream):
    _app, base = hall
    before = len(upstream.seen)
    unsigned = await call(base, "POST", SESSIONS, body={"id_number": "x"})
    forged = await call(base, "POST", SESSIONS, body={"id_number": "x"}, device=KIOSK, secret="guessed")
    unknown = await call(base, "POST", SESSIONS, body={"id_number": "x"}, device="KIOSK-999999-01", secret="s")
    tampered = await call(base, "POST", SESSIONS, body={"id_number": "x"}, device=KIOSK, secret=KIOSK_SECRET,
                          sign_body=b'{"id_number": "y"}')  # fmt: skip
    status, _, used = await call(base, "POST", SESSIONS, body={"id_number": "x"}, device=KIOSK, secret=KIOSK_SECRET)
    replayed = await call(base, "POST", SESSIONS, body={"id_number": "x"}, signed=used)
    partner = await call(base, "POST", SESSIONS, body={"id_number": "x"}, device="ems",
                         secret="ems-secret-for-tests")  # a partner is not a kiosk  # fmt: skip
    refused = [unsigned, forged, unknown, tampered, replayed, partner]
    assert [r[0] for r in refused] == [401] * 6 and status == 200
    assert [r[1]["reason"] for r in refused] == [
        "missing", "bad-signature", "unknown-device", "bad-signature", "replay", "unknown-device"
    ]  # fmt: skip
    assert len(upstream.seen) == before + 1


async def test_a_kiosk_token_goes_through_only_on_requests_its_kiosk_signs(hall, upstream, key):
    _app, base = hall
    token = kiosk_token(key)
    ok = await call(base, "POST", CASES, body={"matter": "m"}, token=token, device=KIOSK, secret=KIOSK_SECRET)
    assert ok[0] == 200 and upstream.seen[-1].headers["X-Kiosk-Device"] == KIOSK
    assert "X-Partner-Id" not in upstream.seen[-1].headers  # a kiosk is no partner to caseflow
    assert upstream.seen[-1].body == json.dumps({"matter": "m"}).encode()  # the body read for the check is forwarded
    got = await call(base, "GET", CASES + "?page=1", token=token, device=KIOSK, secret=KIOSK_SECRET)
    assert got[0] == 200 and upstream.seen[-1].query == "page=1"
    before = len(upstream.seen)
    from_a_phone = await call(base, "GET", CASES, token=token)
    other_kiosk = await call(base, "GET", CASES, token=token, device=OTHER, secret=OTHER_SECRET)
    tampered = await call(base, "POST", CASES, body={"matter": "m"}, token=token, device=KIOSK, secret=KIOSK_SECRET,
                          sign_body=b"{}")  # fmt: skip
    no_device = await call(base, "GET", CASES, token=key.token(chn="kiosk", lvl=2), device=KIOSK, secret=KIOSK_SECRET)
    public = await call(base, "GET", "/api/v1/catalog/matters", token=token)  # a public route: still refused
    for status, problem, _ in (from_a_phone, other_kiosk, tampered, no_device, public):
        assert status == 401 and problem["type"].endswith("/kiosk-signature-required"), problem
    assert len(upstream.seen) == before
    # tokens made online need no signature, also with one present
    assert (await call(base, "GET", CASES, token=key.token()))[0] == 200
    assert (await call(base, "GET", "/api/v1/catalog/matters", token=token, device=KIOSK, secret=KIOSK_SECRET))[
        0
    ] == 200


async def test_a_revoked_kiosk_is_refused_after_the_reload_and_its_tokens_with_it(hall, source, key):
    app, base = hall
    token = kiosk_token(key)
    assert (await call(base, "GET", CASES, token=token, device=KIOSK, secret=KIOSK_SECRET))[0] == 200
    source.document.pop(KIOSK)
    assert await app.kiosk_directory.reload()
    card = await call(base, "POST", SESSIONS, body={"id_number": "x"}, device=KIOSK, secret=KIOSK_SECRET)
    used = await call(base, "GET", CASES, token=token, device=KIOSK, secret=KIOSK_SECRET)
    assert (card[0], card[1]["reason"]) == (401, "unknown-device") and used[0] == 401
    assert (await call(base, "POST", SESSIONS, body={}, device=OTHER, secret=OTHER_SECRET))[0] == 200
    async with ClientSession() as client, client.get(base + "/metrics") as metrics:
        assert "gateway_kiosks 1.0" in await metrics.text()


async def test_identity_away_keeps_the_last_kiosks_and_the_keys_path_is_denied(hall, source, upstream):
    app, base = hall
    await source.stop()
    assert not await app.kiosk_directory.reload()
    assert (await call(base, "POST", SESSIONS, body={}, device=KIOSK, secret=KIOSK_SECRET))[0] == 200
    before = len(upstream.seen)
    async with ClientSession() as client, client.get(base + "/api/v1/identity/kiosks/keys") as denied:
        assert denied.status == 404
    assert len(upstream.seen) == before


async def test_without_a_kiosk_source_every_kiosk_request_is_refused(upstream, jwks, key):
    async with running_gateway(gateway_settings(upstream.url, jwks.url)) as (_app, base):
        assert (await call(base, "POST", SESSIONS, body={}, device=KIOSK, secret=KIOSK_SECRET))[0] == 401
        assert (await call(base, "GET", CASES, token=kiosk_token(key), device=KIOSK, secret=KIOSK_SECRET))[0] == 401


async def test_a_counter_token_falls_with_its_officers_session_and_the_officer(hall, key):
    app, base = hall
    hlp = {"sub": "officer:liu.window", "name": "刘窗口", "dept": "ZWFW", "sid": "officer-session"}
    token = key.token(chn="counter", hlp=hlp, sid=None, lvl=4)
    other = key.token(chn="counter", hlp={**hlp, "sub": "officer:wang", "sid": "s-w"}, sid=None, lvl=4)
    assert (await call(base, "GET", CASES, token=token))[0] == 200
    now = time.time()
    app.revocations.add(session_id="officer-session", issued_before=now, until=now + 1800, reason="logout")
    status, problem, _ = await call(base, "GET", CASES, token=token)
    assert status == 401 and problem["type"].endswith("/token-revoked")
    assert (await call(base, "GET", CASES, token=other))[0] == 200
    app.revocations.add(subject="officer:wang", issued_before=now, until=now + 1800, reason="officer_changed")
    assert (await call(base, "GET", CASES, token=other))[0] == 401


def test_malformed_kiosk_entries_are_left_out():
    parsed = parse_kiosk_keys({
        "ok": {"secrets": ["s"], "hall_code": "H"},
        "empty": {"secrets": []},
        "not-strings": {"secrets": [1]},
        "not-a-dict": ["s"],
    })  # fmt: skip
    assert parsed == {"ok": (b"s",)}
    with pytest.raises(ValueError):
        parse_kiosk_keys(["not", "an", "object"])
