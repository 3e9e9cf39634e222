"""Hall's HTTP API: translation only; the rules live in halls.py, bookings.py and tickets.py."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sqlalchemy import select

from kit.auth import Principal, current_principal
from kit.deps import Caller, DbSession
from kit.errors import Problem
from kit.pagination import Pagination
from services.hall import bookings, halls, tickets
from services.hall.context import Context, hall_context
from services.hall.models import Hall
from services.hall.schemas import (
    BookingIn,
    BookingOut,
    BookingPage,
    BookingStatus,
    CallIn,
    CheckInIn,
    DaySlots,
    DayView,
    HallCode,
    HallIn,
    HallOut,
    MoveIn,
    QueueBoard,
    SandboxSmsOut,
    ServedIn,
    TicketOut,
    WalkInIn,
    WindowCode,
    WindowIn,
)  # fmt: skip

router = APIRouter()
sandbox_router = APIRouter(prefix="/sandbox", tags=["sandbox"])

HallPath = Annotated[str, Path(pattern=r"^[A-Z0-9-]{1,40}$", description="e.g. HALL-371402")]
WindowPath = Annotated[str, Path(pattern=r"^[A-Z0-9]{1,8}$", description="e.g. A1")]
BookingId = Annotated[str, Path(pattern=r"^bk_[0-9a-f]{24}$")]
TicketId = Annotated[str, Path(pattern=r"^tk_[0-9a-f]{24}$")]
Day = Annotated[date, Query(ge=date(2004, 1, 1), le=date(2100, 12, 31), description="the hall's local day, YYYY-MM-DD")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", pattern=r"^[\x21-\x7e]{1,64}$")]
Ctx = Annotated[Context, Depends(hall_context)]
# The platform calendar (caseflow) cannot be read: slots and bookings wait for it.
CALENDAR_503: dict[int | str, dict[str, Any]] = {503: {"description": "The working-day calendar is unavailable"}}


async def optional_caller(request: Request) -> Principal | None:
    """The verified caller when a token came, None when none did (a bad token is still a 401)."""
    if not request.headers.get("authorization"):
        return None
    return await current_principal(request)


MaybeCaller = Annotated[Principal | None, Depends(optional_caller)]


def client_address(request: Request) -> str:
    """The gateway's X-Forwarded-For (it sets exactly the client it saw), else the peer."""
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
    return forwarded[:64] or (request.client.host if request.client else "unknown")


# ---- halls and windows --------------------------------------------------------------------------
@router.get("/halls", tags=["halls"], response_model=list[HallOut])
async def list_halls(session: DbSession) -> list[dict[str, Any]]:
    """Every open hall with its windows (public)."""
    rows = (await session.execute(select(Hall).where(Hall.active.is_(True)).order_by(Hall.code))).scalars()
    return [await halls.hall_out(session, hall) for hall in rows]


@router.get("/halls/{code}", tags=["halls"], response_model=HallOut)
async def read_hall(session: DbSession, code: HallPath) -> dict[str, Any]:
    """One hall, its opening hours and windows (public)."""
    return await halls.hall_out(session, await halls.get_hall(session, code))


@router.put("/halls/{code}", tags=["halls"], response_model=HallOut)
async def put_hall(session: DbSession, ctx: Ctx, caller: Caller, code: HallPath, body: HallIn,
                   response: Response) -> dict[str, Any]:  # fmt: skip
    """Create (201) or replace (200) a hall: the platform's admin."""
    hall, created = await halls.put_hall(session, ctx, caller, code, body)
    response.status_code = 201 if created else 200
    return await halls.hall_out(session, hall, all_windows=True)


@router.put("/halls/{code}/windows/{window}", tags=["halls"], response_model=HallOut)
async def put_window(session: DbSession, caller: Caller, code: HallPath, window: WindowPath, body: WindowIn,
                     response: Response) -> dict[str, Any]:  # fmt: skip
    """Create (201) or replace (200) a window: comprehensive (一窗受理) or serving listed matters."""
    created = await halls.put_window(session, caller, code, window, body)
    response.status_code = 201 if created else 200
    return await halls.hall_out(session, await halls.get_hall(session, code, active_only=False), all_windows=True)


@router.get("/halls/{code}/slots", tags=["halls"], response_model=DaySlots, responses=CALENDAR_503)
async def day_slots(session: DbSession, ctx: Ctx, code: HallPath, date: Day) -> dict[str, Any]:
    """A day's bookable slots and what is free (public; closed on days the calendar says are off)."""
    return await halls.day_slots(session, ctx, code, date)


# ---- bookings -----------------------------------------------------------------------------------
@router.post("/bookings", tags=["bookings"], response_model=BookingOut, status_code=201, responses=CALENDAR_503)
async def book(session: DbSession, ctx: Ctx, caller: Caller, body: BookingIn, response: Response,
               idempotency_key: IdempotencyKey = None) -> dict[str, Any]:  # fmt: skip
    """Book a slot (for oneself, or for ``visitor_id_number``); the SMS carries time and code.
    The same ``Idempotency-Key`` again returns the same booking (200)."""
    booking, created = await bookings.create(session, ctx, caller, body, idempotency_key)
    if not created:
        response.status_code = 200
    return (await bookings.outs(session, [booking]))[0]


