"""Unit tests of the pure rules: route table, path hygiene, policies, token buckets, signatures."""

from __future__ import annotations

import time

import pytest

from gateway.openapi import AreaSource, merge_openapi
from gateway.proxy import is_dropped_request_header, response_headers
from gateway.ratelimit import RateLimiter, take
from gateway.routes import (
    DEFAULT_RULES,
    DENY,
    PUBLIC,
    SIGNED,
    RouteTable,
    authorize,
    path_is_clean,
    rule,
    rule_from_config,
    split_api_path,
)
from gateway.signing import (
    MemoryNonceStore,
    PartnerKeys,
    RedisNonceStore,
    SignatureRejected,
    canonical_string,
    check_signature,
    sign,
)

TABLE = RouteTable(DEFAULT_RULES, "production")


@pytest.mark.parametrize(
    ("method", "path", "access"),
    [
        ("POST", "/api/v1/identity/register", PUBLIC),
        ("POST", "/api/v1/identity/sessions", PUBLIC),
        ("DELETE", "/api/v1/identity/sessions", "token"),
        ("POST", "/api/v1/identity/sessions/refresh", PUBLIC),
        ("POST", "/api/v1/identity/sms-codes", PUBLIC),
        ("GET", "/api/v1/identity/.well-known/jwks.json", PUBLIC),
        ("GET", "/api/v1/identity/sandbox/sms", DENY),  # production: no sandbox mailbox
        ("GET", "/api/v1/identity/me", "token"),
        ("GET", "/api/v1/catalog/matters", PUBLIC),
        ("HEAD", "/api/v1/catalog/matters/11440100", PUBLIC),
        ("GET", "/api/v1/catalog", PUBLIC),
        ("POST", "/api/v1/catalog/matters", "token"),
        ("GET", "/api/v1/caseflow/progress/C2026", PUBLIC),
        ("GET", "/api/v1/caseflow/progress/C2026/", PUBLIC),
        ("GET", "/api/v1/caseflow/progress/C2026/more", "token"),
        ("GET", "/api/v1/caseflow/progress", "token"),
        ("GET", "/api/v1/licence/licences/verify", "token"),  # only POST verifies; GET is a licence id
        ("GET", "/api/v1/licence/keys", PUBLIC),
        ("GET", "/api/v1/licence/status-list", PUBLIC),
        ("GET", "/api/v1/licence/types", PUBLIC),
        ("POST", "/api/v1/licence/checks", DENY),
        ("POST", "/api/v1/licence/holdings", DENY),
        ("POST", "/api/v1/licence/imports", "token"),
        ("POST", "/api/v1/licence/licences/verify", PUBLIC),
        ("GET", "/api/v1/licence/licences", "token"),
        ("POST", "/api/v1/departments/4401/events", SIGNED),
        ("GET", "/api/v1/departments/4401/events", DENY),
        ("POST", "/api/v1/departments/4401/other", DENY),
        ("POST", "/api/v1/express/callbacks/ems", SIGNED),
        ("POST", "/api/v1/express/callbacks/sf", DENY),
        ("POST", "/api/v1/caseflow/departments/4401/events", DENY),
        ("GET", "/api/v1/identity/metrics", DENY),
        ("GET", "/api/v1/newarea/metrics", DENY),
        ("GET", "/api/v1/newarea/things", "token"),
    ],
)
def test_route_table(method, path, access):
    area, _ = split_api_path(path)
    matched = TABLE.match(area, method, path)
    assert (matched.access if matched else "token") == access


def test_sandbox_only_in_development():
    development = RouteTable(DEFAULT_RULES, "development")
    assert development.match("identity", "GET", "/api/v1/identity/sandbox/sms").access == PUBLIC


def test_extra_rules_come_first_and_validate():
    extra = rule_from_config({"pattern": "/api/v1/catalog/admin/**", "methods": ["GET"], "roles": ["admin"]})
    table = RouteTable([extra, *DEFAULT_RULES], "production")
    assert table.match("catalog", "GET", "/api/v1/catalog/admin/x").roles == frozenset({"admin"})
    with pytest.raises(ValueError):
        rule("/api/v1/x/**/y")
    with pytest.raises(ValueError):
        rule("/x", access=PUBLIC)
    with pytest.raises(ValueError):
        rule("/api/v1/x", access="maybe")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/identity/me", ("identity", "/me")),
        ("/api/v1/identity", ("identity", "")),
        ("/api/v1/Identity/me", None),
        ("/api/v2/identity/me", None),
        ("/api/v1//me", None),
    ],
)
def test_split_api_path(path, expected):
    assert split_api_path(path) == expected


