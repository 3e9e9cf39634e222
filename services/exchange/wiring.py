"""What main.py starts for each half of the service: consumers, background workers.

Each half owns its functions here (inbound: ``inbound_*``; outbound: ``outbound_*``)."""

from __future__ import annotations

from fastapi import FastAPI

from kit.consumer import EventConsumer
from services.exchange.case_events import case_handlers
from services.exchange.delivery_worker import DeliveryWorker
from services.exchange.models import inbox
from services.exchange.outbound_context import OutboundContext
from services.exchange.settings import Settings


def inbound_consumers(settings: Settings, app: FastAPI) -> list[EventConsumer]:
    """caseflow.push.settled and licence.push.settled → the push's outcome."""
    return []


async def inbound_start(settings: Settings, app: FastAPI) -> None:
    """Load the receipt key."""


async def inbound_stop(app: FastAPI) -> None:
    """Nothing yet."""


def outbound_consumers(settings: Settings, app: FastAPI) -> list[EventConsumer]:
    """caseflow case events → deliveries to the departments' subscriptions.

    ONE durable over ``caseflow.case.>`` (not one per subject): a case's events are applied in the
    stream's order, so after an outage ``case.withdrawn`` can never be applied before the
    ``case.accepted`` that recorded the case's departments (ADR 0020). Types it has no handler
    for are acknowledged unread."""
    if not settings.consume_case_events:
        return []
    return [
        EventConsumer(
            bus=app.state.bus, sessionmaker=app.state.sessionmaker, inbox=inbox,
            max_deliveries=settings.max_deliveries, durable="exchange-case-events", stream="CASEFLOW",
            filter_subject="caseflow.case.>", handlers=case_handlers(),
        )
    ]  # fmt: skip


async def outbound_start(settings: Settings, app: FastAPI) -> None:
    """The outbound context (settings, secrets key, clock) and the delivery worker."""
    ctx = OutboundContext(settings=settings)
    app.state.exchange_outbound = ctx
    app.state.delivery_worker = None
    if settings.deliveries_enabled:
        worker = DeliveryWorker(app.state.sessionmaker, settings, key=ctx.key, clock=lambda: ctx.current_time())
        app.state.delivery_worker = worker
        await worker.start()


async def outbound_stop(app: FastAPI) -> None:
    """Stop the delivery worker."""
    worker = getattr(app.state, "delivery_worker", None)
    if worker is not None:
        await worker.stop()
        await worker.aclose()
