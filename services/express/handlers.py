"""Events express consumes: caseflow's delivery and pickup requests → shipments.

The consumer (kit.consumer.EventConsumer) applies each event in one transaction with its inbox row,
so a redelivery changes nothing; ``shipments`` adds the per-case (per-pickup) uniqueness that
holds when the same request arrives under two event ids.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.caseflow import CaseDeliveryRequested, CasePickupRequested
from kit.events import CloudEvent
from services.express.context import Context
from services.express.shipments import create_for_delivery, create_for_pickup

DELIVERY_REQUESTED = CaseDeliveryRequested.event_type
PICKUP_REQUESTED = CasePickupRequested.event_type


def case_handlers(context: Callable[[], Context]):
    """Event type → handler (``context`` is read when a handler runs, after start-up)."""

    async def on_delivery_requested(session: AsyncSession, event: CloudEvent) -> None:
        await create_for_delivery(session, context(), CaseDeliveryRequested.model_validate(event.data))

    async def on_pickup_requested(session: AsyncSession, event: CloudEvent) -> None:
        await create_for_pickup(session, context(), CasePickupRequested.model_validate(event.data))

    return {DELIVERY_REQUESTED: on_delivery_requested, PICKUP_REQUESTED: on_pickup_requested}
