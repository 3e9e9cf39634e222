"""Shipments requested by caseflow: one ``deliver`` per case, one ``collect`` per pickup.

Each is created in the consumer's transaction (kit.consumer: the inbox row makes a redelivered
event change nothing) together with its ``carrier_orders`` row, which the order worker
(``orders.py``) turns into a carrier order. The same request under a NEW event id (caseflow
re-published it, or two replicas raced) meets ``UNIQUE (case_no, kind, pickup_key)`` through an
``INSERT … ON CONFLICT DO NOTHING``, so it never becomes a second parcel and never fails the
consumer either.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.caseflow import CaseDeliveryRequested, CasePickupRequested
from services.express.context import Context
from services.express.models import CarrierOrder, Shipment

log = logging.getLogger("yiwang.express.shipments")

DELIVER = "deliver"
COLLECT = "collect"
# session.info key: this transaction queued a carrier order; the order worker is woken when it
# commits (orders.OrderWorker), so a new shipment is booked at once, not at the next poll.
ORDERS_QUEUED = "express_orders_queued"


def new_shipment_id() -> str:
    """An opaque id (never a waybill, which only the carrier assigns)."""
    return "shp_" + uuid.uuid4().hex[:24]


async def _insert_once(session: AsyncSession, ctx: Context, values: dict[str, Any]) -> str | None:
    """Insert the shipment unless its (case_no, kind, pickup_key) exists; the new id, or None."""
    now = ctx.current_time()
    row = {
        "id": new_shipment_id(), "carrier": ctx.settings.carrier, "status": "created", "status_at": now,
        "created_at": now, "updated_at": now, **values,
    }  # fmt: skip
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert_fn(Shipment)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["case_no", "kind", "pickup_key"])
        .returning(Shipment.id)
    )
    created = (await session.execute(statement)).scalar_one_or_none()
    if created is None:
        log.info("%s shipment for case %s exists already; request ignored", values["kind"], values["case_no"])
        return None
    await session.execute(insert(CarrierOrder).values(shipment_id=created, attempts=0, next_attempt_at=now))
    session.info[ORDERS_QUEUED] = True
    return created


async def create_for_delivery(session: AsyncSession, ctx: Context, event: CaseDeliveryRequested) -> str | None:
    """The case's result goes to the applicant: the department sends, the applicant receives."""
    return await _insert_once(session, ctx, {
        "kind": DELIVER, "case_no": event.case_no, "department": event.department, "applicant": event.applicant,
        "pickup_id": None, "pickup_key": "",
        "sender_name": event.department,
        "recipient_name": event.recipient, "recipient_phone": event.phone,
        "recipient_division_code": event.division_code, "recipient_address": event.address,
        "items": "[]", "due": event.due,
    })  # fmt: skip


async def create_for_pickup(session: AsyncSession, ctx: Context, event: CasePickupRequested) -> str | None:
    """The applicant's originals go to the department: the courier collects at the applicant's."""
    return await _insert_once(session, ctx, {
        "kind": COLLECT, "case_no": event.case_no, "department": event.department, "applicant": event.applicant,
        "pickup_id": event.pickup_id, "pickup_key": event.pickup_id,
        "sender_name": event.sender, "sender_phone": event.phone,
        "sender_division_code": event.division_code, "sender_address": event.address,
        "recipient_name": event.department,
        "items": json.dumps(event.items, ensure_ascii=False), "due": None,
    })  # fmt: skip
