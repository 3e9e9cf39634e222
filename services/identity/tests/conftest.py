"""Identity under test: migrated database, own NATS, the app's lifespan, an HTTP client."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from kit.migrate import upgrade
from services.identity.main import create_app
from services.identity.settings import Settings


def identity_settings(database_url: str, nats_url: str, **overrides) -> Settings:
    values = dict(
        database_url=database_url,
        nats_url=nats_url,
        password_time_cost=1,
        password_memory_kib=64,
        sandbox_delay_ms=0,
        log_json=False,
        log_level="WARNING",
        sms_resend_interval_seconds=0,
        sandbox=True,  # the tests read SMS codes from the sandbox page
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def identity(database_url, nats_server, request):
    """An httpx client on a running identity app (lifespan started).

    ``@pytest.mark.identity_settings(name=value)`` changes settings for one test.
    """
    await asyncio.to_thread(upgrade, "services.identity", database_url)
    marker = request.node.get_closest_marker("identity_settings")
    app = create_app(identity_settings(database_url, nats_server.url, **(marker.kwargs if marker else {})))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
            client.app = app
            yield client


async def sms_code(client: httpx.AsyncClient, mobile: str) -> str:
    """Read the newest code the sandbox SMS gateway 'sent' to this mobile."""
    messages = (await client.get("/sandbox/sms", params={"mobile": mobile})).json()
    return re.search(r"\d{6}", messages[0]["text"]).group(0)


async def register(
    client: httpx.AsyncClient, id_number: str, mobile: str, *, name: str = "张三", password: str = "secret123"
):
    response = await client.post("/sms-codes", json={"mobile": mobile, "purpose": "register"})
    assert response.status_code == 202, response.text
    code = await sms_code(client, mobile)
    return await client.post(
        "/register",
        json={"id_number": id_number, "name": name, "mobile": mobile, "password": password, "sms_code": code},
    )


async def login(client: httpx.AsyncClient, login_name: str, password: str = "secret123") -> httpx.Response:
    return await client.post("/sessions", json={"method": "password", "login": login_name, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
