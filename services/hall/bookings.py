"""Bookings (预约): made, moved, cancelled by the one who booked or the one who comes; the SMS with
the time and the check-in code goes out after commit (sms_dispatch.py)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import hall as contract
from kit.auth import Principal
from kit.errors import Problem, RuleViolation, field_problem
from kit.masking import mask_id_number, mask_phone
from kit.pagination import PageQuery
from services.hall import halls, slotting
from services.hall.context import Context
from services.hall.domain import access
from services.hall.domain.codes import code_hash, new_code
from services.hall.domain.slots import local_day, slot_at
from services.hall.models import Booking, Hall, OutgoingSms, Ticket
from services.hall.publishing import booking_event
from services.hall.schemas import BookingIn


def _id() -> str:
    return "bk_" + uuid.uuid4().hex[:24]


def request_fingerprint(body: BookingIn) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


async def _slot_for(
    session: AsyncSession, ctx: Context, hall: Hall, moment: datetime, field: str
) -> tuple[datetime, datetime]:
    """The slot starting at ``moment``: on a working day, in the future, within the booking horizon."""
    try:
        start, end = slot_at(moment, halls.periods_of(hall), hall.slot_minutes, ctx.zone)
    except RuleViolation as exc:
        raise field_problem(field, exc.rule, exc.message) from exc
    now, last = halls.bookable_range(ctx)
    if start <= now:
        raise field_problem(field, "future", "this slot has already begun")
    if start.date() > last:
        raise field_problem(field, "horizon", f"slots can be booked up to {ctx.settings.booking_days_ahead} days ahead")
    if not await halls.is_workday(ctx, start.date()):
        raise field_problem(field, "working_day", f"the hall is closed on {start.date()} (not a working day)")
    return start, end


async def _overlap(session: AsyncSession, visitor: str, start: datetime, end: datetime, but: str | None = None) -> None:
    query = select(Booking.id).where(Booking.visitor == visitor, Booking.status == "booked",
                                     Booking.starts_at < end, Booking.ends_at > start)  # fmt: skip
    if but is not None:
        query = query.where(Booking.id != but)
    if (await session.execute(query.limit(1))).first() is not None:
        raise _overlap_problem()


def _overlap_problem() -> Problem:
    return Problem(409, "booking-overlap", "Already booked then",
                   "the visitor already holds a booking at this time", rule="overlap")  # fmt: skip


async def _fresh_code(session: AsyncSession, ctx: Context, hall_code: str, start: datetime) -> tuple[str, str]:
    day = local_day(start, ctx.zone)
    for _ in range(20):
        code = new_code()
        digest = code_hash(ctx.code_secret, hall_code, day, code)
        if (await session.execute(select(Booking.id).where(Booking.code_hash == digest))).first() is None:
            return code, digest
    raise Problem(409, "busy", "Try again", "no free check-in code for this day; retry")


def sms_text(hall: Hall, start: datetime, matter_code: str, code: str, ctx: Context, *, moved: bool = False) -> str:
    local = start.astimezone(ctx.zone)
    what = "预约已改至" if moved else "预约成功："
    return (f"【一网通办】{hall.name}{what}{local:%Y年%m月%d日 %H:%M}（北京时间），事项{matter_code}。"
            f"签到码{code}，请到大厅取号机输入签到码取号。地址：{hall.address}")  # fmt: skip


async def _queue_sms(session: AsyncSession, ctx: Context, booking: Booking, text: str) -> None:
    now = ctx.current_time()
    session.add(OutgoingSms(booking_id=booking.id, mobile=booking.mobile, text=text, attempts=0,
                            next_attempt_at=now, created_at=now, failed=False))  # fmt: skip


async def _replay(session: AsyncSession, booker: str, key: str, fingerprint: str) -> Booking | None:
    found = (await session.execute(
        select(Booking).where(Booking.booker == booker, Booking.idempotency_key == key)
    )).scalar_one_or_none()  # fmt: skip
    if found is not None and found.request_hash != fingerprint:
        raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused",
                      "this Idempotency-Key was used for another request", rule="idempotency_key")  # fmt: skip
    return found


async def create(session: AsyncSession, ctx: Context, caller: Principal, body: BookingIn,
                 idempotency_key: str | None) -> tuple[Booking, bool]:  # fmt: skip
    """Book a slot; (booking, created). A key seen before returns its booking unchanged."""
    access.check("booking.create", access.caller_relation(caller), caller.roles)
    visitor = body.visitor_id_number or (caller.subject if caller.kind == "person" else caller.actor)
    if not visitor:
        raise field_problem("body.visitor_id_number", "missing", "an enterprise books for a person: name who comes")
    fingerprint = request_fingerprint(body)
    if idempotency_key:
        existing = await _replay(session, caller.subject, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False
    hall = await halls.get_hall(session, body.hall_code)
    await halls.check_serves(session, hall, body.matter_code, "body.matter_code")
    start, end = await _slot_for(session, ctx, hall, body.starts_at, "body.starts_at")
    try:
        await _overlap(session, visitor, start, end)
        code, digest = await _fresh_code(session, ctx, hall.code, start)
        slot_id = await slotting.ensure_slot(session, hall, start, end)
    except Problem:
        # A retry of the same key that lost the race to its twin: the twin's booking is the answer.
        if idempotency_key:
            existing = await _replay(session, caller.subject, idempotency_key, fingerprint)
            if existing is not None:
                return existing, False
        raise
    now = ctx.current_time()
    booking = Booking(
        id=_id(), hall_code=hall.code, slot_id=slot_id, starts_at=start, ends_at=end, matter_code=body.matter_code,
        booker=caller.subject, booked_by=caller.actor or caller.subject, visitor=visitor, mobile=body.mobile,
        case_no=body.case_no, status="booked", code_hash=digest, idempotency_key=idempotency_key,
        request_hash=fingerprint, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(booking)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()  # the slot's place goes back with it
        if idempotency_key:
            existing = await _replay(session, caller.subject, idempotency_key, fingerprint)
            if existing is not None:
                return existing, False
        raise _overlap_problem() from None
    await _queue_sms(session, ctx, booking, sms_text(hall, start, body.matter_code, code, ctx))
    await booking_event(session, contract.BookingMade, booking, now)
    # The place is taken last: the slot's row lock (every booker of a popular slot waits on it)
    # is held only from here to the commit, not across the inserts above. Full → 409, and the
    # request's transaction (booking, SMS, event) is rolled back with it.
    await slotting.take(session, slot_id)
    return booking, True


async def _held(session: AsyncSession, caller: Principal, booking_id: str, action: str) -> Booking:
    booking = await session.get(Booking, booking_id)
    if booking is None:
        raise Problem(404, "not-found", "Not found", access.NOT_FOUND)
    access.check(action, access.booking_relation(caller, booker=booking.booker, visitor=booking.visitor), caller.roles)
    return booking


def _still_open(booking: Booking, now: datetime) -> None:
    if booking.status != "booked":
        raise Problem(409, "booking-state", "Booking cannot change", f"the booking is {booking.status}", rule="state")
    if booking.starts_at <= now:
        raise Problem(409, "booking-state", "Booking cannot change", "the slot has begun", rule="begun")


async def move(session: AsyncSession, ctx: Context, caller: Principal, booking_id: str, starts_at: datetime) -> Booking:
    """Move to another slot of the same hall (same capacity rules); a new code goes by SMS."""
    booking = await _held(session, caller, booking_id, "booking.move")
    _still_open(booking, ctx.current_time())
    hall = await halls.get_hall(session, booking.hall_code)
    start, end = await _slot_for(session, ctx, hall, starts_at, "body.starts_at")
    if start == booking.starts_at:
        raise field_problem("body.starts_at", "same_slot", "the booking is already for this slot")
    await _overlap(session, booking.visitor, start, end, but=booking.id)
    code, digest = await _fresh_code(session, ctx, hall.code, start)
    slot_id = await slotting.ensure_slot(session, hall, start, end)
    await slotting.take(session, slot_id)
    await slotting.release(session, booking.slot_id)
    previous = booking.starts_at
    now = ctx.current_time()
    booking.slot_id, booking.starts_at, booking.ends_at, booking.code_hash = slot_id, start, end, digest
    booking.updated_at = now
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise _overlap_problem() from None
    await _queue_sms(session, ctx, booking, sms_text(hall, start, booking.matter_code, code, ctx, moved=True))
    await booking_event(session, contract.BookingMoved, booking, now, previous_starts_at=previous)
    return booking


async def cancel(session: AsyncSession, ctx: Context, caller: Principal, booking_id: str) -> Booking:
    """Cancel before the slot begins; the place goes back to the slot."""
    booking = await _held(session, caller, booking_id, "booking.cancel")
    now = ctx.current_time()
    _still_open(booking, now)
    hall = await halls.get_hall(session, booking.hall_code, active_only=False)
    await slotting.release(session, booking.slot_id)
    booking.status, booking.updated_at = "cancelled", now
    local = booking.starts_at.astimezone(ctx.zone)
    await _queue_sms(session, ctx, booking, f"【一网通办】您在{hall.name}{local:%Y年%m月%d日 %H:%M}的预约已取消。")
    await booking_event(session, contract.BookingCancelled, booking, now)
    return booking


async def read(session: AsyncSession, caller: Principal, booking_id: str) -> Booking:
    return await _held(session, caller, booking_id, "booking.read")


async def _ticket_numbers(session: AsyncSession, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Ticket.id, Ticket.display).where(Ticket.id.in_(ids)))
    return {row[0]: row[1] for row in rows}


async def outs(session: AsyncSession, bookings: list[Booking]) -> list[dict[str, Any]]:
    """The bookings as their holders see them (ID number and mobile masked)."""
    names = dict((await session.execute(select(Hall.code, Hall.name).where(
        Hall.code.in_({b.hall_code for b in bookings})))).all()) if bookings else {}  # fmt: skip
    tickets = await _ticket_numbers(session, [b.ticket_id for b in bookings if b.ticket_id])
    return [{
        "id": b.id, "hall_code": b.hall_code, "hall_name": names.get(b.hall_code, b.hall_code),
        "matter_code": b.matter_code, "starts_at": b.starts_at, "ends_at": b.ends_at, "status": b.status,
        "visitor": mask_id_number(b.visitor), "mobile": mask_phone(b.mobile), "case_no": b.case_no,
        "ticket": tickets.get(b.ticket_id or ""), "created_at": b.created_at, "checked_in_at": b.checked_in_at,
    } for b in bookings]  # fmt: skip


async def mine(session: AsyncSession, caller: Principal, page: PageQuery, status: str | None) -> dict[str, Any]:
    """The caller's bookings — made by them or for them — newest slot first; no-shows included."""
    access.check("booking.list_mine", access.caller_relation(caller), caller.roles)
    where = [or_(Booking.booker == caller.subject, Booking.visitor == caller.subject)]
    if status:
        where.append(Booking.status == status)
    total = (await session.execute(select(func.count()).select_from(Booking).where(*where))).scalar_one()
    rows = (await session.execute(
        select(Booking).where(*where).order_by(Booking.starts_at.desc(), Booking.id)
        .offset(page.offset).limit(page.page_size)
    )).scalars().all()  # fmt: skip
    return {"total": total, "page": page.page, "page_size": page.page_size, "items": await outs(session, list(rows))}


