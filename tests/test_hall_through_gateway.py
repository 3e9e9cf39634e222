"""The hall's identity behind the gateway, over real sockets and a real NATS (ADR 0025): an admin
registers a kiosk, the gateway learns its key from identity.kiosk.changed (its periodic reload is
set to an hour, so only the event can have done it); a card read without the kiosk's signature is
refused, with it identity (checking the signature again itself) makes a kiosk token, which works
only on requests the kiosk signs; revoking the kiosk refuses both at once after the event. At the
counter, the officer's logout ends the token made for the person at the gateway too."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date, timedelta

import httpx

from gateway.tests.conftest import gateway_settings, running_gateway
from kit.migrate import upgrade
from kit.signing import new_nonce, signed_headers
from kit.testing import serve, until
from services.identity.main import create_app
from services.identity.officers import create_officer
from services.identity.schemas import CreateOfficer
from services.identity.tests.conftest import identity_settings

SERVICE_SECRET = "gateway-identity-secret-for-tests"
PASSWORD = "pass-2026-x"
KIOSK = "KIOSK-370102-01"
LIU = "110101194505060013"
NEIGHBOUR = "11010519491231002X"


def card(id_number: str, name: str) -> dict:
    today = date.today()
    return {"id_number": id_number, "name": name, "valid_from": (today - timedelta(days=900)).isoformat(),
            "valid_until": (today + timedelta(days=900)).isoformat()}  # fmt: skip


async def signed(client: httpx.AsyncClient, base: str, method: str, path: str, secret: str | None,
                 body: dict | None = None, token: str | None = None) -> httpx.Response:  # fmt: skip
    raw = json.dumps(body).encode() if body is not None else b""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if secret is not None:
        headers |= signed_headers(KIOSK, secret, method, path, raw, nonce=new_nonce(), timestamp=int(time.time()))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await client.request(method, base + path, content=raw or None, headers=headers)


async def officer_token(client: httpx.AsyncClient, base: str, login: str) -> str:
    answer = await client.post(base + "/api/v1/identity/sessions",
                               json={"method": "officer", "login": login, "password": PASSWORD})  # fmt: skip
    assert answer.status_code == 201, answer.text
    return answer.json()["access_token"]


async def test_kiosk_and_counter_tokens_through_the_gateway(tmp_path, nats_server):
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}"
    await asyncio.to_thread(upgrade, "services.identity", database_url)
    identity = create_app(identity_settings(database_url, nats_server.url, relay_linger_seconds=0,
                                            service_keys={"gateway": SERVICE_SECRET}))  # fmt: skip
    async with serve(identity) as identity_url:
        async with identity.state.sessionmaker() as session, session.begin():
            for login, department, roles in (("p.admin", "ADMIN", ["admin"]), ("liu.window", "ZWFW", ["counter"])):
                body = CreateOfficer(login=login, name="刘窗口", department=department, roles=roles, password=PASSWORD)
                await create_officer(session, identity.state.identity.passwords, body, created_by="test")
        settings = gateway_settings(
            identity_url, identity_url + "/.well-known/jwks.json", upstreams={"identity": identity_url},
            nats_enabled=True, nats_url=nats_server.url, kiosk_source_url=identity_url,
            identity_secret=SERVICE_SECRET, kiosk_refresh_seconds=3600,
        )  # fmt: skip
        async with running_gateway(settings) as (gateway, base), httpx.AsyncClient(timeout=10) as client:
            await until(lambda: gateway.kiosk_directory._subscription is not None, "the gateway following NATS")
            admin = {"Authorization": "Bearer " + await officer_token(client, base, "p.admin")}
            made = await client.post(base + "/api/v1/identity/kiosks", headers=admin,
                                     json={"device_id": KIOSK, "hall_code": "HALL-370102", "name": "24小时自助机",
                                           "location": "一楼东侧"})  # fmt: skip
            assert made.status_code == 201, made.text
            secret = made.json()["secret"]
            await until(lambda: KIOSK in gateway.kiosk_directory.kiosks, "the new kiosk at the gateway")

            sessions = "/api/v1/identity/kiosk-sessions"
            unsigned = await signed(client, base, "POST", sessions, None, card(NEIGHBOUR, "张三"))
            assert unsigned.status_code == 401 and unsigned.json()["reason"] == "missing"
            answer = await signed(client, base, "POST", sessions, secret, card(NEIGHBOUR, "张三"))
            assert answer.status_code == 201, answer.text
            token = answer.json()["access_token"]
            me = await signed(client, base, "GET", "/api/v1/identity/me", secret, token=token)
            assert me.status_code == 200 and me.json()["subject"] == NEIGHBOUR, me.text
            stolen = await signed(client, base, "GET", "/api/v1/identity/me", None, token=token)
            assert stolen.status_code == 401 and stolen.json()["type"].endswith("/kiosk-signature-required")
            assert (await client.get(base + "/api/v1/identity/kiosks/keys")).status_code == 404

            revoked = await client.post(base + f"/api/v1/identity/kiosks/{KIOSK}/revoke", headers=admin)
            assert revoked.status_code == 200
            await until(lambda: KIOSK not in gateway.kiosk_directory.kiosks, "the revocation at the gateway")
            assert (await signed(client, base, "POST", sessions, secret, card(NEIGHBOUR, "张三"))).status_code == 401
            assert (await signed(client, base, "GET", "/api/v1/identity/me", secret, token=token)).status_code == 401

            # 一窗受理: a token for Old Mr Liu, ended at the gateway by the officer's logout.
            counter = await officer_token(client, base, "liu.window")
            made = await client.post(base + "/api/v1/identity/counter-sessions",
                                     json={"id_number": LIU, "name": "刘老汉"},
                                     headers={"Authorization": f"Bearer {counter}"})  # fmt: skip
            assert made.status_code == 201, made.text
            liu = {"Authorization": "Bearer " + made.json()["access_token"]}
            assert (await client.get(base + "/api/v1/identity/me", headers=liu)).json()["subject"] == LIU
            known = len(gateway.revocations)  # wait for the logout's own entry, not an earlier one
            out = await client.delete(base + "/api/v1/identity/sessions/current",
                                      headers={"Authorization": f"Bearer {counter}"})  # fmt: skip
            assert out.status_code == 204
            await until(lambda: len(gateway.revocations) > known, "the officer's logout at the gateway")
            refused = await client.get(base + "/api/v1/identity/me", headers=liu)
            assert refused.status_code == 401 and refused.json()["type"].endswith("/token-revoked"), refused.text
