"""Catalog under test: migrated and seeded database, own NATS, the app's lifespan, an HTTP client.

Officer tokens are signed here with a test Ed25519 key that the app's key fetcher returns, exactly
as identity would sign them (docs/adr/0002-token-claims.md).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from kit.migrate import upgrade
from kit.testing import TokenSigner, bearer
from services.catalog.cli import seed_demo
from services.catalog.main import create_app
from services.catalog.settings import Settings

SIGNER = TokenSigner()
fetch_keys = SIGNER.fetch_keys


def token(*, kind: str = "officer", roles: tuple[str, ...] = ("admin",), department: str | None = "SCJGJ") -> str:
    if kind == "officer":
        return SIGNER.officer_token(f"{(department or 'x').lower()}.admin", roles=roles, department=department)
    return SIGNER.token(kind=kind, lvl=3)


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
