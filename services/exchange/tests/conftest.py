"""Exchange under test: migrated database, own NATS, the app's lifespan, an HTTP client, tokens
signed as identity signs them (kit.testing.TokenSigner), and partners' pushes signed as a
department system signs them (kit.signing, ADR 0003) over the gateway's path."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kit.migrate import upgrade
from kit.signing import new_nonce, signed_headers
from kit.testing import TokenSigner, bearer
from services.exchange.main import create_app
from services.exchange.models import outbox
from services.exchange.settings import Settings

TOKENS = TokenSigner()
SECRETS_KEY = base64.b64encode(os.urandom(32)).decode()
ZHANG_SAN = "11010519491231002X"
GATEWAY_SECRET = "gateway-service-key-for-tests"


def officer(department: str = "ADMIN", *roles: str) -> dict[str, str]:
    roles = roles or ("admin",)
    return bearer(TOKENS.officer_token(f"{department.lower()}-{'-'.join(roles)}", roles=roles, department=department))


def person(subject: str = ZHANG_SAN) -> dict[str, str]:
    return bearer(TOKENS.token(sub=subject, kind="person", lvl=2))


PLATFORM_ADMIN = officer("ADMIN", "admin")


def settings_for(database_url: str, nats_url: str, key_file: str, **changes: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url, nats_url=nats_url, log_json=False, log_level="WARNING", sandbox=False,
        secrets_key=SECRETS_KEY, receipt_key_file=key_file, consume_settled_events=False, consume_case_events=False,
        deliveries_enabled=False, service_keys={"gateway": GATEWAY_SECRET},
    )  # fmt: skip
    values.update(changes)
    return Settings(**values)


@pytest.fixture
async def exchange(database_url, nats_server, tmp_path):
    """An httpx client on a running exchange app."""
    await asyncio.to_thread(upgrade, "services.exchange", database_url)
    app = create_app(settings_for(database_url, nats_server.url, str(tmp_path / "receipt-key.json")),
                     key_fetcher=TOKENS.fetch_keys)  # fmt: skip
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def make_partner(client: httpx.AsyncClient, partner_id: str = "dept-bdcdj", department: str = "BDCDJ",
                       headers: dict[str, str] | None = None) -> tuple[str, str]:  # fmt: skip
    """A partner made by the platform admin: ``(key_id, secret)`` of its first key."""
    answer = await client.post("/partners", json={"id": partner_id, "department": department, "name": "不动产登记系统"},
                               headers=headers or PLATFORM_ADMIN)  # fmt: skip
    assert answer.status_code == 201, answer.text
    return answer.json()["key"]["key_id"], answer.json()["key"]["secret"]


def push_body(event_id: str = "ev-1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id, "type": "case.decision", "occurred_at": "2026-12-01T10:00:00+08:00",
        "data": {"case_no": "CF20261201000001", "action": "accept"},
    }  # fmt: skip
    body.update(changes)
    return body


async def push(
    client: httpx.AsyncClient, secret: str, body: dict[str, Any] | bytes, *, partner: str = "dept-bdcdj",
    department: str = "BDCDJ", timestamp: int | None = None, sign_path: str | None = None,
) -> httpx.Response:  # fmt: skip
    """A push signed as the department system signs it: over the gateway's path."""
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    path = sign_path or f"/api/v1/departments/{department}/events"
    headers = signed_headers(partner, secret, "POST", path, raw, nonce=new_nonce(),
                             timestamp=timestamp if timestamp is not None else int(time.time()))  # fmt: skip
    return await client.post(f"/departments/{department}/events", content=raw,
                             headers={**headers, "Content-Type": "application/json"})  # fmt: skip


async def published(client: httpx.AsyncClient, suffix: str | None = None) -> list[dict[str, Any]]:
    """The outbox's event payloads, oldest first (``suffix``: e.g. ``partner.changed``)."""
    async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
        rows = (await session.execute(
            select(outbox.table.c.event_type, outbox.table.c.payload).order_by(outbox.table.c.id)
        )).all()  # fmt: skip
    return [json.loads(p) for t, p in rows if suffix is None or f".{suffix}." in t]
