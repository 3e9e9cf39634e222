"""Shipment events into the outbox, in the transaction of the change they report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import express as contract
from kit.events import EventData, envelope
from services.express.models import Shipment, outbox

# Canonical status → what the bus is told (signed_for and returned end a shipment).
UPDATED = frozenset({"picked_up", "in_transit", "out_for_delivery"})


def event_fields(shipment: Shipment, *, status: str, at: datetime) -> dict[str, Any]:
    """The fields every shipment event carries (no name, phone or address: contract module doc)."""
    return {
        "shipment_id": shipment.id, "kind": shipment.kind, "case_no": shipment.case_no,
        "pickup_id": shipment.pickup_id, "department": shipment.department, "carrier": shipment.carrier, "waybill": shipment.waybill,
        "status": status, "at": at,
    }  # fmt: skip


async def publish(session: AsyncSession, event: EventData) -> None:
    """Add ``event`` to the outbox; the relay publishes it once this transaction commits."""
    await outbox.add(session, envelope(event, subject=getattr(event, "shipment_id", None)))


async def status_changed(session: AsyncSession, shipment: Shipment, *, status: str, at: datetime,
                         code: str, text: str, signed_by: str | None) -> None:  # fmt: skip
    """The event for a status the shipment just reached (``tracking.advance`` said ``changed``)."""
    fields = event_fields(shipment, status=status, at=at)
    event: Any
    if status == "signed_for":
        event = contract.ShipmentDelivered(**fields, signed_by=signed_by)
    elif status in {"failed_attempt", "returned"}:
        event = contract.ShipmentFailed(**fields, reason=f"{code} {text}".strip()[:200], final=status == "returned")
    else:
        event = contract.ShipmentUpdated(**fields, carrier_code=code[:32], carrier_text=text[:200])
    await publish(session, event)
