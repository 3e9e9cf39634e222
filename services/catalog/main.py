"""Catalog (事项): departments, versioned matter guides, bundles and search."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

from kit.app import ServiceParts, create_service_app
from kit.auth import KeyFetcher
from services.catalog.api.routes import router
from services.catalog.models import outbox
from services.catalog.search_index import IndexCache
from services.catalog.settings import Settings

log = logging.getLogger("yiwang.catalog")


async def warm_up(app: FastAPI) -> None:
    try:
        async with app.state.sessionmaker() as session:
            await app.state.search_index.current(session)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # not migrated yet, database away: the first search builds it
        log.warning("search index warm-up skipped: %s", type(exc).__name__)


def create_app(settings: Settings | None = None, *, key_fetcher: KeyFetcher | None = None) -> FastAPI:
    """The catalog app; ``key_fetcher`` replaces the JWKS download (tests sign their own tokens)."""
    settings = settings or Settings()

    async def start(app: FastAPI) -> None:
        app.state.search_index = IndexCache() if settings.search_index else None
        app.state.index_warmup = None
        if app.state.search_index is not None:
            # Build the index now rather than on the first search (seconds for a large catalog).
            app.state.index_warmup = asyncio.create_task(warm_up(app), name="search-index-warmup")

    async def stop(app: FastAPI) -> None:
        # Cancelled and waited for before the engine is disposed: a warm-up still reading was left
        # holding its connection, whose close then never finished and hung the loop's shutdown.
        warmup = app.state.index_warmup
        if warmup is not None:
            warmup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warmup

    return create_service_app(
        ServiceParts(
            settings=settings,
            title="yiwang catalog (事项)",
            routers=[router],
            outbox=outbox,
            key_fetcher=(lambda app: key_fetcher) if key_fetcher else None,
            on_startup=[start],
            on_shutdown=[stop],
        )
    )
