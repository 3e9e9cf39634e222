"""Department partners read from exchange (ADR 0019): a real loopback source that checks the
gateway's service-key signature; merged with the static partners, reloaded, kept while exchange
is away; the keys' path is denied from outside."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aiohttp import ClientSession

from gateway.partners import PartnerDirectory, parse_partner_keys
from gateway.signing import signed_headers
from gateway.tests.conftest import PARTNER_SECRET, SignedKeySource, gateway_settings, running_gateway
from kit.signing import new_nonce

SERVICE_SECRET = "gateway-exchange-secret-for-tests"
BDCDJ_SECRET = "bdcdj-secret-for-tests"
PUSH_PATH = "/api/v1/departments/BDCDJ/events"


@pytest.fixture
async def source():
    # exchange's GET /partners/keys as far as the gateway sees it: signed requests only
    document = {"dept-bdcdj": {"secrets": [BDCDJ_SECRET], "paths": [PUSH_PATH]}}
    server = await SignedKeySource("/partners/keys", SERVICE_SECRET, document).start()
    yield server
    await server.stop()


async def signed_push(base: str, partner: str, secret: str, path: str = PUSH_PATH) -> int:
    body = json.dumps({"event_id": "ev-1"}).encode()
    headers = signed_headers(partner, secret, "POST", path, body, nonce=new_nonce(), timestamp=int(time.time()))
    async with ClientSession() as client:
        async with client.post(base + path, data=body, headers={**headers, "Content-Type": "application/json"}) as r:
            return r.status


def settings(upstream, jwks, source, **changes: Any):
    values: dict[str, Any] = dict(partner_source_url=source.url, exchange_secret=SERVICE_SECRET,
                                  partner_refresh_seconds=3600)  # fmt: skip
    values.update(changes)
    return gateway_settings(upstream.url, jwks.url, **values)


async def test_department_partners_come_from_exchange_beside_the_static_ones(upstream, jwks, source):
    async with running_gateway(settings(upstream, jwks, source)) as (app, base):
        assert source.served == 1
        assert await signed_push(base, "dept-bdcdj", BDCDJ_SECRET) == 200
        assert upstream.seen[-1].headers["X-Partner-Id"] == "dept-bdcdj"
        assert upstream.seen[-1].path == "/departments/BDCDJ/events"
        # Only its own department's path.
        assert await signed_push(base, "dept-bdcdj", BDCDJ_SECRET, "/api/v1/departments/SCJGJ/events") == 401
        assert await signed_push(base, "ems", PARTNER_SECRET, "/api/v1/express/callbacks/ems") == 200
        async with ClientSession() as client, client.get(base + "/metrics") as metrics:
            assert "gateway_department_partners 1.0" in await metrics.text()
        # A rotation, then a revocation, seen on the next reload.
        source.document = {"dept-bdcdj": {"secrets": [BDCDJ_SECRET, "new-one"], "paths": [PUSH_PATH]}}
        assert await app.partner_directory.reload()
        assert await signed_push(base, "dept-bdcdj", "new-one") == 200
        source.document = {}
        assert await app.partner_directory.reload()
        assert await signed_push(base, "dept-bdcdj", BDCDJ_SECRET) == 401
        assert await signed_push(base, "ems", PARTNER_SECRET, "/api/v1/express/callbacks/ems") == 200


async def test_while_exchange_is_away_the_gateway_keeps_what_it_had_and_the_static_partners(upstream, jwks, source):
    async with running_gateway(settings(upstream, jwks, source)) as (app, base):
        await source.stop()
        assert not await app.partner_directory.reload()
        async with ClientSession() as client, client.get(base + "/metrics") as metrics:
            assert "gateway_partner_reload_failures 1.0" in await metrics.text()
        assert await signed_push(base, "dept-bdcdj", BDCDJ_SECRET) == 200  # last known keys
        assert await signed_push(base, "ems", PARTNER_SECRET, "/api/v1/express/callbacks/ems") == 200


async def test_exchange_down_at_start_or_a_wrong_service_key_leaves_the_static_partners(upstream, jwks, source):
    async with running_gateway(settings(upstream, jwks, source, exchange_secret="not-the-service-key")) as (app, base):
        assert source.refused == 1 and app.partner_directory.dynamic == {}
        assert await signed_push(base, "dept-bdcdj", BDCDJ_SECRET) == 401
        assert await signed_push(base, "ems", PARTNER_SECRET, "/api/v1/express/callbacks/ems") == 200
    await source.stop()
    async with running_gateway(settings(upstream, jwks, source)) as (app, base):
        assert app.partner_directory.dynamic == {}
        assert await signed_push(base, "ems", PARTNER_SECRET, "/api/v1/express/callbacks/ems") == 200


async def test_the_keys_path_is_denied_from_outside_and_the_receipt_keys_are_public(upstream, jwks, source):
    areas = {"exchange": upstream.url, "departments": upstream.url + "/departments"}
    async with running_gateway(settings(upstream, jwks, source, upstreams=areas)) as (_app, base):
        async with ClientSession() as client:
            async with client.get(base + "/api/v1/exchange/partners/keys") as denied:
                assert denied.status == 404
            async with client.get(base + "/api/v1/exchange/.well-known/jwks.json") as public:
                assert public.status == 200  # no token needed
    assert not any(seen.path == "/partners/keys" for seen in upstream.seen)


def test_malformed_entries_are_left_out_never_allowed_everywhere():
    parsed = parse_partner_keys({
        "ok": {"secrets": ["s"], "paths": [PUSH_PATH]},
        "no-paths": {"secrets": ["s"]},
        "empty-secrets": {"secrets": [], "paths": [PUSH_PATH]},
        "relative": {"secrets": ["s"], "paths": ["**"]},
        "not-a-dict": ["s"],
    })  # fmt: skip
    assert list(parsed) == ["ok"]
    with pytest.raises(ValueError):
        parse_partner_keys(["not", "an", "object"])


def test_a_static_partner_wins_over_a_department_partner_of_the_same_id():
    from gateway.signing import PartnerKeys

    static = {"ems": PartnerKeys.from_config(["static"], ["/api/v1/express/callbacks/ems"])}
    directory = PartnerDirectory(static)
    directory._merge(parse_partner_keys({"ems": {"secrets": ["dynamic"], "paths": [PUSH_PATH]},
                                         "dept-x": {"secrets": ["x"], "paths": [PUSH_PATH]}}))  # fmt: skip
    assert directory.partners["ems"].secrets == (b"static",) and "dept-x" in directory.partners
