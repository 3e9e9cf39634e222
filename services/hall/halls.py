"""Halls, their windows and their slots: the platform admin's setup and the public reading."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import Problem, field_problem
from services.hall.adapters.calendar import CalendarUnavailable
from services.hall.context import Context
from services.hall.domain import access
from services.hall.domain.queue import serves
from services.hall.domain.slots import Period, check_opening_hours, slot_starts
from services.hall.models import Hall, HallWindow, Slot
from services.hall.schemas import HallIn, WindowIn


def no_such_hall(code: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"no such hall: {code}")


async def get_hall(session: AsyncSession, code: str, *, active_only: bool = True) -> Hall:
    hall = await session.get(Hall, code)
    if hall is None or (active_only and not hall.active):
        raise no_such_hall(code)
    return hall


def periods_of(hall: Hall) -> list[Period]:
    return check_opening_hours(json.loads(hall.opening_hours), hall.slot_minutes)


async def windows_of(session: AsyncSession, hall_code: str, *, active_only: bool = True) -> list[HallWindow]:
    query = select(HallWindow).where(HallWindow.hall_code == hall_code).order_by(HallWindow.code)
    if active_only:
        query = query.where(HallWindow.active.is_(True))
    return list((await session.execute(query)).scalars())


def window_out(window: HallWindow) -> dict[str, Any]:
    return {"code": window.code, "name": window.name, "comprehensive": window.comprehensive,
            "matters": json.loads(window.matters), "department": window.department, "active": window.active}  # fmt: skip


async def hall_out(session: AsyncSession, hall: Hall, *, all_windows: bool = False) -> dict[str, Any]:
    windows = await windows_of(session, hall.code, active_only=not all_windows)
    return {"code": hall.code, "name": hall.name, "division_code": hall.division_code, "address": hall.address,
            "queue_prefix": hall.queue_prefix, "opening_hours": json.loads(hall.opening_hours),
            "slot_minutes": hall.slot_minutes, "slot_capacity": hall.slot_capacity, "active": hall.active,
            "windows": [window_out(w) for w in windows]}  # fmt: skip


async def put_hall(
    session: AsyncSession, ctx: Context, caller: Principal, code: str, body: HallIn
) -> tuple[Hall, bool]:
    """Create or replace a hall (platform admin). A changed capacity applies to slots booked from
    now on; slots already made keep theirs (their bookings were promised against it)."""
    access.check("hall.manage", access.caller_relation(caller), caller.roles)
    now = ctx.current_time()
    hall = await session.get(Hall, code)
    created = hall is None
    if hall is None:
        hall = Hall(code=code, created_at=now)
        session.add(hall)
    hall.name, hall.division_code, hall.address = body.name, body.division_code, body.address
    hall.queue_prefix, hall.slot_minutes, hall.slot_capacity = body.queue_prefix, body.slot_minutes, body.slot_capacity
    hall.opening_hours = json.dumps(body.opening_hours)
    hall.active = body.active
    hall.updated_at = now
    await session.flush()
    return hall, created


async def put_window(session: AsyncSession, caller: Principal, hall_code: str, code: str, body: WindowIn) -> bool:
    """Create or replace one of a hall's windows (platform admin); True when it was created."""
    access.check("hall.manage", access.caller_relation(caller), caller.roles)
    await get_hall(session, hall_code, active_only=False)
    window = (await session.execute(
        select(HallWindow).where(HallWindow.hall_code == hall_code, HallWindow.code == code)
    )).scalar_one_or_none()  # fmt: skip
    created = window is None
    if window is None:
        window = HallWindow(hall_code=hall_code, code=code)
        session.add(window)
    window.name, window.comprehensive, window.department = body.name, body.comprehensive, body.department
    window.matters = json.dumps([] if body.comprehensive else body.matters)
    window.active = body.active
    await session.flush()
    return created


async def check_serves(session: AsyncSession, hall: Hall, matter_code: str, field: str) -> None:
    """422 naming ``field`` unless one of the hall's windows serves the matter."""
    for window in await windows_of(session, hall.code):
        if serves(window.comprehensive, json.loads(window.matters), matter_code):
            return
    raise field_problem(field, "served", f"no window of {hall.code} serves matter {matter_code}")


async def is_workday(ctx: Context, day: date) -> bool:
    """The platform calendar's answer; 503 while it cannot be had."""
    try:
        return await ctx.calendar.is_workday(day)
    except CalendarUnavailable as exc:
        raise Problem(503, "calendar-unavailable", "Working-day calendar unavailable", str(exc)) from exc


def bookable_range(ctx: Context) -> tuple[datetime, date]:
    """Now, and the last day a slot may be booked on."""
    now = ctx.current_time()
    return now, (now.astimezone(ctx.zone) + timedelta(days=ctx.settings.booking_days_ahead)).date()


async def day_slots(session: AsyncSession, ctx: Context, hall_code: str, day: date) -> dict[str, Any]:
    """A day's slots with what is still free (public). Past slots and closed days show none."""
    hall = await get_hall(session, hall_code)
    workday = await is_workday(ctx, day)
    now, last = bookable_range(ctx)
    out: list[dict[str, Any]] = []
    if workday and day <= last:
        starts = slot_starts(day, periods_of(hall), hall.slot_minutes, ctx.zone)
        made: dict[datetime, Slot] = {}
        if starts:
            rows = await session.execute(select(Slot).where(
                Slot.hall_code == hall.code, Slot.starts_at >= starts[0], Slot.starts_at <= starts[-1]))  # fmt: skip
            made = {slot.starts_at: slot for slot in rows.scalars()}
        for start in starts:
            if start <= now:
                continue
            slot = made.get(start)
            capacity = slot.capacity if slot else hall.slot_capacity
            out.append({"starts_at": start, "ends_at": start + timedelta(minutes=hall.slot_minutes),
                        "capacity": capacity, "free": capacity - (slot.booked if slot else 0)})  # fmt: skip
    return {"hall_code": hall.code, "date": day, "workday": workday, "slots": out}
