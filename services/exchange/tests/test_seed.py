"""The demo seed: the real-estate centre's partner, pushing with the configured secret; twice is once."""

from __future__ import annotations

import asyncio

from kit.migrate import upgrade
from services.exchange.cli import seed_demo
from services.exchange.tests.conftest import SECRETS_KEY, push, push_body, settings_for


async def test_the_seed_makes_the_demo_partner_once_and_it_can_push(database_url, nats_server, tmp_path, exchange):
    settings = settings_for(database_url, nats_server.url, str(tmp_path / "k.json"),
                            demo_partner_secret="make-run-only-bdcdj-partner-secret", secrets_key=SECRETS_KEY)  # fmt: skip
    assert "made" in await seed_demo(settings)
    assert "already" in await seed_demo(settings)
    answer = await push(exchange, "make-run-only-bdcdj-partner-secret", push_body())
    assert answer.status_code == 200 and answer.json()["partner"] == "dept-bdcdj"


async def test_without_a_secret_the_seed_makes_nothing(database_url, nats_server, tmp_path):
    await asyncio.to_thread(upgrade, "services.exchange", database_url)
    settings = settings_for(database_url, nats_server.url, str(tmp_path / "k.json"))
    assert "skipped" in await seed_demo(settings)
