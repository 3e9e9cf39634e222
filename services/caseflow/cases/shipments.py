"""EMS shipments of a case from express's events (docs/adr/0018-caseflow-delivery.md).

``express.shipment.created|updated|delivered|failed`` are validated against the contract models (a
payload that is not one is poison: straight to the dead letters). Each is applied in the consumer's
transaction with its inbox row, so a redelivery changes nothing; an event announcing a status the
case already knows (another event id) is a line on the timeline and nothing more.

- The shipment's row (``case_shipments``) is found by express's ``shipment_id``; the first event of
  a ``collect`` shipment binds it to its pickup (by ``pickup_id``; events without one bind to the case's
  pickup that has no shipment yet — one pickup is open at a time). On PostgreSQL the
  row is locked, so two replicas applying two events of one shipment take turns.
- A ``deliver`` shipment tells the applicant: dispatched with the waybill, out for delivery, signed
  for — each once (domain/shipments.py). Signed for completes the case as the system, on the day of
  the signature (Art. 44's delivery clock closes there).
- A failed attempt, a return or a refused order is a supervision anomaly (``delivery_failed``, or
  ``pickup_failed`` for a pickup), once per case and kind, as every anomaly.
- ``raise_stuck``: the supervision timer's part — a shipment still ``created`` ``express_stuck_hours``
  after it was ordered is an anomaly ``delivery_stuck`` (``pickup_stuck``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events.express import ShipmentCreated, ShipmentDelivered, ShipmentFailed, ShipmentUpdated
from kit.consumer import PoisonEvent
from kit.events import CloudEvent
from services.caseflow import notifications, steps
from services.caseflow.cases.common import Context, _insert, dumps, record_anomaly
from services.caseflow.cases.transitions import complete_by_event
from services.caseflow.domain import shipments as rules
from services.caseflow.models import Case, CaseShipment

log = logging.getLogger("yiwang.caseflow.shipments")

ShipmentEvent = ShipmentCreated | ShipmentUpdated | ShipmentDelivered | ShipmentFailed
MODELS: dict[str, type[ShipmentEvent]] = {
    model.event_type: model for model in (ShipmentCreated, ShipmentUpdated, ShipmentDelivered, ShipmentFailed)
}


def _locked(session: AsyncSession, query):
    return query.with_for_update() if session.bind.dialect.name == "postgresql" else query


async def _row(session: AsyncSession, ctx: Context, case: Case, data: ShipmentEvent) -> CaseShipment:
    """The shipment's row (locked on PostgreSQL): found by id, the case's open pickup for a
    collect shipment's first event, or a new one."""
    by_id = select(CaseShipment).where(CaseShipment.shipment_id == data.shipment_id)
    row = (await session.execute(_locked(session, by_id))).scalar_one_or_none()
    if row is not None:
        return row
    if data.kind == "collect":
        # The pickup it was made for: by its id when express names it, else the case's open one.
        mine = CaseShipment.pickup_id == data.pickup_id if data.pickup_id else CaseShipment.shipment_id.is_(None)
        open_pickup = (
            select(CaseShipment)
            .where(CaseShipment.case_id == case.id, CaseShipment.kind == "collect", mine)
            .order_by(CaseShipment.id)
            .limit(1)
        )
        row = (await session.execute(_locked(session, open_pickup))).scalar_one_or_none()
        if row is not None:
            row.shipment_id = data.shipment_id
            return row
    now = ctx.current_time()
    await session.execute(
        _insert(session)(CaseShipment)
        .values(case_id=case.id, kind=data.kind, shipment_id=data.shipment_id, carrier=data.carrier,
                status=rules.REQUESTED, final=False, updated_at=data.at, recorded_at=now, notified="")
        .on_conflict_do_nothing()
    )  # fmt: skip
    return (await session.execute(_locked(session, by_id).execution_options(populate_existing=True))).scalar_one()


