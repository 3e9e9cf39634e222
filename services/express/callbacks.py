"""EMS tracking callbacks: one event in, the timeline and status updated, the change published.

The gateway checked the partner's signature and nonce and says who it was (X-Partner-Id); the
route refuses anyone but the carrier's partner id. Then, in ONE transaction:

- the shipment is found by waybill (404 otherwise) and locked by the first statement (``SELECT …
  FOR UPDATE`` on PostgreSQL, a no-op ``UPDATE`` taking the write lock on SQLite) so two callbacks
  for one parcel are applied one after the other;
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
from typing import Any

from sqlalchemy import bindparam, select, update
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


_TIMELINE_COLUMNS = (
    ShipmentEvent.event_id, ShipmentEvent.status, ShipmentEvent.at, ShipmentEvent.carrier_code,
    ShipmentEvent.carrier_text, ShipmentEvent.signed_by, ShipmentEvent.applied,
)  # fmt: skip
_EVENTS = ShipmentEvent.__table__
_SHIPMENTS = Shipment.__table__
# Built once and executed with parameters (building a statement per callback costs more CPU than
# running it): the lock, the timeline, the event row and the status change.
_LOCK_POSTGRESQL = select(Shipment).where(Shipment.waybill == bindparam("b_waybill")).with_for_update()
_LOCK_SQLITE = (
    update(Shipment).where(Shipment.waybill == bindparam("b_waybill")).values(updated_at=Shipment.updated_at)
    .returning(Shipment).execution_options(synchronize_session=False)
)  # fmt: skip
_TIMELINE = (
    select(*_TIMELINE_COLUMNS).where(ShipmentEvent.shipment_id == bindparam("shipment_id")).order_by(ShipmentEvent.id)
)
_INSERT_EVENT = _EVENTS.insert()
_SET_STATUS = (
    _SHIPMENTS.update().where(_SHIPMENTS.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), status_at=bindparam("b_status_at"), updated_at=bindparam("b_updated_at"))
)  # fmt: skip


def _event_of(row: Any) -> tracking.TrackingEvent:
    return tracking.TrackingEvent(
        event_id=row.event_id, status=row.status, at=row.at, code=row.carrier_code,
        text=row.carrier_text, signed_by=row.signed_by,
    )  # fmt: skip


async def load_tracking(session: AsyncSession, shipment: Shipment) -> tracking.Tracking:
    """The shipment's tracking as stored: its timeline by event time, and the event that set the
    status (the last one applied; None while only created)."""
    # Plain rows of the columns the timeline needs: no ORM objects to build (this runs per callback).
    rows = (await session.execute(_TIMELINE, {"shipment_id": shipment.id})).all()
    applied = [row for row in rows if row.applied]
    current = _event_of(applied[-1]) if applied else None
    timeline = tuple(sorted((_event_of(row) for row in rows), key=tracking.TrackingEvent.sort_key))
    status = shipment.status if current is not None else "created"
    return tracking.Tracking(status=status, current=current, timeline=timeline)  # type: ignore[arg-type]


async def _locked_shipment(session: AsyncSession, waybill: str) -> Shipment | None:
    """The shipment with this waybill, loaded and write-locked by the transaction's first statement.

    PostgreSQL: ``SELECT … FOR UPDATE`` (a row lock, no new row version). SQLite has no row locks
    and a SELECT takes no write lock, so there a no-op ``UPDATE … RETURNING`` takes the database's
    write lock: callbacks for one parcel are applied one after the other, each reading what the
    previous one committed."""
    statement = _LOCK_POSTGRESQL if session.get_bind().dialect.name == "postgresql" else _LOCK_SQLITE
    return (await session.scalars(statement, {"b_waybill": waybill})).one_or_none()


async def receive(session: AsyncSession, ctx: Context, body: EmsCallback) -> Received:
    """Apply one EMS tracking event (module doc). Raises 404 for an unknown waybill, 422 for an
    unknown EMS code."""
    shipment = await _locked_shipment(session, body.waybill)
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
    shipment_id, before = shipment.id, current.status
    # Core statements, not the ORM's unit of work: one INSERT and at most one UPDATE, written now
    # (the event row first: a duplicate that raced past the lock fails here, before anything else).
    try:
        await session.execute(_INSERT_EVENT, {
            "shipment_id": shipment_id, "event_id": body.event_id, "at": body.at, "status": status,
            "carrier_code": body.code, "carrier_text": body.text, "signed_by": signed_by, "received_at": now,
            "applied": result.changed,
        })  # fmt: skip
    except IntegrityError:  # the same event_id raced us past the lock: it is a duplicate
        await session.rollback()
        return Received(shipment_id, before, duplicate=True, applied=False)
    if result.outcome == "conflict":
        log.warning("shipment %s: carrier reported %s after final %s (recorded, status kept)",
                    shipment_id, status, shipment.status)  # fmt: skip
    if result.changed:
        await session.execute(_SET_STATUS, {"b_id": shipment_id, "b_status": result.tracking.status,
                                            "b_status_at": body.at, "b_updated_at": now})  # fmt: skip
        await status_changed(session, shipment, status=status, at=body.at, code=body.code, text=body.text,
                             signed_by=signed_by)  # fmt: skip
    return Received(shipment_id, result.tracking.status, duplicate=False, applied=result.changed)
