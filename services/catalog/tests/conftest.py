"""Catalog under test: migrated and seeded database, own NATS, the app's lifespan, an HTTP client.

Officer tokens are signed here with a test Ed25519 key that the app's key fetcher returns, exactly
as identity would sign them (docs/adr/0002-token-claims.md).
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from kit.auth import public_keys_from_jwks
from kit.migrate import upgrade
from services.catalog.cli import seed_demo
from services.catalog.main import create_app
from services.catalog.settings import Settings

PRIVATE_KEY = Ed25519PrivateKey.generate()
_JWK = json.loads(OKPAlgorithm.to_jwk(PRIVATE_KEY.public_key()))
_JWK["kid"] = "test-key"


async def fetch_keys():
    return public_keys_from_jwks({"keys": [_JWK]})


def token(*, kind: str = "officer", roles: tuple[str, ...] = ("admin",), department: str | None = "SCJGJ") -> str:
    now = int(time.time())
    claims = {
        "sub": f"officer:{(department or 'x').lower()}.admin" if kind == "officer" else "11010519491231002X",
        "kind": kind,
        "lvl": 3,
        "iss": "yiwang-identity",
        "aud": "yiwang",
        "iat": now,
        "exp": now + 600,
        "jti": f"t{now}",
    }
    if kind == "officer":
        claims["roles"] = list(roles)
        claims["dept"] = department
    return jwt.encode(claims, PRIVATE_KEY, algorithm="EdDSA", headers={"kid": "test-key"})


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def admin_of(department: str) -> dict[str, str]:
    return bearer(token(department=department))


@pytest.fixture
async def catalog(database_url, nats_server):
    """An httpx client on a running catalog app with the demo catalog loaded."""
    await asyncio.to_thread(upgrade, "services.catalog", database_url)
    await seed_demo(database_url)
    settings = Settings(database_url=database_url, nats_url=nats_server.url, log_json=False, log_level="WARNING")
    app = create_app(settings, key_fetcher=fetch_keys)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
            client.app = app
            yield client
