"""Payment (网上缴费): orders from caseflow's fees, payments through the gateway, e-receipts, refunds."""

from __future__ import annotations

from fastapi import FastAPI

from kit.app import ServiceParts, create_service_app
from kit.auth import KeyFetcher
from kit.consumer import EventConsumer, one_durable_each
from services.payment.adapters.gateway import HttpGateway, PaymentGateway
from services.payment.api.routes import router
from services.payment.context import Context
from services.payment.handlers import SUBJECTS, case_handlers
from services.payment.models import inbox, outbox
from services.payment.refunds import RefundWorker
from services.payment.settings import Settings


def consumers_for(settings: Settings):
    def build(app: FastAPI) -> list[EventConsumer]:
        if not settings.consume_case_events:
            return []
        handlers = case_handlers(lambda: app.state.payment)
        # One durable per subject: each reads only its own events from the CASEFLOW stream.
        return one_durable_each(
            app, inbox=inbox, handlers=handlers, max_deliveries=settings.max_deliveries, batch=settings.consumer_batch,
            durables=[(f"payment-{name}", "CASEFLOW", subject, event_type)
                      for name, (subject, event_type) in SUBJECTS.items()],
        )  # fmt: skip

    return build


def create_app(
    settings: Settings | None = None, *, key_fetcher: KeyFetcher | None = None, gateway: PaymentGateway | None = None
) -> FastAPI:
    """The payment app; ``key_fetcher`` replaces the JWKS download (tests sign their own tokens),
    ``gateway`` the HTTP gateway (tests pass one in)."""
    settings = settings or Settings()

    async def start(app: FastAPI) -> None:
        settings.receipt_secret()  # no receipt key outside a sandbox: refuse to start, not at the first payment
        chosen = gateway or HttpGateway(settings.gateway_url, name=settings.provider, merchant_id=settings.merchant_id,
                                        secret=settings.merchant_secret.get_secret_value(),
                                        timeout=settings.gateway_timeout_seconds)  # fmt: skip
        ctx = Context(settings=settings, gateway=chosen)
        app.state.payment = ctx
        app.state.refund_worker = None
        if settings.refunds_enabled:
            worker = RefundWorker(app.state.sessionmaker, chosen, settings, clock=lambda: ctx.current_time())
            app.state.refund_worker = worker
            await worker.start()

    async def stop(app: FastAPI) -> None:
        if app.state.refund_worker is not None:
            await app.state.refund_worker.stop()
        await app.state.payment.gateway.aclose()

    return create_service_app(
        ServiceParts(
            settings=settings,
            title="yiwang payment (网上缴费)",
            routers=[router],
            outbox=outbox,
            consumers=consumers_for(settings),
            key_fetcher=(lambda app: key_fetcher) if key_fetcher else None,
            on_startup=[start],
            on_shutdown=[stop],
        )  # fmt: skip
    )
