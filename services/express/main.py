"""Express (邮政快递): shipments for case results and originals, carrier orders, EMS tracking."""

from __future__ import annotations

from fastapi import FastAPI

from kit.app import ServiceParts, create_service_app
from kit.auth import KeyFetcher
from kit.consumer import EventConsumer, one_durable_each
from services.express.adapters.carrier import Carrier, HttpCarrier
from services.express.api.routes import router
from services.express.context import Context
from services.express.handlers import DELIVERY_REQUESTED, PICKUP_REQUESTED, case_handlers
from services.express.models import inbox, outbox
from services.express.orders import OrderWorker
from services.express.settings import Settings


def consumers_for(settings: Settings):
    def build(app: FastAPI) -> list[EventConsumer]:
        if not settings.consume_case_events:
            return []
        handlers = case_handlers(lambda: app.state.express)
        # One durable per subject: each reads only its own requests from the CASEFLOW stream.
        return one_durable_each(
            app, inbox=inbox, handlers=handlers, max_deliveries=settings.max_deliveries, batch=settings.consumer_batch,
            durables=[(f"express-{name}", "CASEFLOW", f"caseflow.case.{name.replace('-', '_')}", event_type)
                      for name, event_type in (("delivery-requested", DELIVERY_REQUESTED),
                                               ("pickup-requested", PICKUP_REQUESTED))],
        )  # fmt: skip

    return build


def create_app(
    settings: Settings | None = None, *, key_fetcher: KeyFetcher | None = None, carrier: Carrier | None = None
) -> FastAPI:
    """The express app; ``key_fetcher`` replaces the JWKS download (tests sign their own tokens),
    ``carrier`` the HTTP carrier (tests pass one in)."""
    settings = settings or Settings()

    async def start(app: FastAPI) -> None:
        app.state.express = Context(settings=settings)
        app.state.carrier = carrier or HttpCarrier(
            settings.carrier_url,
            key_id=settings.carrier_key_id,
            secret=settings.carrier_secret.get_secret_value(),
            timeout=settings.carrier_timeout_seconds,
        )
        app.state.order_worker = None
        if settings.carrier_orders_enabled:
            app.state.order_worker = OrderWorker(app.state.sessionmaker, app.state.carrier, settings,
                                                 clock=lambda: app.state.express.current_time())  # fmt: skip
            await app.state.order_worker.start()

    async def stop(app: FastAPI) -> None:
        if app.state.order_worker is not None:
            await app.state.order_worker.stop()
        close = getattr(app.state.carrier, "aclose", None)
        if close is not None:
            await close()

    return create_service_app(
        ServiceParts(
            settings=settings,
            title="yiwang express (邮政快递)",
            routers=[router],
            outbox=outbox,
            consumers=consumers_for(settings),
            key_fetcher=(lambda app: key_fetcher) if key_fetcher else None,
            on_startup=[start],
            on_shutdown=[stop],
        )
    )
