"""Caseflow (办件): cases from submission to completion on working-day clocks, watched by a supervisor."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI

from kit.app import ServiceParts, create_service_app
from kit.auth import KeyFetcher
from kit.consumer import EventConsumer
from kit.events import CloudEvent
from services.caseflow import cases, matters
from services.caseflow.adapters.licences import make_licences
from services.caseflow.api.routes import router, sandbox_router
from services.caseflow.blobs import make_blob_store
from services.caseflow.case_numbers import CaseNumberBlocks
from services.caseflow.cases import department_pushes, fees, licences, result_delivery, shipments
from services.caseflow.models import inbox, outbox
from services.caseflow.notifications import NotificationDispatcher, make_gateway
from services.caseflow.settings import Settings
from services.caseflow.supervision import SupervisionTimer

MATTER_PUBLISHED = "yiwang.catalog.matter.published.v1"
MATTER_RETIRED = "yiwang.catalog.matter.retired.v1"
BUNDLE_PUBLISHED = "yiwang.catalog.bundle.published.v1"
LICENCE_ISSUED = "yiwang.licence.licence.issued.v1"
LICENCE_EXPIRING = "yiwang.licence.licence.expiring.v1"


def consumers_for(settings: Settings):
    def build(app: FastAPI) -> list[EventConsumer]:
        common = dict(
            bus=app.state.bus,
            sessionmaker=app.state.background_sessionmaker,
            inbox=inbox,
            max_deliveries=settings.max_deliveries,
        )
        built = [
            EventConsumer(
                **common,
                durable="caseflow-matters",
                stream="CATALOG",
                filter_subject="catalog.matter.>",
                handlers={MATTER_PUBLISHED: matters.on_matter_published, MATTER_RETIRED: matters.on_matter_retired},
            ),
            # A durable of its own: an existing durable keeps its old filter (catalog.matter.>).
            EventConsumer(
                **common,
                durable="caseflow-bundles",
                stream="CATALOG",
                filter_subject="catalog.bundle.>",
                handlers={BUNDLE_PUBLISHED: matters.on_bundle_published},
            ),
        ]
        ctx = lambda: app.state.caseflow  # noqa: E731

        if settings.consume_licence_events:

            async def licence_issued(session, event: CloudEvent) -> None:
                await result_delivery.on_licence_issued(session, ctx(), event)

            async def licence_expiring(session, event: CloudEvent) -> None:
                await licences.on_licence_expiring(session, ctx(), event)

            built.append(
                EventConsumer(**common, durable="caseflow-licences", stream="LICENCE",
                              filter_subject="licence.licence.issued", handlers={LICENCE_ISSUED: licence_issued},
                              concurrency=settings.licence_consumer_concurrency)
            )  # fmt: skip
            # A durable of its own: an existing durable keeps its old filter.
            built.append(
                EventConsumer(**common, durable="caseflow-licence-reminders", stream="LICENCE",
                              filter_subject="licence.licence.expiring", handlers={LICENCE_EXPIRING: licence_expiring})
            )  # fmt: skip
        if settings.consume_express_events:

            async def shipment_event(session, event: CloudEvent) -> None:
                await shipments.on_shipment_event(session, ctx(), event)

            built.append(
                EventConsumer(**common, durable="caseflow-shipments", stream="EXPRESS",
                              filter_subject="express.shipment.>",
                              handlers=dict.fromkeys(shipments.MODELS, shipment_event))
            )  # fmt: skip
        if settings.consume_department_events:

            def pushed(handler):
                async def handle(session, event: CloudEvent) -> None:
                    await handler(session, ctx(), event)

                return handle

            built.append(
                EventConsumer(**common, durable="caseflow-department-pushes", stream="EXCHANGE",
                              filter_subject="exchange.department.>",
                              handlers={kind: pushed(h) for kind, h in department_pushes.HANDLERS.items()})
            )  # fmt: skip
        if settings.consume_payment_events:

            def paid_or_refunded(handler):
                async def handle(session, event: CloudEvent) -> None:
                    await handler(session, ctx(), event)

                return handle

            built.append(
                EventConsumer(**common, durable="caseflow-payments", stream="PAYMENT", filter_subject="payment.order.>",
                              handlers={kind: paid_or_refunded(h) for kind, h in fees.HANDLERS.items()})
            )  # fmt: skip
        return built

    return build


_QUERY_CODE = re.compile(r"([?&]code=)[^&\s\"]*", re.IGNORECASE)


class QueryCodeFilter(logging.Filter):
    """Masks ``code=`` in access-log lines (uvicorn logs the path with its query string): the
    public progress page's query code is never logged in clear."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_QUERY_CODE.sub(r"\1[masked]", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = _QUERY_CODE.sub(r"\1[masked]", record.msg)
        return True


def mask_query_codes_in_access_logs() -> None:
    """Install ``QueryCodeFilter`` on uvicorn's access logger (once)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QueryCodeFilter) for f in logger.filters):
        logger.addFilter(QueryCodeFilter())


def create_app(settings: Settings | None = None, *, key_fetcher: KeyFetcher | None = None) -> FastAPI:
    """The caseflow app; ``key_fetcher`` replaces the JWKS download (tests sign their own tokens)."""
    settings = settings or Settings()
    mask_query_codes_in_access_logs()

    async def start(app: FastAPI) -> None:
        # First: a gateway misconfigured ("http" without its URL or key) stops startup before anything runs.
        app.state.sms_gateway = make_gateway(settings)
        app.state.licences = make_licences(
            adapter=settings.licence_adapter, url=settings.licence_url, key_id=settings.licence_key_id,
            secret=settings.licence_secret.get_secret_value(), timeout=settings.licence_timeout_seconds,
            sandbox_failure_rate=settings.licence_sandbox_failure_rate,
        )  # fmt: skip
        app.state.caseflow = cases.Context(
            settings=settings, numbers=CaseNumberBlocks(app.state.engine, settings.case_number_block,
                                                      driver=app.state.driver),
            licences=app.state.licences,
        )  # fmt: skip
        app.state.blob_store = make_blob_store(settings)
        app.state.supervision_timer = None
        if settings.supervision_enabled:
            app.state.supervision_timer = SupervisionTimer(app.state.sessionmaker, app.state.caseflow)
            await app.state.supervision_timer.start()
        # Applicant notifications leave through the gateway adapter (sandbox or HTTP) from their table.
        app.state.notification_dispatcher = NotificationDispatcher(
            app.state.sessionmaker, app.state.sms_gateway, poll_interval=settings.notification_interval_seconds
        )
        if settings.notification_dispatch_enabled:
            await app.state.notification_dispatcher.start()

    async def stop(app: FastAPI) -> None:
        if app.state.supervision_timer is not None:
            await app.state.supervision_timer.stop()
        await app.state.notification_dispatcher.stop()
        await app.state.sms_gateway.aclose()
        await app.state.licences.aclose()
        await app.state.blob_store.close()

    return create_service_app(
        ServiceParts(
            settings=settings,
            title="yiwang caseflow (办件)",
            # The sandbox page shows what was "sent" (query codes included): only on a sandbox deployment.
            routers=[router, sandbox_router]
            if settings.sandbox and settings.notification_adapter == "sandbox"
            else [router],
            outbox=outbox,
            consumers=consumers_for(settings),
            key_fetcher=(lambda app: key_fetcher) if key_fetcher else None,
            on_startup=[start],
            on_shutdown=[stop],
        )
    )
