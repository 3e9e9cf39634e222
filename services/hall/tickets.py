"""The hall's queue (叫号): tickets from a check-in by code or a walk-in, called by window.

Numbers: one ``ticket_sequences`` row per hall and day, incremented in place (the row lock on
PostgreSQL, the single writer on SQLite), so two tickets never share a number. Calling: the next
ticket a window serves (domain/queue.py's order, written here as SQL), claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL and by a conditional ``UPDATE … WHERE status = 'waiting'``
on both, so two officers calling at once never get the same ticket.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events import hall as contract
from kit.auth import Principal
from kit.errors import Problem, field_problem
from services.hall import halls, slotting
from services.hall.context import Context
from services.hall.domain import access
from services.hall.domain.codes import code_hash, ticket_display
from services.hall.domain.slots import local_day, takes_walk_ins
from services.hall.models import Booking, CheckInFailure, Hall, HallWindow, Ticket, TicketSequence
from services.hall.publishing import booking_event, ticket_event


def ticket_out(ticket: Ticket, waiting_before: int | None = None) -> dict[str, Any]:
    return {"id": ticket.id, "hall_code": ticket.hall_code, "number": ticket.display, "kind": ticket.kind,
            "matter_code": ticket.matter_code, "status": ticket.status, "window": ticket.window_code,
            "slot_starts_at": ticket.slot_starts_at, "issued_at": ticket.issued_at, "called_at": ticket.called_at,
            "case_no": ticket.case_no, "waiting_before": waiting_before}  # fmt: skip


async def _next_number(session: AsyncSession, hall_code: str, day: date) -> int:
    await session.execute(
        slotting.dialect_insert(session)(TicketSequence).values(hall_code=hall_code, day=day, last=0)
        .on_conflict_do_nothing(index_elements=["hall_code", "day"])
    )  # fmt: skip
    where = (TicketSequence.hall_code == hall_code, TicketSequence.day == day)
    await session.execute(update(TicketSequence).where(*where).values(last=TicketSequence.last + 1)
                          .execution_options(synchronize_session=False))  # fmt: skip
    return (await session.execute(select(TicketSequence.last).where(*where))).scalar_one()


async def _issue(session: AsyncSession, ctx: Context, hall: Hall, *, kind: str, matter_code: str, issued_by: str,
                 booking: Booking | None = None) -> tuple[Ticket, int]:  # fmt: skip
    now = ctx.current_time()
    day = local_day(now, ctx.zone)
    number = await _next_number(session, hall.code, day)
    ticket = Ticket(id="tk_" + uuid.uuid4().hex[:24], hall_code=hall.code, day=day, number=number,
                    display=ticket_display(hall.queue_prefix, number), kind=kind, matter_code=matter_code,
                    booking_id=booking.id if booking else None, slot_starts_at=booking.starts_at if booking else None,
                    status="waiting", issued_by=issued_by, issued_at=now)  # fmt: skip
    session.add(ticket)
    await session.flush()
    ahead = (await session.execute(select(func.count()).select_from(Ticket).where(
        Ticket.hall_code == hall.code, Ticket.day == day, Ticket.status == "waiting", Ticket.number < number)
    )).scalar_one()  # fmt: skip
    return ticket, ahead


def _source(caller: Principal | None, client: str) -> str:
    if caller is not None and caller.device:
        return f"kiosk:{caller.device}"[:100]
    return f"ip:{client}"[:100]


async def _too_many_failures(session: AsyncSession, ctx: Context, hall_code: str, source: str) -> bool:
    since = ctx.current_time() - timedelta(seconds=ctx.settings.check_in_failure_window_seconds)
    count = (await session.execute(select(func.count()).select_from(CheckInFailure).where(
        CheckInFailure.hall_code == hall_code, CheckInFailure.source == source, CheckInFailure.at >= since)
    )).scalar_one()  # fmt: skip
    return count >= ctx.settings.check_in_max_failures


async def _record_failure(maker: async_sessionmaker[AsyncSession], ctx: Context, hall_code: str, source: str) -> None:
    """In its own transaction: the request's is rolled back with the refusal."""
    now = ctx.current_time()
    async with maker() as other, other.begin():
        other.add(CheckInFailure(hall_code=hall_code, source=source, at=now))
        old = now - timedelta(seconds=ctx.settings.check_in_failure_window_seconds)
        await other.execute(delete(CheckInFailure).where(CheckInFailure.at < old))


