"""Alembic migrations for any service: ``python -m kit.migrate services.identity [upgrade head]``.

Each service keeps its scripts in ``services/<name>/migrations/`` and its env.py calls
``run_migrations`` below, so every service migrates SQLite and PostgreSQL the same way.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from kit.db import async_database_url


def alembic_config(service_package: str, database_url: str) -> Config:
    database_url = async_database_url(database_url)
    module = importlib.import_module(service_package)
    folder = Path(str(module.__file__)).parent / "migrations"
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(service_package: str, database_url: str, revision: str = "head") -> None:
    """Bring a service's database to ``revision`` (creates the SQLite folder if needed).

    ``postgresql://`` and ``postgresql+asyncpg://`` (and ``sqlite://``) URLs all work."""
    database_url = async_database_url(database_url)
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(service_package, database_url), revision)


def _do_run(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations(metadata: MetaData) -> None:
    """Called from a service's migrations/env.py."""
    config = context.config
    url = async_database_url(config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url") or "")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    async def run_async() -> None:
        engine = async_engine_from_config({"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(_do_run, metadata)
        await engine.dispose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_async())
        return
    raise RuntimeError("run migrations outside an event loop (use asyncio.to_thread(upgrade, ...))")


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m kit.migrate services.<name> [revision]")
    package = argv[0]
    revision = argv[1] if len(argv) > 1 else "head"
    settings_module = importlib.import_module(f"{package}.settings")
    settings = settings_module.Settings()
    url = settings.resolved_database_url()
    upgrade(package, url, revision)
    print(f"{package}: migrated to {revision}")


if __name__ == "__main__":
    main(sys.argv[1:])
