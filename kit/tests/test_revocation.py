"""Revocation within seconds: the list's matching rule, the verifier's cache, and the feed against a
real nats-server (published on identity's stream, a stream created late, a server restart)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter
from jwt.algorithms import OKPAlgorithm

from contracts.events.identity import TokensRevoked
from kit.app import ServiceParts, create_service_app
from kit.auth import TokenRevoked, TokenVerifier, public_keys_from_jwks
from kit.bus import Bus
from kit.deps import Caller
from kit.events import envelope
from kit.natsd import NatsServer
from kit.revocation import RevocationFeed, RevocationList
from kit.settings import ServiceSettings

PERSON = "11010519491231002X"
AGENT = "110101199003070017"
ENTERPRISE = "91350100M000100Y43"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_matching_rule_of_the_contract():
    clock = Clock()
    revoked = RevocationList(clock)
    cut = clock.now
    revoked.add(session_id="s-1", issued_before=cut, until=cut + 600, reason="logout")
    revoked.add(subject=ENTERPRISE, actor=AGENT, issued_before=cut, until=cut + 600, reason="mandate_revoked")
    revoked.add(subject="officer:li", issued_before=cut, until=cut + 600, reason="officer_changed")

    def check(**claims):
        return revoked.refusal_for_claims({"iat": cut - 10, **claims})

    assert check(sub=PERSON, sid="s-1") == "logout"
    assert check(sub=PERSON, sid="s-1", iat=cut) == "logout"  # at or before
    assert check(sub=PERSON, sid="s-1", iat=cut + 1) is None  # a token issued after it (new login)
    assert check(sub=PERSON, sid="s-2") is None
    assert check(sub=ENTERPRISE, sid="s-9", act={"sub": AGENT}) == "mandate_revoked"
    assert check(sub=ENTERPRISE, sid="s-9", act={"sub": PERSON}) is None  # another agent's mandate
    assert check(sub=ENTERPRISE, sid="s-9") is None  # the enterprise's own token: not that mandate
    assert check(sub="officer:li", sid="s-5") == "officer_changed"  # every token of the subject
    assert check(sub="officer:li", sid="s-5", act={"sub": AGENT}) == "officer_changed"
    assert revoked.refusal_for_claims({"sub": "officer:li"}) == "officer_changed"  # no iat: matches
    # Entries are forgotten after `until` (every token they could match has expired).
    clock.now = cut + 601
    assert check(sub=PERSON, sid="s-1") is None and check(sub="officer:li") is None
    assert len(revoked) == 1  # the mandate entry, not looked at since
    revoked.prune()
    assert len(revoked) == 0


def test_a_counter_token_falls_with_its_officers_session_or_the_officer():
    """A token a counter officer made for a person (hlp) matches the officer's entries, not only its own."""
    clock = Clock()
    revoked = RevocationList(clock)
    cut = clock.now
    revoked.add(session_id="officer-session", issued_before=cut, until=cut + 1800, reason="logout")
    revoked.add(subject="officer:li", issued_before=cut, until=cut + 1800, reason="officer_changed")

    def counter_token(helper: str, helper_session: str, **claims):
        hlp = {"sub": helper, "name": "李", "dept": "ZWFW", "sid": helper_session}
        return revoked.refusal_for_claims({"sub": PERSON, "iat": cut - 10, "chn": "counter", "hlp": hlp, **claims})

    assert counter_token("officer:wang", "officer-session") == "logout"  # the officer logged out
    assert counter_token("officer:li", "other-session") == "officer_changed"  # the officer was disabled
    assert counter_token("officer:wang", "other-session") is None
    assert counter_token("officer:li", "other-session", iat=cut + 1) is None  # made after the revocation
    # the person's own online tokens are not the officer's
    assert revoked.refusal_for_claims({"sub": PERSON, "sid": "person-session", "iat": cut - 10}) is None
    assert revoked.refusal_for_claims({"sub": PERSON, "iat": cut - 10, "hlp": "officer:li"}) is None  # malformed


