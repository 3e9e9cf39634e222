"""Licence under test: migrated and seeded database, own NATS, the app's lifespan, an HTTP client,
a clock the test sets, and tokens signed with a test key exactly as identity signs them
(docs/adr/0002-token-claims.md)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from kit.migrate import upgrade
from kit.signing import signed_headers
from kit.testing import TokenSigner
from services.licence.cli import seed_demo
from services.licence.domain.signing import Ed25519Signer
from services.licence.main import create_app
from services.licence.settings import Settings

TOKENS = TokenSigner()
CHINA = timezone(timedelta(hours=8))
ZHANG_SAN = "11010519491231002X"
LI_SI = "110105194912310038"
COMPANY = "91350100M000100Y43"
CASEFLOW_SECRET = "caseflow-test-secret"
SIGNER = Ed25519Signer.generate(kid="lic-test")


fetch_keys = TOKENS.fetch_keys


def token(subject: str, *, kind: str = "person", level: int = 2, actor: str | None = None, scope: str | None = None,
          roles: tuple[str, ...] = (), department: str | None = None) -> str:  # fmt: skip
    """A token as identity signs it (kit.testing.TokenSigner)."""
    claims: dict[str, Any] = {"sub": subject, "kind": kind, "lvl": level, "scope": scope}
    if actor:
        claims["act"] = {"sub": actor}
    if kind == "officer":
        claims["roles"] = list(roles)
        claims["dept"] = department
    return TOKENS.token(**claims)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def person(subject: str = ZHANG_SAN) -> dict[str, str]:
    return bearer(token(subject))


def enterprise(subject: str = COMPANY, *, actor: str | None = None, scope: str | None = None) -> dict[str, str]:
    return bearer(token(subject, kind="enterprise", level=3, actor=actor, scope=scope))


def officer(department: str = "SCJGJ", *roles: str) -> dict[str, str]:
    roles = roles or ("decider",)
    return bearer(token(f"officer:{department.lower()}.{'-'.join(roles)}", kind="officer", roles=roles,
                        department=department, level=3))  # fmt: skip


def signed(body: dict[str, Any], *, secret: str = CASEFLOW_SECRET, key_id: str = "caseflow",
           path: str = "/checks", timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """A /checks body and the headers caseflow signs it with."""
    raw = json.dumps(body).encode()
    headers = signed_headers(key_id, secret, "POST", path, raw, nonce=secrets.token_hex(12),
                             timestamp=timestamp or int(time.time()))  # fmt: skip
    return raw, {**headers, "Content-Type": "application/json"}


class TestClock:
    """The app's notion of now; tests move it."""

    def __init__(self, day: date) -> None:
        self.set(day)

    def set(self, day: date, hour: int = 10) -> None:
        self.value = datetime(day.year, day.month, day.day, hour, tzinfo=CHINA).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.value


def settings_for(database_url: str, nats_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url, nats_url=nats_url, log_json=False, log_level="WARNING", expiry_enabled=False,
        consume_case_events=False, consume_department_events=False, service_keys={"caseflow": CASEFLOW_SECRET},
        signing_key=json.dumps(SIGNER.private_jwk()),
    )  # fmt: skip
    values.update(changes)
    return Settings(**values)


@pytest.fixture
async def licence(database_url, nats_server):
    """An httpx client on a running licence app with the demo catalogue; today is 2026-11-02."""
    await asyncio.to_thread(upgrade, "services.licence", database_url)
    await seed_demo(database_url)
    app = create_app(settings_for(database_url, nats_server.url), key_fetcher=fetch_keys)
    async with app.router.lifespan_context(app):
        clock = TestClock(date(2026, 11, 2))
        app.state.licence.now = clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://licence") as client:
            client.app = app
            client.clock = clock
            yield client


FOOD = {
    "enterprise_name": "淮安某某餐饮有限公司",
    "address": "德州市德城区新华路1号",
    "business_items": "热食类食品制售",
}


async def issue(client: httpx.AsyncClient, *, licence_type: str = "food_business_licence", holder: str = COMPANY,
                holder_name: str = "德州某某餐饮有限公司", data: dict[str, Any] | None = None,
                department: str = "SCJGJ", **more: Any) -> dict[str, Any]:  # fmt: skip
    body = {"licence_type": licence_type, "holder": holder, "holder_name": holder_name,
            "data": FOOD if data is None else data, **more}  # fmt: skip
    response = await client.post("/licences", json=body, headers=officer(department))
    assert response.status_code == 201, response.text
    return response.json()
