"""What main.py starts: each half's consumers (inbound: ``inbound_*``; outbound: ``outbound_*``),
the context both share and the delivery worker."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.caseflow import CasePushSettled
from contracts.events.licence import LicencePushSettled
from kit.consumer import EventConsumer, one_durable_each
from kit.events import CloudEvent
from services.exchange import pushes
from services.exchange.case_events import case_handlers
from services.exchange.context import ExchangeContext
from services.exchange.delivery_worker import DeliveryWorker
from services.exchange.models import inbox
from services.exchange.receipts import load_receipt_signer
from services.exchange.secretbox import SecretBox
from services.exchange.settings import Settings


async def _settled(session: AsyncSession, event: CloudEvent) -> None:
    model = CasePushSettled if event.type == CasePushSettled.event_type else LicencePushSettled
    await pushes.settle(session, model.model_validate(event.data))


def inbound_consumers(settings: Settings, app: FastAPI) -> list[EventConsumer]:
    """caseflow.push.settled and licence.push.settled → the push's outcome (one durable each)."""
    if not settings.consume_settled_events:
        return []
    models = (("CASEFLOW", CasePushSettled), ("LICENCE", LicencePushSettled))
    return one_durable_each(
        app, inbox=inbox, handlers={model.event_type: _settled for _, model in models},
        max_deliveries=settings.max_deliveries,
        durables=[(f"exchange-{stream.lower()}-push-settled", stream, model.nats_subject, model.event_type)
                  for stream, model in models],
    )  # fmt: skip


async def start(settings: Settings, app: FastAPI) -> None:
    """The context both halves share: the secrets box (refuses to start without
    EXCHANGE_SECRETS_KEY outside a sandbox), the receipts' signing key (made on first start when
    its file is missing), the clock; then the delivery worker."""
    box = SecretBox.from_setting(settings.secrets_key.get_secret_value(), sandbox=settings.sandbox)
    ctx = ExchangeContext(settings=settings, box=box, signer=load_receipt_signer(settings.receipt_key_file))
    app.state.exchange = ctx
    app.state.delivery_worker = None
    if settings.deliveries_enabled:
        worker = DeliveryWorker(app.state.sessionmaker, settings, box=ctx.box, clock=lambda: ctx.current_time())
        app.state.delivery_worker = worker
        await worker.start()


def outbound_consumers(settings: Settings, app: FastAPI) -> list[EventConsumer]:
    """caseflow case events → deliveries to the departments' subscriptions.

    ONE durable over ``caseflow.case.>`` (not one per subject): one replica applies a case's events
    in the stream's order, and a backlog after an outage stays in it (ADR 0020). Replicas sharing
    the durable apply at once, so the handlers do not rely on that order (case_events, ADR 0030).
    Types it has no handler for are acknowledged unread."""
    if not settings.consume_case_events:
        return []
    return [
        EventConsumer(
            bus=app.state.bus, sessionmaker=app.state.sessionmaker, inbox=inbox,
            max_deliveries=settings.max_deliveries, durable="exchange-case-events", stream="CASEFLOW",
            filter_subject="caseflow.case.>", handlers=case_handlers(),
        )
    ]  # fmt: skip


async def stop(app: FastAPI) -> None:
    """Stop the delivery worker."""
    worker = getattr(app.state, "delivery_worker", None)
    if worker is not None:
        await worker.stop()
        await worker.aclose()
