"""Reading shipments: the caller's list and one shipment with its timeline.

Every answer passes domain/access.py: the applicant's side and the case's department see names,
phones and addresses; a supervisor sees every shipment with the applicant's party masked; anybody
else gets 404 for a shipment, as if it did not exist.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import Problem
from kit.pagination import PageQuery
from services.express.domain import access, s10
from services.express.domain.masking import mask_party
from services.express.models import Shipment, ShipmentEvent


def _party(name: str | None, phone: str | None, division: str | None, address: str | None,
           *, masked: bool) -> dict[str, Any]:  # fmt: skip
    if masked:
        name, phone, address = mask_party(name, phone, address)
    return {"name": name, "phone": phone, "division_code": division, "address": address}


def shipment_view(shipment: Shipment, *, masked: bool, timeline: list[ShipmentEvent] | None = None) -> dict[str, Any]:
    """The shipment as a reader sees it; ``masked`` hides the applicant's party (the department's
    side is an office, nothing personal)."""
    applicant_sends = shipment.kind == "collect"
    view = {
        "id": shipment.id, "kind": shipment.kind, "case_no": shipment.case_no, "department": shipment.department,
        "pickup_id": shipment.pickup_id, "carrier": shipment.carrier, "waybill": shipment.waybill,
        "status": shipment.status, "status_at": shipment.status_at, "failure_reason": shipment.failure_reason,
        "due": shipment.due, "expected_delivery": shipment.expected_delivery,
        "sender": _party(shipment.sender_name, shipment.sender_phone, shipment.sender_division_code,
                         shipment.sender_address, masked=masked and applicant_sends),
        "recipient": _party(shipment.recipient_name, shipment.recipient_phone, shipment.recipient_division_code,
                            shipment.recipient_address, masked=masked and not applicant_sends),
        "items": json.loads(shipment.items or "[]"), "masked": masked,
        "created_at": shipment.created_at, "updated_at": shipment.updated_at,
    }  # fmt: skip
    if timeline is not None:
        view["timeline"] = [
            {"event_id": e.event_id, "at": e.at, "status": e.status, "carrier_code": e.carrier_code,
             "carrier_text": e.carrier_text, "signed_by": e.signed_by if not masked else None, "applied": e.applied}
            for e in sorted(timeline, key=lambda e: (e.at, e.event_id))
        ]  # fmt: skip
    return view


def _relation(caller: Principal, shipment: Shipment) -> str:
    return access.shipment_relation(caller, applicant=shipment.applicant, department=shipment.department)


async def list_shipments(session: AsyncSession, caller: Principal, page: PageQuery, *, case_no: str | None,
                         status: str | None, kind: str | None) -> dict[str, Any]:  # fmt: skip
    """The caller's shipments, newest first: its own (applicant, agent), its department's
    (officer), or all (supervisor, masked outside its own department)."""
    scope, key = access.list_scope(caller)
    if scope == "none":
        raise Problem(403, "forbidden", "Not allowed", "no shipments to list for this caller", rule="relation")
    conditions = []
    if scope == "applicant":
        conditions.append(Shipment.applicant == key)
    elif scope == "department":
        conditions.append(Shipment.department == key)
    if case_no:
        conditions.append(Shipment.case_no == case_no)
    if status:
        conditions.append(Shipment.status == status)
    if kind:
        conditions.append(Shipment.kind == kind)
    total = (await session.execute(select(func.count()).select_from(Shipment).where(*conditions))).scalar_one()
    rows = (await session.execute(
        select(Shipment).where(*conditions).order_by(Shipment.created_at.desc(), Shipment.id.desc())
        .offset(page.offset).limit(page.limit)
    )).scalars()  # fmt: skip
    items = []
    for shipment in rows:
        relation = _relation(caller, shipment)
        masked = not access.permitted("shipment.read_unmasked", relation, caller.roles)
        items.append(shipment_view(shipment, masked=masked))
    return page.answer(total, items)


async def read_one(session: AsyncSession, caller: Principal, ref: str) -> dict[str, Any]:
    """One shipment by id or waybill, with its timeline (404 for who may not read it)."""
    waybill = s10.normalise(ref)
    query = select(Shipment)
    if s10.is_valid(waybill):
        query = query.where(or_(Shipment.waybill == waybill, Shipment.id == ref))
    else:
        query = query.where(Shipment.id == ref)
    shipment = (await session.execute(query)).scalars().first()
    if shipment is None:
        raise Problem(404, "not-found", "Not found", "no such shipment")
    relation = _relation(caller, shipment)
    access.check("shipment.read", relation, caller.roles)
    masked = not access.permitted("shipment.read_unmasked", relation, caller.roles)
    events = list(
        (await session.execute(select(ShipmentEvent).where(ShipmentEvent.shipment_id == shipment.id))).scalars()
    )
    return shipment_view(shipment, masked=masked, timeline=events)
