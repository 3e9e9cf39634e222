"""Hall (政务服务大厅): appointments (预约) and the hall's queue (叫号), ADR 0023."""

from __future__ import annotations

from fastapi import FastAPI

from kit.app import ServiceParts, create_service_app
from kit.auth import KeyFetcher
from services.hall.adapters.calendar import WorkingDays
from services.hall.adapters.sms import SmsSender
from services.hall.api.routes import router, sandbox_router
from services.hall.background import NoShowMarker, SmsDispatcher
from services.hall.context import Context
from services.hall.models import outbox
from services.hall.settings import Settings


def create_app(settings: Settings | None = None, *, key_fetcher: KeyFetcher | None = None,
               calendar: WorkingDays | None = None, sms: SmsSender | None = None) -> FastAPI:  # fmt: skip
    """The hall app; tests pass their own key fetcher, calendar and SMS gateway."""
    settings = settings or Settings()

    async def start(app: FastAPI) -> None:
        ctx = Context.from_settings(settings, calendar=calendar, sms=sms)
        app.state.hall = ctx
        maker = app.state.background_sessionmaker
        app.state.hall_loops = []
        if settings.sms_enabled:
            app.state.hall_loops.append(SmsDispatcher(maker, ctx.sms, settings, clock=lambda: ctx.current_time()))
        if settings.no_show_enabled:
            app.state.hall_loops.append(NoShowMarker(maker, settings, clock=lambda: ctx.current_time()))
        for loop in app.state.hall_loops:
            await loop.start()

    async def stop(app: FastAPI) -> None:
        for loop in getattr(app.state, "hall_loops", []):
            await loop.stop()

    routers = [router] + ([sandbox_router] if settings.sandbox else [])
    return create_service_app(
        ServiceParts(settings=settings, title="yiwang hall (政务服务大厅: 预约, 叫号)", routers=routers, outbox=outbox,
                     on_startup=[start], on_shutdown=[stop],
                     key_fetcher=(lambda app: key_fetcher) if key_fetcher else None)
    )  # fmt: skip