@pytest.mark.parametrize(
    ("path", "raw", "clean"),
    [
        ("/api/v1/caseflow/progress/C1", b"/api/v1/caseflow/progress/C1", True),
        ("/api/v1/caseflow/progress/a b", b"/api/v1/caseflow/progress/a%20b", True),
        ("/api/v1/caseflow/progress/../worklist", b"/api/v1/caseflow/progress/../worklist", False),
        ("/api/v1/caseflow/progress/../worklist", b"/api/v1/caseflow/progress/..%2Fworklist", False),
        ("/api/v1/caseflow/./worklist", b"/api/v1/caseflow/./worklist", False),
        ("/api/v1/caseflow//worklist", b"/api/v1/caseflow//worklist", False),
        ("/api/v1/caseflow/a\\b", b"/api/v1/caseflow/a%5Cb", False),
        ("/api/v1/caseflow/..", b"/api/v1/caseflow/%2e%2e", False),
        ("/api/v1/caseflow/v1.2", b"/api/v1/caseflow/v1.2", True),
    ],
)
def test_path_is_clean(path, raw, clean):
    assert path_is_clean(path, raw) is clean


def test_authorize():
    officer_only = rule("/api/v1/x/y", kinds={"officer"})
    supervisor = rule("/api/v1/x/y", kinds={"officer"}, roles={"supervisor"})
    level3 = rule("/api/v1/x/y", min_level=3)
    assert authorize(None, {"kind": "person"}) is None
    assert authorize(officer_only, {"kind": "person"}).status == 403
    assert authorize(officer_only, {"kind": "officer"}) is None
    assert authorize(supervisor, {"kind": "officer", "roles": ["acceptor"]}).status == 403
    assert authorize(supervisor, {"kind": "officer", "roles": ["acceptor", "supervisor"]}) is None
    assert authorize(level3, {"lvl": 2}).body()["required_level"] == 3
    assert authorize(level3, {"lvl": "x"}).status == 403
    assert authorize(level3, {"lvl": 4}) is None


def test_header_hygiene():
    for name in (
        b"x-subject-id",
        b"x-subject-anything",
        b"x-actor-id",
        b"x-roles",
        b"x-dept",
        b"x-partner-id",
        b"x-request-id",
        b"traceparent",
        b"x-forwarded-for",
        b"connection",
        b"host",
        b"x-user-id",
    ):
        assert is_dropped_request_header(name), name
    for name in (b"authorization", b"content-type", b"accept", b"idempotency-key", b"if-match", b"x-signature"):
        assert not is_dropped_request_header(name), name
    assert response_headers(((b"Content-Type", b"a"), (b"Connection", b"close"), (b"Server", b"x"))) == [
        (b"content-type", b"a")
    ]


def test_token_bucket_arithmetic():
    allowed, tokens, wait = take(0.0, 0.0, 0.5, rate=2.0, burst=5.0)
    assert allowed and tokens == 0.0 and wait == 0.0
    allowed, tokens, wait = take(0.0, 0.0, 0.25, rate=2.0, burst=5.0)
    assert not allowed and wait == pytest.approx(0.25)
    assert take(0.0, 0.0, 100.0, rate=2.0, burst=5.0)[1] == 4.0  # capped at burst


def test_rate_limiter_keys_and_eviction():
    limiter = RateLimiter(rate=1.0, burst=2.0, max_keys=100)
    assert [limiter.hit("a", 0.0), limiter.hit("a", 0.0), limiter.hit("a", 0.0)] == [0.0, 0.0, 1.0]
    assert limiter.hit("b", 0.0) == 0.0
    assert limiter.hit("a", 1.0) == 0.0
    for i in range(500):
        limiter.hit(f"k{i}", 10.0 + i)
    assert len(limiter) <= 100


PARTNERS = {"ems": PartnerKeys.from_config(["old", "new"], ["/api/v1/express/callbacks/ems"])}


