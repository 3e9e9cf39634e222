"""Shipment events into the outbox, in the transaction of the change they report."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import express as contract
from kit.driver import Row, Transaction
from kit.events import EventData, envelope
from services.express.models import Shipment, outbox

# Canonical status → what the bus is told (signed_for and returned end a shipment).
UPDATED = frozenset({"picked_up", "in_transit", "out_for_delivery"})


def event_fields(shipment: Shipment | Row, *, status: str, at: datetime) -> dict[str, Any]:
    """The fields every shipment event carries (no name, phone or address: contract module doc),
    from the ORM object or a row read by column name (the callbacks' driver path)."""
    get = partial(getattr, shipment) if isinstance(shipment, Shipment) else shipment.__getitem__
    return {
        "shipment_id": get("id"), "kind": get("kind"), "case_no": get("case_no"), "pickup_id": get("pickup_id"),
        "department": get("department"), "carrier": get("carrier"), "waybill": get("waybill"),
        "status": status, "at": at,
    }  # fmt: skip


async def publish(session: AsyncSession, event: EventData) -> None:
    """Add ``event`` to the outbox; the relay publishes it once this transaction commits."""
    await outbox.add(session, envelope(event, subject=getattr(event, "shipment_id", None)))


async def status_changed(tx: Transaction, shipment: Row, *, status: str, at: datetime,
                         code: str, text: str, signed_by: str | None) -> None:  # fmt: skip
    """The event for a status the shipment just reached (``tracking.advance`` said ``changed``),
    into the outbox in the callback's driver transaction (``shipment``: the locked row)."""
    fields = event_fields(shipment, status=status, at=at)
    event: Any
    if status == "signed_for":
        event = contract.ShipmentDelivered(**fields, signed_by=signed_by)
    elif status in {"failed_attempt", "returned"}:
        event = contract.ShipmentFailed(**fields, reason=f"{code} {text}".strip()[:200], final=status == "returned")
    else:
        event = contract.ShipmentUpdated(**fields, carrier_code=code[:32], carrier_text=text[:200])
    await outbox.add_to(tx, envelope(event, subject=fields["shipment_id"]))
