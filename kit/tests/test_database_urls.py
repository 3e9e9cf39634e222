"""`postgresql://` and `postgresql+asyncpg://` (and `sqlite://` beside `sqlite+aiosqlite://`) work
everywhere a database URL is read: the engine, the settings and the migrations."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from kit.db import async_database_url, make_engine
from kit.migrate import upgrade
from kit.settings import ServiceSettings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p%40ss@db:5432/x?sslmode=require", "postgresql+asyncpg://u:p%40ss@db:5432/x?sslmode=require"),
        ("postgres://u@db/x", "postgresql+asyncpg://u@db/x"),
        ("postgresql+psycopg2://u@db/x", "postgresql+asyncpg://u@db/x"),
        ("postgresql+asyncpg://u@db/x", "postgresql+asyncpg://u@db/x"),
        ("sqlite:///a/b.db", "sqlite+aiosqlite:///a/b.db"),
        ("sqlite+aiosqlite:///a/b.db", "sqlite+aiosqlite:///a/b.db"),
    ],
)
def test_async_database_url(given, expected):
    assert async_database_url(given) == expected
    assert ServiceSettings(database_url=given).resolved_database_url() == expected


def _plain(url: str) -> str:
    """The form ops write: no driver in the scheme."""
    return url.replace("+asyncpg://", "://").replace("+aiosqlite://", "://")


@pytest.mark.parametrize("form", ["driver", "plain"])
def test_migrate_and_engine_accept_both_url_forms(database_url, form):
    url = database_url if form == "driver" else _plain(database_url)
    assert ("+" in url.split("://")[0]) == (form == "driver")
    upgrade("kit.tests.sample_service", url)

    async def use() -> list:
        engine = make_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO widgets (id, name) VALUES (1, 'a')"))
                return list(await connection.execute(text("SELECT name FROM widgets")))
        finally:
            await engine.dispose()

    assert [tuple(r) for r in asyncio.run(use())] == [("a",)]