async def day_view(session: AsyncSession, ctx: Context, caller: Principal, hall_code: str, day: Any,
                   window: str | None) -> dict[str, Any]:  # fmt: skip
    """The day's bookings under each window serving their matter (officers: counter, supervisor, admin)."""
    access.check("booking.day_view", access.caller_relation(caller), caller.roles)
    hall = await halls.get_hall(session, hall_code, active_only=False)
    windows = await halls.windows_of(session, hall.code)
    if window is not None:
        windows = [w for w in windows if w.code == window]
        if not windows:
            raise field_problem("query.window", "exists", f"no window {window} at {hall.code}")
    start = datetime.combine(day, datetime.min.time(), tzinfo=ctx.zone)
    rows = list((await session.execute(
        select(Booking).where(Booking.hall_code == hall.code, Booking.starts_at >= start,
                              Booking.starts_at < start + timedelta(days=1), Booking.status != "cancelled")
        .order_by(Booking.starts_at, Booking.id)
    )).scalars())  # fmt: skip
    tickets = await _ticket_numbers(session, [b.ticket_id for b in rows if b.ticket_id])
    out = []
    for w in windows:
        matters = set(json.loads(w.matters))
        out.append({"window": w.code, "name": w.name, "bookings": [
            {"id": b.id, "starts_at": b.starts_at, "matter_code": b.matter_code, "status": b.status,
             "visitor": mask_id_number(b.visitor), "case_no": b.case_no, "ticket": tickets.get(b.ticket_id or "")}
            for b in rows if w.comprehensive or b.matter_code in matters
        ]})  # fmt: skip
    return {"hall_code": hall.code, "date": day, "windows": out}