@router.get("/bookings", tags=["bookings"], response_model=BookingPage)
async def my_bookings(session: DbSession, caller: Caller, page: Pagination,
                      status: BookingStatus | None = None) -> dict[str, Any]:  # fmt: skip
    """Bookings made by the caller or for them, newest slot first (no-shows included)."""
    return await bookings.mine(session, caller, page, status)


@router.get("/bookings/{booking_id}", tags=["bookings"], response_model=BookingOut)
async def read_booking(session: DbSession, caller: Caller, booking_id: BookingId) -> dict[str, Any]:
    return (await bookings.outs(session, [await bookings.read(session, caller, booking_id)]))[0]


@router.post("/bookings/{booking_id}/move", tags=["bookings"], response_model=BookingOut, responses=CALENDAR_503)
async def move_booking(session: DbSession, ctx: Ctx, caller: Caller, booking_id: BookingId,
                       body: MoveIn) -> dict[str, Any]:  # fmt: skip
    """To another slot of the same hall; a new check-in code goes by SMS."""
    booking = await bookings.move(session, ctx, caller, booking_id, body.starts_at)
    return (await bookings.outs(session, [booking]))[0]


@router.post("/bookings/{booking_id}/cancel", tags=["bookings"], response_model=BookingOut)
async def cancel_booking(session: DbSession, ctx: Ctx, caller: Caller, booking_id: BookingId) -> dict[str, Any]:
    return (await bookings.outs(session, [await bookings.cancel(session, ctx, caller, booking_id)]))[0]


@router.get("/halls/{code}/bookings", tags=["bookings"], response_model=DayView)
async def day_view(session: DbSession, ctx: Ctx, caller: Caller, code: HallPath, date: Day,
                   window: Annotated[WindowCode | None, Query()] = None) -> dict[str, Any]:  # fmt: skip
    """Officers (counter, supervisor, admin): the day's bookings per window, ID numbers masked."""
    return await bookings.day_view(session, ctx, caller, code, date, window)


# ---- the queue ----------------------------------------------------------------------------------
@router.post("/halls/{code}/check-ins", tags=["queue"], response_model=TicketOut, status_code=201)
async def check_in(request: Request, session: DbSession, ctx: Ctx, caller: MaybeCaller, code: HallPath,
                   body: CheckInIn) -> dict[str, Any]:  # fmt: skip
    """The hall's machine: the SMS code → a queue ticket (public; wrong codes are limited)."""
    ticket, ahead = await tickets.check_in(session, request.app.state.sessionmaker, ctx, caller, code, body.code,
                                           client_address(request))  # fmt: skip
    return tickets.ticket_out(ticket, ahead)


@router.post("/halls/{code}/tickets", tags=["queue"], response_model=TicketOut, status_code=201, responses=CALENDAR_503)
async def walk_in(session: DbSession, ctx: Ctx, caller: Caller, code: HallPath, body: WalkInIn) -> dict[str, Any]:
    """A walk-in ticket for a matter: a counter officer, or the hall's machine (kiosk token)."""
    ticket, ahead = await tickets.walk_in(session, ctx, caller, code, body.matter_code)
    return tickets.ticket_out(ticket, ahead)


@router.post("/halls/{code}/calls", tags=["queue"], response_model=TicketOut)
async def call_next(session: DbSession, ctx: Ctx, caller: Caller, code: HallPath, body: CallIn) -> dict[str, Any]:
    """A counter officer at ``window`` calls the next ticket it serves (booked and due first)."""
    return tickets.ticket_out(await tickets.call_next(session, ctx, caller, code, body.window))


@router.post("/tickets/{ticket_id}/served", tags=["queue"], response_model=TicketOut)
async def served(session: DbSession, ctx: Ctx, caller: Caller, ticket_id: TicketId,
                 body: ServedIn | None = None) -> dict[str, Any]:  # fmt: skip
    case_no = body.case_no if body else None
    return tickets.ticket_out(await tickets.finish(session, ctx, caller, ticket_id, "served", case_no))


@router.post("/tickets/{ticket_id}/missed", tags=["queue"], response_model=TicketOut)
async def missed(session: DbSession, ctx: Ctx, caller: Caller, ticket_id: TicketId) -> dict[str, Any]:
    return tickets.ticket_out(await tickets.finish(session, ctx, caller, ticket_id, "missed"))


@router.get("/halls/{code}/queue", tags=["queue"], response_model=QueueBoard)
async def queue_board(session: DbSession, ctx: Ctx, code: HallPath) -> dict[str, Any]:
    """The public board: waiting count and the number each window called (no personal data)."""
    return await tickets.board(session, ctx, code)


# ---- sandbox (HALL_SANDBOX=true only) -----------------------------------------------------------
@sandbox_router.get("/sms", response_model=list[SandboxSmsOut])
async def sandbox_sms(ctx: Ctx, mobile: Annotated[str, Query(pattern=r"^1[3-9][0-9]{9}$")]) -> list[dict[str, str]]:
    """What the sandbox SMS gateway 'sent' to ``mobile``, newest first (never in production)."""
    sent_to = getattr(ctx.sms, "sent_to", None)
    if sent_to is None:
        raise Problem(404, "not-found", "Not found", "the SMS gateway is not the sandbox")
    return sent_to(mobile)


__all__ = ["HallCode", "router", "sandbox_router"]