def test_repeated_entries_merge_to_the_later_cut_off():
    clock = Clock()
    revoked = RevocationList(clock)
    revoked.add(session_id="s", issued_before=clock.now - 100, until=clock.now + 500, reason="logout")
    revoked.add(session_id="s", issued_before=clock.now, until=clock.now + 600, reason="session_revoked")
    assert revoked.refusal(subject=None, session_id="s", actor=None, issued_at=clock.now - 50) == "session_revoked"
    assert len(revoked) == 1
    revoked.add(session_id="old", issued_before=clock.now - 700, until=clock.now - 100, reason="logout")
    assert len(revoked) == 1  # already over: not kept


def _key():
    private = Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk["kid"] = "k1"

    async def fetch():
        return public_keys_from_jwks({"keys": [jwk]})

    def sign(**claims) -> str:
        now = int(time.time())
        values = {"sub": PERSON, "iss": "yiwang-identity", "aud": "yiwang", "iat": now, "exp": now + 600, "sid": "s-1"}
        values.update(claims)
        return jwt.encode(values, private, algorithm="EdDSA", headers={"kid": "k1"})

    return fetch, sign


async def test_the_verified_token_cache_does_not_bypass_revocation():
    fetch, sign = _key()
    revoked = RevocationList()
    verifier = TokenVerifier(fetch, issuer="yiwang-identity", audience="yiwang", revocations=revoked)
    token = sign()
    assert (await verifier.verify(token))["sub"] == PERSON
    assert token in verifier._verified
    revoked.add(session_id="s-1", issued_before=time.time(), until=time.time() + 600, reason="logout")
    with pytest.raises(TokenRevoked, match="logout"):
        await verifier.verify(token)
    assert revoked.refusals == 1


def revocation_event(**fields) -> bytes:
    now = datetime.now(UTC)
    data = TokensRevoked(
        reason=fields.pop("reason", "logout"),
        issued_before=fields.pop("issued_before", now),
        until=fields.pop("until", now + timedelta(seconds=600)),
        **fields,
    )
    return envelope(data, subject=data.session_id or data.subject).model_dump_json().encode()


async def publish_on_identity_stream(url: str, payload: bytes, *, create: bool = True) -> None:
    """What identity's outbox relay does: identity's stream, subject identity.tokens.revoked."""
    identity = Bus(url, name="identity", streams={"IDENTITY": ["identity.>"]} if create else {}, dead_letters=False)
    await identity.start()
    try:
        await identity.wait_connected(5)
        js = await identity.jetstream()
        await js.publish(TokensRevoked.nats_subject, payload)
    finally:
        await identity.close()