async def check_in(session: AsyncSession, maker: async_sessionmaker[AsyncSession], ctx: Context,
                   caller: Principal | None, hall_code: str, code: str, client: str) -> tuple[Ticket, int]:  # fmt: skip
    """The hall's machine: the code from the SMS → a queue ticket. Wrong codes are counted per
    source (the kiosk device, else the address); past the limit the machine waits (429)."""
    access.check("check_in", access.caller_relation(caller), caller.roles if caller else ())
    hall = await halls.get_hall(session, hall_code)
    source = _source(caller, client)
    if await _too_many_failures(session, ctx, hall.code, source):
        raise Problem(429, "too-many-attempts", "Too many wrong codes",
                      "too many wrong check-in codes; wait a few minutes or ask at the information desk",
                      headers={"Retry-After": str(ctx.settings.check_in_failure_window_seconds)})  # fmt: skip
    now = ctx.current_time()
    digest = code_hash(ctx.code_secret, hall.code, local_day(now, ctx.zone), code)
    booking = (await session.execute(
        select(Booking).where(Booking.code_hash == digest, Booking.hall_code == hall.code)
    )).scalar_one_or_none()  # fmt: skip
    if booking is None or booking.status not in {"booked", "checked_in"}:
        await _record_failure(maker, ctx, hall.code, source)
        message = "no booking at this hall today has this code"
        raise Problem(404, "check-in-code-unknown", "Unknown check-in code", f"body.code: {message}",
                      errors=[{"field": "body.code", "rule": "unknown", "message": message}])  # fmt: skip
    if booking.status == "checked_in":  # pressed twice: the same ticket again
        ticket = await session.get(Ticket, booking.ticket_id)
        assert ticket is not None
        return ticket, 0
    if now < booking.starts_at - timedelta(minutes=ctx.settings.check_in_early_minutes):
        raise Problem(409, "check-in-too-early", "Too early",
                      f"check-in opens {ctx.settings.check_in_early_minutes} minutes before the slot", rule="too_early")  # fmt: skip
    if now >= booking.ends_at:
        raise Problem(409, "check-in-too-late", "Too late", "the booked slot has ended; take a walk-in ticket",
                      rule="too_late")  # fmt: skip
    # Claim the booking first (conditional): two machines pressed at once make one ticket.
    claimed = await session.execute(
        update(Booking).where(Booking.id == booking.id, Booking.status == "booked")
        .values(status="checked_in", checked_in_at=now, updated_at=now).execution_options(synchronize_session=False)
    )  # fmt: skip
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Problem(409, "booking-state", "Already checked in", "this booking was just checked in", rule="state")
    ticket, ahead = await _issue(session, ctx, hall, kind="booking", matter_code=booking.matter_code,
                                 issued_by="check-in", booking=booking)  # fmt: skip
    await session.execute(update(Booking).where(Booking.id == booking.id).values(ticket_id=ticket.id)
                          .execution_options(synchronize_session=False))  # fmt: skip
    await booking_event(session, contract.BookingCheckedIn, booking, now, ticket=ticket.display)
    return ticket, ahead


async def walk_in(session: AsyncSession, ctx: Context, caller: Principal, hall_code: str,
                  matter_code: str) -> tuple[Ticket, int]:  # fmt: skip
    """A ticket without a booking: taken by a counter officer for a visitor, or at the hall's machine."""
    access.check("ticket.walk_in", access.caller_relation(caller), caller.roles)
    hall = await halls.get_hall(session, hall_code)
    await halls.check_serves(session, hall, matter_code, "body.matter_code")
    now = ctx.current_time()
    open_now = takes_walk_ins(now, halls.periods_of(hall), ctx.zone, early_minutes=ctx.settings.walk_in_early_minutes)
    if not open_now or not await halls.is_workday(ctx, local_day(now, ctx.zone)):
        raise Problem(409, "hall-closed", "The hall is closed", "walk-in numbers are given during opening hours on "
                      "working days", rule="closed")  # fmt: skip
    issued_by = f"kiosk:{caller.device}" if caller.channel == "kiosk" else caller.subject
    return await _issue(session, ctx, hall, kind="walk_in", matter_code=matter_code, issued_by=issued_by[:64])


async def _window(session: AsyncSession, hall_code: str, code: str, field: str) -> HallWindow:
    window = (await session.execute(select(HallWindow).where(
        HallWindow.hall_code == hall_code, HallWindow.code == code, HallWindow.active.is_(True))
    )).scalar_one_or_none()  # fmt: skip
    if window is None:
        raise field_problem(field, "exists", f"no open window {code} at {hall_code}")
    return window


