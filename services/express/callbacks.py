"""EMS tracking callbacks: one event in, the timeline and status updated, the change published.

The gateway checked the partner's signature and nonce and says who it was (X-Partner-Id); the
route refuses anyone but the carrier's partner id. Then, in ONE transaction:

- the shipment is found by waybill (404 otherwise) and locked by a no-op ``UPDATE`` (a row lock on
  PostgreSQL, the write lock on SQLite) so two callbacks for one parcel are applied one after the
  other;
- its tracking is rebuilt from the stored timeline and the event applied with
  ``domain.tracking.advance``: a seen ``event_id`` is a duplicate (nothing changes, 200
  ``{"duplicate": true}``); an event is placed by its event time; the status never goes back;
- the event row is stored (``applied`` = it moved the status), and a status change is published
  through the outbox: ``express.shipment.updated``, ``.delivered`` (signed_for) or ``.failed``
  (failed_attempt; returned is final).

``UNIQUE (shipment_id, event_id)`` backs the duplicate check when two deliveries of one event
race past the lock (SQLite, or a retry): the loser's transaction rolls back and it answers as a
duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Problem, field_problem
from kit.masking import mask_name
from services.express.context import Context
from services.express.domain import tracking
from services.express.models import Shipment, ShipmentEvent
from services.express.publishing import status_changed
from services.express.schemas import EmsCallback

log = logging.getLogger("yiwang.express.callbacks")


@dataclass(frozen=True)
class Received:
    shipment_id: str
    status: str
    duplicate: bool
    applied: bool


def _event_of(row: ShipmentEvent) -> tracking.TrackingEvent:
    return tracking.TrackingEvent(
        event_id=row.event_id, status=row.status, at=row.at, code=row.carrier_code,  # type: ignore[arg-type]
        text=row.carrier_text, signed_by=row.signed_by,
    )  # fmt: skip


async def load_tracking(session: AsyncSession, shipment: Shipment) -> tracking.Tracking:
    """The shipment's tracking as stored: its timeline by event time, and the event that set the
    status (the last one applied; None while only created)."""
    rows = list(
        (await session.execute(
            select(ShipmentEvent).where(ShipmentEvent.shipment_id == shipment.id).order_by(ShipmentEvent.id)
        )).scalars()
    )  # fmt: skip
    applied = [row for row in rows if row.applied]
    current = _event_of(applied[-1]) if applied else None
    timeline = tuple(sorted((_event_of(row) for row in rows), key=tracking.TrackingEvent.sort_key))
    status = shipment.status if current is not None else "created"
    return tracking.Tracking(status=status, current=current, timeline=timeline)  # type: ignore[arg-type]


async def receive(session: AsyncSession, ctx: Context, body: EmsCallback) -> Received:
    """Apply one EMS tracking event (module doc). Raises 404 for an unknown waybill, 422 for an
    unknown EMS code."""
    # The first statement takes the shipment's write lock (a row lock on PostgreSQL, the database's
    # write lock on SQLite, which a SELECT would not take): callbacks for one parcel are applied one
    # after the other, each reading what the previous one committed.
    locked = await session.execute(
        update(Shipment).where(Shipment.waybill == body.waybill).values(updated_at=Shipment.updated_at)
        .returning(Shipment.id)
    )  # fmt: skip
    shipment_id = locked.scalar_one_or_none()
    shipment = await session.get(Shipment, shipment_id) if shipment_id is not None else None
    if shipment is None:
        raise Problem(404, "not-found", "Not found", "no shipment with this waybill")
    try:
        status = tracking.ems_status(body.code)
    except tracking.UnknownCarrierCode:
        raise field_problem("body.code", "ems_code", "not an EMS tracking code express knows") from None
    signed_by = mask_name(body.signed_by) if body.signed_by else None  # a courier's note of who signed
    event = tracking.TrackingEvent(event_id=body.event_id, status=status, at=body.at, code=body.code,
                                   text=body.text, signed_by=signed_by)  # fmt: skip
    current = await load_tracking(session, shipment)
    result = tracking.advance(current, event)
    if result.outcome == "duplicate":
        return Received(shipment.id, shipment.status, duplicate=True, applied=False)
    now = ctx.current_time()
    session.add(ShipmentEvent(
        shipment_id=shipment.id, event_id=body.event_id, at=body.at, status=status, carrier_code=body.code,
        carrier_text=body.text, signed_by=signed_by, received_at=now, applied=result.changed,
    ))  # fmt: skip
    if result.outcome == "conflict":
        log.warning("shipment %s: carrier reported %s after final %s (recorded, status kept)",
                    shipment.id, status, shipment.status)  # fmt: skip
    if result.changed:
        shipment.status = result.tracking.status
        shipment.status_at = body.at
        shipment.updated_at = now
        await status_changed(session, shipment, status=status, at=body.at, code=body.code, text=body.text,
                             signed_by=signed_by)  # fmt: skip
    shipment_id, before = shipment.id, current.status
    try:
        await session.flush()
    except IntegrityError:  # the same event_id raced us past the lock: it is a duplicate
        await session.rollback()
        return Received(shipment_id, before, duplicate=True, applied=False)
    return Received(shipment_id, result.tracking.status, duplicate=False, applied=result.changed)