async def until(predicate, timeout: float) -> float:
    """Seconds until ``predicate()`` held; AssertionError after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def own_nats(tmp_path):
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
async def feed_on(own_nats):
    started: list[tuple[Bus, RevocationFeed]] = []

    async def make(replay_seconds: float = 600) -> tuple[RevocationList, RevocationFeed]:
        revoked = RevocationList()
        bus = Bus(own_nats.url, name="svc", dead_letters=False)
        feed = RevocationFeed(bus, revoked, replay_seconds=replay_seconds)
        await bus.start()
        await feed.start()
        started.append((bus, feed))
        return revoked, feed

    yield make
    for bus, feed in started:
        await feed.stop()
        await bus.close()


def refused(revoked: RevocationList, **claims) -> bool:
    return revoked.refusal_for_claims({"sub": PERSON, "iat": time.time() - 5, **claims}) is not None


async def test_a_published_revocation_is_refused_within_2_seconds(own_nats, feed_on):
    await publish_on_identity_stream(own_nats.url, revocation_event(session_id="old"))  # creates the stream
    revoked, feed = await feed_on()
    await until(lambda: feed.synced, 5)
    await publish_on_identity_stream(own_nats.url, revocation_event(session_id="s-live"))
    elapsed = await until(lambda: refused(revoked, sid="s-live"), 2.0)
    assert elapsed < 2.0
    await publish_on_identity_stream(
        own_nats.url, revocation_event(reason="mandate_revoked", subject=ENTERPRISE, actor=AGENT)
    )
    await until(lambda: refused(revoked, sub=ENTERPRISE, act={"sub": AGENT}), 2.0)
    assert not refused(revoked, sub=ENTERPRISE, act={"sub": PERSON})


async def test_a_restarted_process_rebuilds_its_list_from_the_stream(own_nats, feed_on):
    await publish_on_identity_stream(own_nats.url, revocation_event(session_id="s-before-start"))
    old = datetime.now(UTC) - timedelta(seconds=3600)
    await publish_on_identity_stream(
        own_nats.url, revocation_event(session_id="s-long-over", issued_before=old, until=old + timedelta(seconds=600))
    )
    revoked, feed = await feed_on()
    await until(lambda: feed.synced, 5)
    assert refused(revoked, sid="s-before-start")
    assert not refused(revoked, sid="s-long-over") and len(revoked) == 1


async def test_the_stream_may_appear_after_the_process_started(own_nats, feed_on):
    revoked, feed = await feed_on()
    await until(lambda: feed.synced, 5)  # no stream yet: nothing can have been revoked
    await asyncio.sleep(0.3)
    await publish_on_identity_stream(own_nats.url, revocation_event(session_id="s-late"))
    await until(lambda: refused(revoked, sid="s-late"), 3.0)


async def test_the_feed_survives_a_nats_restart_and_fails_open_meanwhile(own_nats, feed_on):
    await publish_on_identity_stream(own_nats.url, revocation_event(session_id="s-a"))
    revoked, feed = await feed_on()
    await until(lambda: refused(revoked, sid="s-a"), 3.0)
    own_nats.stop()
    await until(lambda: not feed.up, 5.0)
    assert refused(revoked, sid="s-a")  # what it knew, it still knows
    assert not refused(revoked, sid="s-b")  # fail open: it cannot know what it was not told
    own_nats.start()
    await publish_on_identity_stream(own_nats.url, revocation_event(session_id="s-b"))
    await until(lambda: refused(revoked, sid="s-b"), 10.0)
    await until(lambda: feed.up, 5.0)


async def test_a_service_app_refuses_a_revoked_token_with_401_token_revoked(own_nats, tmp_path):
    fetch, sign = _key()
    router = APIRouter()

    @router.get("/me")
    async def me(caller: Caller) -> dict:
        return {"subject": caller.subject}

    settings = ServiceSettings(
        service_name="caseflowish", database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", nats_url=own_nats.url
    )
    app = create_service_app(
        ServiceParts(settings=settings, title="x", routers=[router], key_fetcher=lambda _app: fetch)
    )
    await publish_on_identity_stream(own_nats.url, revocation_event(session_id="s-other"))
    token = sign(sid="s-7")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
            await until(lambda: app.state.revocation_feed.synced, 5)
            ready = await client.get("/readyz")
            assert ready.json()["checks"]["revocations"] == "ok"
            assert (await client.get("/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
            await publish_on_identity_stream(own_nats.url, revocation_event(session_id="s-7"))
            started = time.monotonic()
            while True:
                r = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
                if r.status_code != 200 or time.monotonic() - started > 2.0:
                    break
                await asyncio.sleep(0.05)
            assert r.status_code == 401 and time.monotonic() - started < 2.0
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["type"].endswith("/token-revoked") and r.json()["reason"] == "logout"
            # A new login (a token issued after the revocation) is not affected.
            await asyncio.sleep(1.1)
            fresh = sign(sid="s-7")
            assert (await client.get("/me", headers={"Authorization": f"Bearer {fresh}"})).status_code == 200
            metrics = (await client.get("/metrics")).text
            assert "token_revocation_feed_up 1.0" in metrics
            assert "token_revocation_refusals_total 1.0" in metrics


async def test_nats_client_sees_the_event_as_identity_would_publish_it(own_nats):
    """The payload is a CloudEvent whose data is the TokensRevoked contract (guards the helper)."""
    await publish_on_identity_stream(own_nats.url, revocation_event(session_id="s-x"))
    nc = await nats.connect(own_nats.url)
    try:
        message = await nc.jetstream().get_last_msg("IDENTITY", TokensRevoked.nats_subject)
    finally:
        await nc.close()
    event = json.loads(message.data)
    assert event["type"] == TokensRevoked.event_type and event["data"]["session_id"] == "s-x"