def call_order_sql(now: datetime):
    """domain/queue.py's order as SQL: booked-and-due first (by slot), then by number."""
    due = and_(Ticket.kind == "booking", Ticket.slot_starts_at <= now)
    return (case((due, 0), else_=1), case((due, Ticket.slot_starts_at), else_=None), Ticket.number)


async def call_next(session: AsyncSession, ctx: Context, caller: Principal, hall_code: str, window_code: str) -> Ticket:
    """The next ticket this window serves, claimed for it; 404 ``empty`` when none waits."""
    hall = await halls.get_hall(session, hall_code)
    window = await _window(session, hall.code, window_code, "body.window")
    relation = access.window_relation(caller, comprehensive=window.comprehensive, department=window.department)
    access.check("ticket.call", relation, caller.roles)
    now = ctx.current_time()
    query = select(Ticket.id).where(Ticket.hall_code == hall.code, Ticket.day == local_day(now, ctx.zone),
                                    Ticket.status == "waiting")  # fmt: skip
    if not window.comprehensive:
        query = query.where(Ticket.matter_code.in_(json.loads(window.matters)))
    query = query.order_by(*call_order_sql(now)).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    for _ in range(50):  # SQLite: a lost race re-reads (the loser's next read sees the winner's claim)
        ticket_id = (await session.execute(query)).scalar_one_or_none()
        if ticket_id is None:
            raise Problem(404, "queue-empty", "Nobody waiting", f"no ticket waits for window {window.code}",
                          rule="empty")  # fmt: skip
        claimed = await session.execute(
            update(Ticket).where(Ticket.id == ticket_id, Ticket.status == "waiting")
            .values(status="called", window_code=window.code, called_by=caller.subject, called_at=now)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            ticket = await session.get(Ticket, ticket_id, populate_existing=True)
            assert ticket is not None
            await ticket_event(session, contract.TicketCalled, ticket, caller.subject, now)
            return ticket
    raise Problem(409, "busy", "Try again", "the queue is busy; call again")


async def finish(session: AsyncSession, ctx: Context, caller: Principal, ticket_id: str, outcome: str,
                 case_no: str | None = None) -> Ticket:  # fmt: skip
    """A called ticket is served (optionally with the case submitted for it) or missed."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise Problem(404, "not-found", "Not found", "no such ticket")
    window = await _window(session, ticket.hall_code, ticket.window_code or "", "path.ticket_id") \
        if ticket.window_code else None  # fmt: skip
    relation = (access.window_relation(caller, comprehensive=window.comprehensive, department=window.department)
                if window else access.caller_relation(caller))  # fmt: skip
    access.check("ticket.finish", relation, caller.roles)
    if ticket.status != "called":
        raise Problem(409, "ticket-state", "Ticket not called", f"the ticket is {ticket.status}", rule="state")
    now = ctx.current_time()
    done = await session.execute(
        update(Ticket).where(Ticket.id == ticket.id, Ticket.status == "called")
        .values(status=outcome, finished_at=now, case_no=case_no).execution_options(synchronize_session=False)
    )  # fmt: skip
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Problem(409, "ticket-state", "Ticket not called", "the ticket was just finished", rule="state")
    await session.refresh(ticket)
    if outcome == "served":
        await ticket_event(session, contract.TicketServed, ticket, caller.subject, now, case_no=case_no)
    return ticket


async def board(session: AsyncSession, ctx: Context, hall_code: str) -> dict[str, Any]:
    """The public board: how many wait, and the number each window called last (no personal data)."""
    hall = await halls.get_hall(session, hall_code)
    day = local_day(ctx.current_time(), ctx.zone)
    waiting = (await session.execute(select(func.count()).select_from(Ticket).where(
        Ticket.hall_code == hall.code, Ticket.day == day, Ticket.status == "waiting"))).scalar_one()  # fmt: skip
    rows = (await session.execute(select(Ticket.window_code, Ticket.display, Ticket.called_at).where(
        Ticket.hall_code == hall.code, Ticket.day == day, Ticket.status == "called").order_by(Ticket.called_at)
    )).all()  # fmt: skip
    latest: dict[str, dict[str, Any]] = {}
    for window_code, display, called_at in rows:
        latest[window_code] = {"window": window_code, "number": display, "called_at": called_at}
    return {"hall_code": hall.code, "date": day, "waiting": waiting,
            "called": [latest[w] for w in sorted(latest)]}  # fmt: skip