def _check(headers, body=b"{}", now=None, path="/api/v1/express/callbacks/ems", query=""):
    return check_signature(
        PARTNERS, method="POST", path=path, query=query, headers=headers, body=body,
        now=now if now is not None else time.time(), max_age=300,
    )  # fmt: skip


def _headers(secret="new", ts=None, nonce="abcdefghijklmnop", body=b"{}", path="/api/v1/express/callbacks/ems"):
    ts = str(ts if ts is not None else int(time.time()))
    return {
        "x-partner-id": "ems",
        "x-timestamp": ts,
        "x-nonce": nonce,
        "x-signature": sign(secret, "POST", path, ts, nonce, body),
    }


def test_canonical_string_is_exact():
    assert canonical_string("post", "/p?q=1", "1700000000", "n" * 16, b"") == (
        b"POST\n/p?q=1\n1700000000\nnnnnnnnnnnnnnnnn\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_signature_checks():
    assert _check(_headers()) == ("ems", "abcdefghijklmnop")
    assert _check(_headers(secret="old"))[0] == "ems"  # rotation: both secrets sign
    reasons = {
        "missing": {},
        "unknown-partner": {**_headers(), "x-partner-id": "nobody"},
        "bad-signature": _headers(secret="guess"),
        "stale": _headers(ts=int(time.time()) - 301),
        "bad-timestamp": {**_headers(), "x-timestamp": "yesterday"},
        "bad-nonce": _headers(nonce="short"),
    }
    for reason, headers in reasons.items():
        with pytest.raises(SignatureRejected) as caught:
            _check(headers)
        assert caught.value.reason == reason
    with pytest.raises(SignatureRejected):
        _check(_headers(), body=b'{"x":1}')
    with pytest.raises(SignatureRejected):
        _check(_headers(), query="extra=1")
    with pytest.raises(SignatureRejected) as caught:
        _check(_headers(path="/api/v1/departments/1/events"), path="/api/v1/departments/1/events")
    assert caught.value.reason == "path-not-allowed"


async def test_memory_nonce_store_expires():
    clock = [0.0]
    store = MemoryNonceStore(clock=lambda: clock[0])
    assert await store.claim("ems:n1", 600)
    assert not await store.claim("ems:n1", 600)
    assert await store.claim("ems:n2", 600)
    clock[0] = 601
    assert await store.claim("ems:n1", 600)
    assert len(store) == 1


async def test_redis_nonce_store_uses_set_nx():
    class FakeRedis:
        def __init__(self):
            self.calls = []
            self.keys = set()

        async def set(self, key, value, nx, ex):
            self.calls.append((key, nx, ex))
            if key in self.keys:
                return None
            self.keys.add(key)
            return True

    client = FakeRedis()
    store = RedisNonceStore(client)
    assert await store.claim("ems:n", 600.0)
    assert not await store.claim("ems:n", 600.0)
    assert client.calls[0] == ("gateway:nonce:ems:n", True, 600)


def test_merge_openapi_skips_denied_and_marks_unavailable():
    table = RouteTable(DEFAULT_RULES, "production")
    document = {"paths": {"/metrics": {"get": {}}, "/me": {"get": {}}}, "components": {}}
    merged = merge_openapi(
        [AreaSource("identity", "i", ""), AreaSource("catalog", "c", "")], {"i": document, "c": None}, table.match
    )
    assert list(merged["paths"]) == ["/api/v1/identity/me"]
    assert merged["info"]["x-unavailable-areas"] == ["catalog"]


@pytest.mark.parametrize(
    ("method", "path", "officer_ok", "citizen_ok"),
    [("GET", "/api/v1/caseflow/reviews", True, False),
     ("POST", "/api/v1/caseflow/cases/371400-20261102-0001/sample-review", True, False),
     ("GET", "/api/v1/caseflow/matters/SCJGJ-XK-0007/prefill", False, True)],
)  # fmt: skip
def test_instant_routes_are_for_their_kind_of_account(method, path, officer_ok, citizen_ok):
    area, _ = split_api_path(path)
    matched = TABLE.match(area, method, path)
    assert matched is not None and matched.access == "token"
    assert (authorize(matched, {"kind": "officer"}) is None) is officer_ok
    assert (authorize(matched, {"kind": "enterprise"}) is None) is citizen_ok
