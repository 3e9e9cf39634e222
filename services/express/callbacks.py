"""EMS tracking callbacks: one event in, the timeline and status updated, the change published.

The gateway checked the partner's signature and nonce and says who it was (X-Partner-Id); the
route refuses anyone but the carrier's partner id. Then, in ONE transaction on the driver
(kit.driver: a carrier's pushes are a hot path, issue 15 — Core statements built once, no
session or ORM objects):

- the shipment is found by waybill (404 otherwise) and locked by the first statement (``SELECT …
  FOR UPDATE`` on PostgreSQL, a no-op ``UPDATE`` taking the write lock on SQLite) so two callbacks
  for one parcel are applied one after the other;
- its tracking is rebuilt from the stored timeline and the event applied with
  ``domain.tracking.advance``: a seen ``event_id`` is a duplicate (nothing changes, 200
  ``{"duplicate": true}``); an event is placed by its event time; the status never goes back;
- the event row is stored (``applied`` = it moved the status), and a status change is published
  through the outbox: ``express.shipment.updated``, ``.delivered`` (signed_for) or ``.failed``
  (failed_attempt; returned is final).

``UNIQUE (shipment_id, event_id)`` backs the duplicate check should two deliveries of one event
ever get past the lock together: the event row is inserted ``ON CONFLICT DO NOTHING`` first, and
the one that inserted nothing answers as a duplicate and writes nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kit.driver import Driver, Query, Row, Transaction
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


_EVENTS = cast(Table, ShipmentEvent.__table__)
_SHIPMENTS = cast(Table, Shipment.__table__)
# What the answer and the published events need of the shipment (publishing.event_fields).
_SHIPMENT_COLUMNS = (
    Shipment.id, Shipment.status, Shipment.kind, Shipment.case_no, Shipment.pickup_id, Shipment.department,
    Shipment.carrier, Shipment.waybill,
)  # fmt: skip
_TIMELINE_COLUMNS = (
    ShipmentEvent.event_id, ShipmentEvent.status, ShipmentEvent.at, ShipmentEvent.carrier_code,
    ShipmentEvent.carrier_text, ShipmentEvent.signed_by, ShipmentEvent.applied,
)  # fmt: skip
# Every column of an event row but its id: all given (the driver applies no Python-side defaults).
_EVENT_VALUES = [column.name for column in _EVENTS.columns if column.name != "id"]
_STATUS_VALUES: dict[str, Any] = {"status": bindparam("b_status"), "status_at": bindparam("b_status_at"),
                                   "updated_at": bindparam("b_updated_at")}  # fmt: skip


def _insert_event(insert: Callable[[Table], Any]) -> Any:
    """The event row, ``ON CONFLICT (shipment_id, event_id) DO NOTHING RETURNING`` its ids: no
    row back means the event was stored already (``insert``: the dialect's own)."""
    return (
        insert(_EVENTS).values({name: bindparam(name) for name in _EVENT_VALUES})
        .on_conflict_do_nothing(index_elements=[_EVENTS.c.shipment_id, _EVENTS.c.event_id])
        .returning(_EVENTS.c.id, _EVENTS.c.shipment_id)
    )  # fmt: skip


# Built once, compiled once per dialect (kit.driver.Query): the lock, the timeline, the event row
# and the status change. The lock and the insert are each dialect's own, picked by dialect name.
_LOCK = {
    "postgresql": Query(select(*_SHIPMENT_COLUMNS).where(Shipment.waybill == bindparam("b_waybill")).with_for_update()),
    "sqlite": Query(
        update(_SHIPMENTS).where(_SHIPMENTS.c.waybill == bindparam("b_waybill"))
        .values(updated_at=_SHIPMENTS.c.updated_at).returning(*_SHIPMENT_COLUMNS)
    ),
}  # fmt: skip
_TIMELINE = Query(
    select(*_TIMELINE_COLUMNS).where(ShipmentEvent.shipment_id == bindparam("b_shipment_id")).order_by(ShipmentEvent.id)
)
_INSERT_EVENT = {"postgresql": Query(_insert_event(postgresql.insert)), "sqlite": Query(_insert_event(sqlite.insert))}
_SET_STATUS = Query(update(_SHIPMENTS).where(_SHIPMENTS.c.id == bindparam("b_id")).values(_STATUS_VALUES))
# PostgreSQL: the event row and the status it moves in one statement, a round trip fewer (each one
# costs this process about as much CPU as the rest of the callback's own work); the status is set
# only when the row was inserted.
_STORED = _insert_event(postgresql.insert).cte("stored")
_INSERT_EVENT_SET_STATUS_POSTGRESQL = Query(
    select(_STORED.c.id).add_cte(
        update(_SHIPMENTS).where(_SHIPMENTS.c.id.in_(select(_STORED.c.shipment_id))).values(_STATUS_VALUES).cte("moved")
    )
)


def _event_of(row: Row) -> tracking.TrackingEvent:
    return tracking.TrackingEvent(
        event_id=row["event_id"], status=row["status"], at=row["at"], code=row["carrier_code"],
        text=row["carrier_text"], signed_by=row["signed_by"],
    )  # fmt: skip


async def load_tracking(tx: Transaction, shipment: Row) -> tracking.Tracking:
    """The shipment's tracking as stored: its timeline by event time, and the event that set the
    status (the last one applied; None while only created)."""
    rows = await tx.fetch(_TIMELINE, {"b_shipment_id": shipment["id"]})
    applied = [row for row in rows if row["applied"]]
    current = _event_of(applied[-1]) if applied else None
    timeline = tuple(sorted((_event_of(row) for row in rows), key=tracking.TrackingEvent.sort_key))
    status = shipment["status"] if current is not None else "created"
    return tracking.Tracking(status=status, current=current, timeline=timeline)  # type: ignore[arg-type]


async def _locked_shipment(db: Driver, tx: Transaction, waybill: str) -> Row | None:
    """The shipment with this waybill, read and write-locked by the transaction's first statement.

    PostgreSQL: ``SELECT … FOR UPDATE`` (a row lock, no new row version). SQLite has no row locks
    and a SELECT takes no write lock, so there a no-op ``UPDATE … RETURNING`` takes the database's
    write lock: callbacks for one parcel are applied one after the other, each reading what the
    previous one committed."""
    return await tx.fetchrow(_LOCK[db.dialect.name], {"b_waybill": waybill})


async def _store_event(db: Driver, tx: Transaction, row: dict[str, Any], status: dict[str, Any] | None) -> bool:
    """Stores the event ``row`` and, with ``status`` (``b_status``, ``b_status_at``,
    ``b_updated_at``), moves the shipment's status — both only if the event is new; whether it was."""
    if status is not None and db.is_postgresql:
        return await tx.fetchrow(_INSERT_EVENT_SET_STATUS_POSTGRESQL, {**row, **status}) is not None
    if await tx.fetchrow(_INSERT_EVENT[db.dialect.name], row) is None:
        return False
    if status is not None:
        await tx.execute(_SET_STATUS, {"b_id": row["shipment_id"], **status})
    return True


async def receive(db: Driver, ctx: Context, body: EmsCallback) -> Received:
    """Apply one EMS tracking event (module doc). Raises 404 for an unknown waybill, 422 for an
    unknown EMS code."""
    async with db.transaction() as tx:
        shipment = await _locked_shipment(db, tx, body.waybill)
        if shipment is None:
            raise Problem(404, "not-found", "Not found", "no shipment with this waybill")
        try:
            status = tracking.ems_status(body.code)
        except tracking.UnknownCarrierCode:
            raise field_problem("body.code", "ems_code", "not an EMS tracking code express knows") from None
        signed_by = mask_name(body.signed_by) if body.signed_by else None  # a courier's note of who signed
        event = tracking.TrackingEvent(event_id=body.event_id, status=status, at=body.at, code=body.code,
                                       text=body.text, signed_by=signed_by)  # fmt: skip
        current = await load_tracking(tx, shipment)
        result = tracking.advance(current, event)
        shipment_id, before = shipment["id"], current.status
        if result.outcome == "duplicate":
            return Received(shipment_id, shipment["status"], duplicate=True, applied=False)
        now = ctx.current_time()
        row = {
            "shipment_id": shipment_id, "event_id": body.event_id, "at": body.at, "status": status,
            "carrier_code": body.code, "carrier_text": body.text, "signed_by": signed_by, "received_at": now,
            "applied": result.changed,
        }  # fmt: skip
        moved = {"b_status": result.tracking.status, "b_status_at": body.at, "b_updated_at": now}
        if not await _store_event(db, tx, row, moved if result.changed else None):
            # A duplicate that got past the lock: nothing stored, nothing moved, answered as one.
            return Received(shipment_id, before, duplicate=True, applied=False)
        if result.outcome == "conflict":
            log.warning("shipment %s: carrier reported %s after final %s (recorded, status kept)",
                        shipment_id, status, shipment["status"])  # fmt: skip
        if result.changed:
            await status_changed(tx, shipment, status=status, at=body.at, code=body.code, text=body.text,
                                 signed_by=signed_by)  # fmt: skip
    return Received(shipment_id, result.tracking.status, duplicate=False, applied=result.changed)
