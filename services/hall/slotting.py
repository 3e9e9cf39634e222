"""Slots as rows: made on first booking, taken and released only by conditional UPDATEs.

``take`` is ``UPDATE slots SET booked = booked + 1 WHERE id = :id AND booked < capacity``: on
PostgreSQL the row lock makes concurrent takers wait and re-check the condition after the first
commits; on SQLite writers are serialised. Either way capacity is never exceeded.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Problem
from services.hall.models import Hall, Slot


def dialect_insert(session: AsyncSession):
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def ensure_slot(session: AsyncSession, hall: Hall, starts_at: datetime, ends_at: datetime) -> int:
    """The slot row's id, made (with the hall's current capacity) if nobody booked it before."""
    statement = dialect_insert(session)(Slot).values(
        hall_code=hall.code, starts_at=starts_at, ends_at=ends_at, capacity=hall.slot_capacity, booked=0
    ).on_conflict_do_nothing(index_elements=["hall_code", "starts_at"])  # fmt: skip
    await session.execute(statement)
    return (await session.execute(
        select(Slot.id).where(Slot.hall_code == hall.code, Slot.starts_at == starts_at)
    )).scalar_one()  # fmt: skip


async def take(session: AsyncSession, slot_id: int) -> None:
    """One place in the slot, or 409 ``full``."""
    result = await session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.booked < Slot.capacity)
        .values(booked=Slot.booked + 1).execution_options(synchronize_session=False)
    )  # fmt: skip
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Problem(409, "slot-full", "Slot full", "this slot is fully booked; choose another time", rule="full")


async def release(session: AsyncSession, slot_id: int) -> None:
    """Give a place back (a move or a cancellation)."""
    await session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.booked > 0)
        .values(booked=Slot.booked - 1).execution_options(synchronize_session=False)
    )  # fmt: skip
