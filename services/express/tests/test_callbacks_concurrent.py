"""EMS callbacks arriving at the same time (the carrier retries while the first delivery is still
being applied): one parcel's callbacks are applied one after the other, so the same event is
stored once and its status change published once, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from services.express import callbacks
from services.express.domain import tracking
from services.express.models import Shipment, ShipmentEvent
from services.express.tests.conftest import published
from services.express.tests.test_callbacks_and_views import EMS, booked, ems_event, timeline


def slow_timeline(monkeypatch) -> None:
    """Each callback pauses after taking the parcel's lock, so the others are sent meanwhile and
    wait on the lock (the outcome asserted is the same however they interleave)."""
    load = callbacks.load_tracking

    async def paused(tx, shipment):
        await asyncio.sleep(0.05)
        return await load(tx, shipment)

    monkeypatch.setattr(callbacks, "load_tracking", paused)


async def stored_events(client, shipment_id: str) -> int:
    async with client.app.state.sessionmaker() as session:
        count = select(func.count()).select_from(ShipmentEvent).where(ShipmentEvent.shipment_id == shipment_id)
        return (await session.execute(count)).scalar_one()


async def test_the_same_event_at_once_is_stored_once_and_published_once(express, monkeypatch):
    shipment = await booked(express)
    slow_timeline(monkeypatch)
    event = ems_event(shipment.waybill, "10", 0)
    answers = await asyncio.gather(*(express.post("/callbacks/ems", json=event, headers=EMS) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    bodies = [a.json() for a in answers]
    assert sorted(b["duplicate"] for b in bodies) == [False, True, True, True]
    assert [b["applied"] for b in bodies].count(True) == 1
    assert {b["status"] for b in bodies} == {"picked_up"} and {b["shipment_id"] for b in bodies} == {shipment.id}
    assert await stored_events(express, shipment.id) == 1
    assert [e["status"] for e in await published(express, "updated")] == ["picked_up"]


async def test_a_parcels_events_at_once_end_where_they_would_one_by_one(express, monkeypatch):
    shipment = await booked(express)
    slow_timeline(monkeypatch)
    events = [ems_event(shipment.waybill, code, minutes) for code, minutes in (("30", 120), ("10", 0), ("20", 60))]
    answers = await asyncio.gather(*(express.post("/callbacks/ems", json=e, headers=EMS) for e in events * 2))
    assert [a.status_code for a in answers] == [200] * 6
    assert sum(a.json()["duplicate"] for a in answers) == 3
    status, shown = await timeline(express, shipment.id)
    assert status == "out_for_delivery" and [e[0] for e in shown] == ["ev-10-0", "ev-20-60", "ev-30-120"]
    ranks = ["picked_up", "in_transit", "out_for_delivery"]
    statuses = [ranks.index(e["status"]) for e in await published(express, "updated")]
    assert statuses == sorted(set(statuses)) and statuses[-1] == 2  # each once, never backwards


async def test_an_event_that_got_past_the_duplicate_check_is_still_a_duplicate(express, monkeypatch):
    """Should a delivery ever read the timeline without its event already stored (the unique
    event row is the last line of defence), it stores nothing, moves nothing, publishes nothing
    and answers as a duplicate."""
    shipment = await booked(express)
    first = ems_event(shipment.waybill, "10", 0)
    assert (await express.post("/callbacks/ems", json=first, headers=EMS)).json()["applied"] is True

    async def nothing_seen(tx, row):
        return tracking.Tracking()

    monkeypatch.setattr(callbacks, "load_tracking", nothing_seen)
    # The same event id, this time read as moving the parcel on: it must not.
    again = await express.post("/callbacks/ems", json=ems_event(shipment.waybill, "20", 60, "ev-10-0"), headers=EMS)
    assert again.status_code == 200
    assert again.json() == {"shipment_id": shipment.id, "status": "created", "duplicate": True, "applied": False}
    assert await stored_events(express, shipment.id) == 1
    assert [e["status"] for e in await published(express, "updated")] == ["picked_up"]
    async with express.app.state.sessionmaker() as session:
        stored = await session.get(Shipment, shipment.id)
        assert stored.status == "picked_up" and stored.status_at.isoformat() == first["at"]