async def on_shipment_event(session: AsyncSession, ctx: Context, event: CloudEvent) -> None:
    """Any ``express.shipment.*`` event: record it on the case, tell the applicant, complete or warn."""
    model = MODELS.get(event.type)
    if model is None:
        raise PoisonEvent(f"not a shipment event type: {event.type}")
    try:
        data = model.model_validate(event.data)
    except ValidationError as exc:
        raise PoisonEvent(f"not a {model.__name__}: {exc.error_count()} errors") from exc
    if data.at.tzinfo is None:  # compared with stored, zoned times: a local time of no known zone is unusable
        raise PoisonEvent(f"{model.__name__}.at has no time zone")
    case = (await session.execute(select(Case).where(Case.case_no == data.case_no))).scalar_one_or_none()
    if case is None:
        log.warning("shipment %s for an unknown case %s", data.shipment_id, data.case_no)
        return
    row = await _row(session, ctx, case, data)
    if data.waybill and not row.waybill:
        row.waybill = data.waybill
    row.carrier = data.carrier
    failed = isinstance(data, ShipmentFailed)
    moved = rules.moves(current=row.status, final=row.final, current_at=row.updated_at, status=data.status, at=data.at)
    notice = None
    if moved:
        row.status, row.updated_at = data.status, data.at
        row.final = data.status in rules.FINAL_STATUSES or (failed and data.final)
        row.reason = data.reason if failed else None
        notice = rules.notice(kind=row.kind, status=data.status, waybill=row.waybill,
                              notified=rules.notified_list(row.notified))  # fmt: skip
        if notice:
            row.notified = ",".join([*rules.notified_list(row.notified), notice])
    now = ctx.current_time()
    detail: dict[str, Any] = {"kind": row.kind, "waybill": row.waybill, "status": data.status,
                              "at": data.at.isoformat()}  # fmt: skip
    if not moved:
        detail["superseded"] = True  # older than what the case knows: recorded, nothing changes
    if isinstance(data, ShipmentUpdated) and data.carrier_text:
        detail["carrier_text"] = data.carrier_text
    if failed:
        detail.update(reason=data.reason, final=data.final)
    action = "pickup_shipment" if row.kind == "collect" else "shipment"
    step = steps.Step(
        steps.line(case, now, f"{action}_{data.status}", "system", case.state, case.state, dumps(detail)),
        message=notifications.message(case, f"shipment_{notice}", detail, now) if notice else None,
    )
    await steps.write(session, case, step)
    if moved and failed:
        kind = "pickup" if row.kind == "collect" else "delivery"
        await record_anomaly(session, case_id=case.id, case_no=case.case_no, department=case.department,
                             step=f"{kind}_failed", detail=f"{row.waybill or data.shipment_id}: {data.reason}",
                             at=now)  # fmt: skip
    if moved and row.kind == "deliver" and data.status == "signed_for":
        signed_on = data.at.astimezone(ZoneInfo(ctx.settings.timezone)).date()
        note = {"waybill": row.waybill, "signed_for": True, "signed_at": data.at.isoformat(),
                "signed_on": signed_on.isoformat()}  # fmt: skip
        await complete_by_event(session, ctx, case.case_no, action="complete", note=note)


async def raise_stuck(sessionmaker: async_sessionmaker[AsyncSession], ctx: Context) -> int:
    """Anomalies for shipments the carrier has not picked up ``express_stuck_hours`` after their
    order; each once per case and kind (the ledger's unique key: safe with several timers)."""
    now = ctx.current_time()
    hours = ctx.settings.express_stuck_hours
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(CaseShipment, Case.case_no, Case.department)
                .join(Case, Case.id == CaseShipment.case_id)
                .where(
                    CaseShipment.status == "created",
                    CaseShipment.final.is_(False),
                    CaseShipment.updated_at <= now - timedelta(hours=hours),
                )  # fmt: skip
            )
        ).all()
    raised = 0
    for row, case_no, department in rows:
        if not rules.is_stuck(status=row.status, final=row.final, ordered_at=row.updated_at, now=now, hours=hours):
            continue
        kind = "pickup" if row.kind == "collect" else "delivery"
        async with sessionmaker() as session, session.begin():
            raised += await record_anomaly(
                session, case_id=row.case_id, case_no=case_no, department=department, step=f"{kind}_stuck",
                detail=f"{row.waybill or row.shipment_id}: not picked up by the carrier since "
                       f"{_local(row.updated_at, ctx)} ({hours:g} h)",
                at=now,
            )  # fmt: skip
    return raised


def _local(at: datetime, ctx: Context) -> str:
    return at.astimezone(ZoneInfo(ctx.settings.timezone)).isoformat(timespec="minutes")
