"""Events express publishes (stream EXPRESS, subjects express.>).

A shipment carries a case's result to the applicant (``deliver``) or the applicant's originals to
the department (``collect``, a pickup). Its status is canonical — created → picked_up → in_transit →
out_for_delivery → signed_for, or failed_attempt / returned — with the carrier's own code and text
beside it, the way multi-carrier tracking APIs normalise carriers. The waybill is a UPU S10 number.
No address, name or phone travels on the bus: caseflow, the only consumer, knows its applicant.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from kit.events import EventData

ShipmentStatus = Literal[
    "created", "picked_up", "in_transit", "out_for_delivery", "signed_for", "failed_attempt", "returned"
]


class _ShipmentFields(BaseModel):
    """Fields every shipment event carries (a mixin, so it is no event type of its own)."""

    model_config = ConfigDict(extra="forbid")

    shipment_id: str = Field(max_length=64)
    kind: Literal["deliver", "collect"] = Field(description="deliver a result, or collect originals (pickup)")
    case_no: str = Field(max_length=32)
    pickup_id: str | None = Field(default=None, max_length=64, description="for collect: caseflow's pickup request")
    department: str = Field(description="the case's department (the sender of a result, the receiver of originals)")
    carrier: str = Field(description="carrier code, e.g. ems")
    waybill: str | None = Field(default=None, description="UPU S10 number, once the carrier assigned one")
    status: ShipmentStatus
    at: datetime = Field(description="when the status was reached (the carrier's event time)")


class ShipmentCreated(_ShipmentFields, EventData):
    event_type: ClassVar[str] = "yiwang.express.shipment.created.v1"
    nats_subject: ClassVar[str] = "express.shipment.created"
    expected_delivery: datetime | None = None


class ShipmentUpdated(_ShipmentFields, EventData):
    """A status change short of the end: picked up, in transit, out for delivery."""

    event_type: ClassVar[str] = "yiwang.express.shipment.updated.v1"
    nats_subject: ClassVar[str] = "express.shipment.updated"
    carrier_code: str | None = Field(default=None, max_length=32, description="the carrier's own status code")
    carrier_text: str | None = Field(default=None, max_length=200, description="the carrier's own words")


class ShipmentDelivered(_ShipmentFields, EventData):
    """Signed for: for ``deliver``, the Art. 44 delivery clock closes here."""

    event_type: ClassVar[str] = "yiwang.express.shipment.delivered.v1"
    nats_subject: ClassVar[str] = "express.shipment.delivered"
    signed_by: str | None = Field(default=None, max_length=50, description="as the courier recorded it, masked")


class ShipmentFailed(_ShipmentFields, EventData):
    """A failed delivery attempt, a return, or an order the carrier refused."""

    event_type: ClassVar[str] = "yiwang.express.shipment.failed.v1"
    nats_subject: ClassVar[str] = "express.shipment.failed"
    reason: str = Field(max_length=200)
    final: bool = Field(description="returned or refused: nothing more will happen to this shipment")
