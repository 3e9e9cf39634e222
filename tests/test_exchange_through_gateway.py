"""Exchange behind the gateway, over real sockets and a real NATS: an admin makes a partner, the
gateway learns its key from exchange.partner.changed (its periodic reload is set to an hour, so
only the event can have done it), the department system's signed push goes through and its
receipt verifies against the JWKS the gateway publishes; a revocation is refused at the gateway
as soon as the event arrives."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import jwt

from gateway.tests.conftest import JwksServer, gateway_settings, running_gateway
from kit.migrate import upgrade
from kit.signing import new_nonce, signed_headers
from kit.testing import serve, until
from services.exchange.main import create_app
from services.exchange.tests.conftest import GATEWAY_SECRET, TOKENS, push_body, settings_for

ADMIN = {"Authorization": "Bearer " + TOKENS.officer_token("admin", roles=("admin",), department="ADMIN")}


async def signed_push(client: httpx.AsyncClient, base: str, secret: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    path = "/api/v1/departments/BDCDJ/events"
    headers = signed_headers("dept-bdcdj", secret, "POST", path, raw, nonce=new_nonce(), timestamp=int(time.time()))
    return await client.post(base + path, content=raw, headers={**headers, "Content-Type": "application/json"})


async def test_a_partner_made_and_revoked_through_the_gateway(tmp_path, nats_server):
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'exchange.db'}"
    await asyncio.to_thread(upgrade, "services.exchange", database_url)
    exchange = create_app(settings_for(database_url, nats_server.url, str(tmp_path / "k.json"),
                                       relay_linger_seconds=0), key_fetcher=TOKENS.fetch_keys)  # fmt: skip
    jwks = await JwksServer([TOKENS]).start()  # type: ignore[list-item]
    try:
        async with serve(exchange) as exchange_url:
            settings = gateway_settings(
                exchange_url, jwks.url, upstreams={"exchange": exchange_url, "departments": exchange_url + "/departments"},
                nats_enabled=True, nats_url=nats_server.url, partner_source_url=exchange_url,
                exchange_secret=GATEWAY_SECRET, partner_refresh_seconds=3600,
            )  # fmt: skip
            async with running_gateway(settings) as (gateway, base), httpx.AsyncClient(timeout=10) as client:
                await until(lambda: gateway.partner_directory._subscription is not None, "the gateway following NATS")
                made = await client.post(base + "/api/v1/exchange/partners", headers=ADMIN,
                                         json={"id": "dept-bdcdj", "department": "BDCDJ", "name": "不动产登记系统"})  # fmt: skip
                assert made.status_code == 201, made.text
                secret = made.json()["key"]["secret"]
                await until(lambda: "dept-bdcdj" in gateway.partners, "the new partner at the gateway")
                answer = await signed_push(client, base, secret, push_body())
                assert answer.status_code == 200, answer.text
                receipt = answer.json()
                keys = (await client.get(base + "/api/v1/exchange/.well-known/jwks.json")).json()
                key = jwt.PyJWK(keys["keys"][0])
                claims = jwt.decode(receipt["signature"], key=key, algorithms=["EdDSA"])
                assert claims["receipt_id"] == receipt["receipt_id"] and claims["department"] == "BDCDJ"
                assert (await client.get(base + "/api/v1/exchange/partners/keys")).status_code == 404
                revoked = await client.post(base + "/api/v1/exchange/partners/dept-bdcdj/revoke", headers=ADMIN,
                                            json={"reason": "系统下线"})  # fmt: skip
                assert revoked.status_code == 200
                await until(lambda: "dept-bdcdj" not in gateway.partners, "the revocation at the gateway")
                refused = await signed_push(client, base, secret, push_body("ev-2"))
                assert refused.status_code == 401
    finally:
        await jwks.stop()
