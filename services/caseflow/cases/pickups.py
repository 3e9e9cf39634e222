"""上门收件: the applicant asks the carrier to collect the originals of the case's materials
(docs/adr/0018-caseflow-delivery.md), and the case's shipments as its readers see them.

A pickup may be asked for by the applicant (or its agent within the mandate: ``case.request_pickup``
in domain/access.py) while the case is before its decision and the department has not recorded the
originals as received (domain/states.py ``request_pickup``), for materials the matter asks for in
original form, one open pickup at a time (express's events carry no pickup id: the open one is the
one a collect shipment belongs to). ``Idempotency-Key`` is required: a retry returns the same pickup.
The request is a ``case_shipments`` row (kind ``collect``, status ``requested``), a timeline line and
``caseflow.case.pickup_requested`` through the outbox, in one transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import caseflow as contract
from kit.auth import Principal
from kit.errors import Problem, field_problem
from kit.events import envelope
from kit.masking import mask_phone
from services.caseflow import steps
from services.caseflow.cases.access import authorize
from services.caseflow.cases.common import Context, _insert, base_fields, dumps, matter_of_case
from services.caseflow.cases.transitions import _refusal, case_facts, refuse_if_mirrored
from services.caseflow.domain import access, states
from services.caseflow.domain.shipments import FINAL_STATUSES, REQUESTED, original_materials
from services.caseflow.models import Case, CaseShipment
from services.caseflow.schemas import PickupIn


async def request_pickup(session: AsyncSession, ctx: Context, principal: Principal, case_no: str, body: PickupIn,
                         idempotency_key: str) -> tuple[Case, CaseShipment, bool]:  # fmt: skip
    """Ask for a pickup of the originals; (case, pickup, created). A retry with the same key returns
    the pickup it made (created False) whatever changed since."""
    case = (await authorize(session, principal, "case.request_pickup", case_no)).case
    refuse_if_mirrored(case)  # the department has the case (and its papers) in its own system
    if session.bind.dialect.name == "postgresql":  # one request at a time per case (one open pickup)
        await session.execute(select(Case.id).where(Case.id == case.id).with_for_update())
    existing = await _by_key(session, case.id, idempotency_key)
    if existing is not None:
        return case, existing, False
    matter = await matter_of_case(session, case)
    try:
        states.transition(case.state, "request_pickup", states.APPLICANT, **case_facts(case, matter, []))
    except states.TransitionError as exc:
        raise _refusal(exc, case) from exc
    originals = original_materials(matter)
    unknown = [item for item in body.items if item not in originals]
    if unknown:
        raise field_problem("items", "original_material",
                            f"not materials this matter asks for in original form: {', '.join(unknown)} "
                            f"(it asks for: {', '.join(originals)})")  # fmt: skip
    if len(set(body.items)) != len(body.items):
        raise field_problem("items", "unique", "each original once")
    if await _open_pickup(session, case.id) is not None:
        raise Problem(409, "pickup-open", "A pickup is open",
                      "a pickup of this case's originals is under way; wait for it to end", state=case.state)  # fmt: skip
    now = ctx.current_time()
    pickup_id = str(uuid.uuid4())
    inserted = await session.execute(
        _insert(session)(CaseShipment)
        .values(case_id=case.id, kind="collect", pickup_id=pickup_id, status=REQUESTED, final=False, updated_at=now,
                recorded_at=now, notified="", idempotency_key=idempotency_key, requested_by=principal.actor or
                principal.subject, sender=body.sender, phone=body.phone, division_code=body.division_code,
                address=body.address, items=dumps(body.items))
        .on_conflict_do_nothing()
    )  # fmt: skip
    if not inserted.rowcount:  # the same key, concurrently: the other request made it
        again = await _by_key(session, case.id, idempotency_key)
        if again is None:
            raise Problem(409, "pickup-open", "A pickup is open", "a pickup of this case's originals is under way")
        return case, again, False
    event = contract.CasePickupRequested(
        **base_fields(case, "applicant", now), applicant=case.applicant, pickup_id=pickup_id, sender=body.sender,
        phone=body.phone, division_code=body.division_code, address=body.address, items=list(body.items),
    )  # fmt: skip
    detail = {"pickup_id": pickup_id, "items": list(body.items), "division_code": body.division_code}
    step = steps.Step(steps.line(case, now, "request_pickup", "applicant", case.state, case.state, dumps(detail)),
                      events=[envelope(event, subject=case.case_no)])  # fmt: skip
    await steps.write(session, case, step)
    row = await _by_key(session, case.id, idempotency_key)
    assert row is not None  # inserted above, in this transaction
    return case, row, True


async def _by_key(session: AsyncSession, case_id: int, key: str) -> CaseShipment | None:
    query = select(CaseShipment).where(CaseShipment.case_id == case_id, CaseShipment.idempotency_key == key)
    return (await session.execute(query)).scalar_one_or_none()


async def _open_pickup(session: AsyncSession, case_id: int) -> CaseShipment | None:
    """The case's pickup still under way: not signed for, returned or failed for good."""
    query = select(CaseShipment).where(
        CaseShipment.case_id == case_id, CaseShipment.kind == "collect", CaseShipment.final.is_(False),
        CaseShipment.status.not_in(tuple(FINAL_STATUSES)),
    )  # fmt: skip
    return (await session.execute(query.limit(1))).scalar_one_or_none()


# ---- reading ------------------------------------------------------------------------------------
async def shipments_of(session: AsyncSession, case_id: int) -> list[CaseShipment]:
    """The case's shipments, oldest first."""
    query = select(CaseShipment).where(CaseShipment.case_id == case_id).order_by(CaseShipment.id)
    return list((await session.execute(query)).scalars())


def shipment_out(row: CaseShipment) -> dict[str, Any]:
    """A shipment as the case detail shows it (schemas.ShipmentOut)."""
    return {
        "kind": row.kind,
        "shipment_id": row.shipment_id,
        "carrier": row.carrier,
        "waybill": row.waybill,
        "status": row.status,
        "final": row.final,
        "reason": row.reason,
        "updated_at": row.updated_at.isoformat(),
    }


def pickup_out(row: CaseShipment, relation: str) -> dict[str, Any]:
    """A pickup with its shipment's progress: the address in full for the applicant and the
    department that collects it, shortened for oversight; the phone always masked."""
    full = relation in {access.APPLICANT, access.AGENT, access.DEPARTMENT_OFFICER}
    address = row.address or ""
    return {
        **shipment_out(row),
        "pickup_id": row.pickup_id,
        "sender": row.sender or "",
        "phone": mask_phone(row.phone) if row.phone else "",
        "division_code": row.division_code or "",
        "address": address if full else address[:6] + "…",
        "items": json.loads(row.items or "[]"),
        "requested_at": row.recorded_at.isoformat(),
    }


def public_shipment_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """The public progress page (from a row read by column name): the waybill and its status only."""
    return {"kind": row["kind"], "waybill": row["waybill"], "status": row["status"],
            "updated_at": row["updated_at"].isoformat()}  # fmt: skip
