"""Exchange (部门系统对接): partners, signed pushes with signed receipts, webhooks to departments."""

from __future__ import annotations

from fastapi import FastAPI

from kit.app import ServiceParts, create_service_app
from kit.auth import KeyFetcher
from kit.consumer import EventConsumer
from services.exchange import wiring
from services.exchange.api.inbound import router as inbound_router
from services.exchange.api.outbound import router as outbound_router
from services.exchange.models import outbox
from services.exchange.settings import Settings


def create_app(settings: Settings | None = None, *, key_fetcher: KeyFetcher | None = None) -> FastAPI:
    """The exchange app; ``key_fetcher`` replaces the JWKS download (tests sign their own tokens)."""
    settings = settings or Settings()

    def consumers(app: FastAPI) -> list[EventConsumer]:
        return wiring.inbound_consumers(settings, app) + wiring.outbound_consumers(settings, app)

    async def start(app: FastAPI) -> None:
        await wiring.start(settings, app)

    return create_service_app(
        ServiceParts(
            settings=settings,
            title="yiwang exchange (部门系统对接)",
            routers=[inbound_router, outbound_router],
            outbox=outbox,
            consumers=consumers,
            key_fetcher=(lambda app: key_fetcher) if key_fetcher else None,
            on_startup=[start],
            on_shutdown=[wiring.stop],
        )
    )
