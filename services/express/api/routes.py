"""Express's HTTP API: translation only; the rules live in the modules it calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from starlette.responses import Response

from kit.deps import Caller, Db, DbSession, from_app_state
from kit.pagination import Pagination
from kit.responses import json_answer
from services.express import callbacks, reading
from services.express.context import Context
from services.express.domain import access
from services.express.schemas import CallbackOut, EmsCallback, Kind, ShipmentOut, ShipmentPage, Status

router = APIRouter()

ShipmentRef = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_ ]{1,40}$",
                                  description="shipment id or waybill")]  # fmt: skip
express_context = from_app_state("express", Context)


@router.get("/shipments", tags=["shipments"], response_model=ShipmentPage)
async def list_shipments(
    session: DbSession,
    caller: Caller,
    page: Pagination,
    case_no: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9-]{1,32}$")] = None,
    status: Status | None = None,
    kind: Kind | None = None,
) -> dict[str, Any]:
    """Applicant: own shipments; officer: the department's; supervisor: all (masked)."""
    return await reading.list_shipments(session, caller, page, case_no=case_no, status=status, kind=kind)


@router.get("/shipments/{ref}", tags=["shipments"], response_model=ShipmentOut)
async def read_shipment(session: DbSession, caller: Caller, ref: ShipmentRef) -> dict[str, Any]:
    """One shipment (by id or waybill) with its tracking timeline; others' shipments are 404."""
    return await reading.read_one(session, caller, ref)


async def carrier_only(request: Request, x_partner_id: Annotated[str | None, Header()] = None) -> Context:
    """The gateway vouches for the partner (X-Partner-Id) after checking its signature; refused
    (401) before the body is even read unless it is the carrier's partner id. (``async``: no I/O,
    so no hop to a worker thread per callback.)"""
    ctx = express_context(request)
    relation = access.carrier_relation(x_partner_id, carrier_partner=ctx.settings.callback_partner)
    access.check("tracking.callback", relation, ())
    return ctx


@router.post("/callbacks/ems", tags=["callbacks"], response_model=CallbackOut)
async def ems_callback(ctx: Annotated[Context, Depends(carrier_only)], db: Db, body: EmsCallback) -> Response:
    """A tracking event from EMS, signed and checked by the gateway (X-Partner-Id: ems)."""
    received = await callbacks.receive(db, ctx, body)
    # Plain JSON built to CallbackOut (the OpenAPI still documents it): not validated once more.
    return json_answer({"shipment_id": received.shipment_id, "status": received.status,
                        "duplicate": received.duplicate, "applied": received.applied})  # fmt: skip
