"""Licence (电子证照): the licence catalogue, issuing, the holders' wallets, checks and verification."""

from __future__ import annotations

from fastapi import FastAPI

from kit.app import ServiceParts, create_service_app
from kit.auth import KeyFetcher
from kit.consumer import EventConsumer
from services.licence.api.routes import router
from services.licence.context import Context
from services.licence.credentials import Credentials
from services.licence.expiry import ExpiryTimer
from services.licence.handlers import (
    CASE_APPROVED,
    DEPARTMENT_LICENCE_ISSUED,
    case_approved_handler,
    department_licence_handler,
)
from services.licence.models import inbox, outbox
from services.licence.settings import Settings


def consumers_for(settings: Settings):
    def build(app: FastAPI) -> list[EventConsumer]:
        common = dict(bus=app.state.bus, sessionmaker=app.state.background_sessionmaker, inbox=inbox,
                      max_deliveries=settings.max_deliveries)  # fmt: skip
        built = []
        if settings.consume_case_events:
            built.append(
                EventConsumer(
                    **common,
                    durable="licence-case-approvals",
                    stream="CASEFLOW",
                    filter_subject="caseflow.case.approved",
                    concurrency=settings.case_consumer_concurrency,
                    handlers={CASE_APPROVED: case_approved_handler(lambda: app.state.licence)},
                )
            )
        if settings.consume_department_events:
            built.append(
                EventConsumer(
                    **common,
                    durable="licence-department-certificates",
                    stream="EXCHANGE",
                    filter_subject="exchange.department.licence_issued",
                    handlers={DEPARTMENT_LICENCE_ISSUED: department_licence_handler(lambda: app.state.licence)},
                )
            )
        return built

    return build


def create_app(settings: Settings | None = None, *, key_fetcher: KeyFetcher | None = None) -> FastAPI:
    """The licence app; ``key_fetcher`` replaces the JWKS download (tests sign their own tokens)."""
    settings = settings or Settings()

    async def start(app: FastAPI) -> None:
        app.state.licence = Context(settings=settings)
        app.state.credentials = Credentials(settings)
        app.state.expiry_timer = None
        if settings.expiry_enabled:
            app.state.expiry_timer = ExpiryTimer(app.state.sessionmaker, app.state.licence)
            await app.state.expiry_timer.start()

    async def stop(app: FastAPI) -> None:
        if app.state.expiry_timer is not None:
            await app.state.expiry_timer.stop()

    return create_service_app(
        ServiceParts(
            settings=settings,
            title="yiwang licence (电子证照)",
            routers=[router],
            outbox=outbox,
            consumers=consumers_for(settings),
            key_fetcher=(lambda app: key_fetcher) if key_fetcher else None,
            on_startup=[start],
            on_shutdown=[stop],
        )
    )
