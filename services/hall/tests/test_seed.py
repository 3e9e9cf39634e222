"""python -m services.hall.cli seed-demo: the demo hall once, however often it runs."""

from __future__ import annotations

import asyncio

from kit.migrate import upgrade
from services.hall.cli import DEMO_HALL, WINDOWS, seed_demo
from services.hall.settings import Settings


async def test_seed_demo_is_idempotent(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'hall.db'}"
    await asyncio.to_thread(upgrade, "services.hall", url)
    settings = Settings(database_url=url, sandbox=True)
    first = await seed_demo(settings)
    assert DEMO_HALL in first and all(code in first for code in WINDOWS)
    assert (await seed_demo(settings)) == f"{DEMO_HALL} already there"
