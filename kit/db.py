"""Async SQLAlchemy engines and the one-session-per-request unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import DateTime, TypeDecorator, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from starlette.requests import Request


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# The forms ops and most tools write (libpq, Heroku-style, psycopg) → the async driver we run on.
_ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
}


def async_database_url(url: str) -> str:
    """The URL with its driver made async: ``postgresql://…`` and ``postgres://…`` become
    ``postgresql+asyncpg://…``, ``sqlite:///…`` becomes ``sqlite+aiosqlite:///…``; an URL that
    already names an async driver is returned as it is. Everything else in the URL is kept verbatim."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    replacement = _ASYNC_DRIVERS.get(scheme.lower())
    return f"{replacement}://{rest}" if replacement else url


def make_engine(url: str, **kwargs) -> AsyncEngine:
    """An engine with the pragmas SQLite needs to behave under concurrent writers.

    Any PostgreSQL or SQLite URL form is accepted (see ``async_database_url``)."""
    url = async_database_url(url)
    if is_sqlite(url):
        kwargs.setdefault("connect_args", {"timeout": 30})
    else:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        # No pre-ping: it costs a round trip per request. A connection the server dropped fails
        # that one request (the client retries; nothing was accepted) and the pool replaces it.
        kwargs.setdefault("pool_recycle", 1800)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions with their own sync class, so the outbox relay can listen for this service's commits."""
    session_class = type("ServiceSession", (Session,), {})
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=session_class)


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request, committed once when the handler succeeds.

    Use it with ``Depends(request_session, scope="function")`` so the commit happens before the
    response is sent: a client never sees 201 for a write that failed to commit.
    """
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine for reads that change nothing: on PostgreSQL in autocommit, so a SELECT is one
    round trip with no BEGIN and COMMIT around it; SQLite as it is (pysqlite opens no transaction
    for a SELECT, and switching its isolation level costs aiosqlite a hop to its thread)."""
    return engine if engine.dialect.name == "sqlite" else engine.execution_options(isolation_level="AUTOCOMMIT")


async def read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """FastAPI dependency for hot read paths: one pooled connection on ``read_engine``, for Core
    statements — no ORM session, unit of work or commit (nothing is written through it)."""
    async with request.app.state.read_engine.connect() as connection:
        yield connection


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency for reads that load ORM objects: a session on ``read_engine``, never
    committed (closing it is all), so on PostgreSQL no BEGIN and COMMIT round trips."""
    async with request.app.state.read_sessionmaker() as session:
        yield session


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
