"""Carrier orders: booked once with a waybill and a created event; an outage is retried with
backoff until the carrier is back; a refusal fails the shipment for good."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from services.express.adapters.carrier import HttpCarrier
from services.express.domain import s10
from services.express.models import CarrierOrder, Shipment
from services.express.orders import OrderWorker
from services.express.sandbox_ems import SandboxEmsSettings
from services.express.sandbox_ems import create_app as create_sandbox
from services.express.tests.conftest import consume, delivery_requested, published


def worker(client, carrier) -> OrderWorker:
    settings = client.app.state.express.settings
    return OrderWorker(client.app.state.sessionmaker, carrier, settings, clock=client.clock)


async def _one(client) -> tuple[Shipment, CarrierOrder | None]:
    async with client.app.state.sessionmaker() as session:
        shipment = (await session.execute(select(Shipment))).scalar_one()
        order = await session.get(CarrierOrder, shipment.id)
    return shipment, order


async def test_an_order_is_booked_once_and_announced(express):
    await consume(express, delivery_requested())
    orders = worker(express, express.carrier)
    assert await orders.run_once() == 1
    shipment, queued = await _one(express)
    assert queued is None and s10.is_ems(shipment.waybill) and shipment.expected_delivery is not None
    [created] = await published(express, "created")
    assert created["waybill"] == shipment.waybill and created["status"] == "created" and created["kind"] == "deliver"
    assert "address" not in created and "phone" not in created  # no personal data on the bus
    [sent] = express.carrier.calls
    assert sent.reference == shipment.id and sent.recipient.phone == "13800138000" and sent.sender.name == "SCJGJ"
    assert await orders.run_once() == 0  # nothing left to book


async def test_an_outage_is_retried_with_backoff_until_the_carrier_is_back(express):
    await consume(express, delivery_requested())
    express.carrier.down = True
    orders = worker(express, express.carrier)
    delays = []
    for _ in range(3):
        assert await orders.run_once() == 1
        shipment, queued = await _one(express)
        assert shipment.waybill is None and "CarrierUnavailable" in queued.last_error
        delays.append((queued.next_attempt_at - express.clock()).total_seconds())
        assert await orders.run_once() == 0  # not due yet
        express.clock.advance(delays[-1] + 0.001)
    assert 4 <= delays[0] <= 6 and 8 <= delays[1] <= 12 and 16 <= delays[2] <= 24  # 5 s × 2^n, jittered
    express.carrier.down = False
    assert await orders.run_once() == 1
    shipment, queued = await _one(express)
    assert queued is None and s10.is_valid(shipment.waybill)
    assert len(await published(express, "created")) == 1 and await published(express, "failed") == []


async def test_a_refused_order_fails_the_shipment_for_good(express):
    await consume(express, delivery_requested())
    shipment, _ = await _one(express)
    express.carrier.refuse.add(shipment.id)
    assert await worker(express, express.carrier).run_once() == 1
    shipment, queued = await _one(express)
    assert queued is None and shipment.status == "refused" and "service area" in shipment.failure_reason
    [failed] = await published(express, "failed")
    assert failed["final"] is True and failed["status"] == "created" and failed["reason"].startswith("order refused")


async def test_the_sandbox_ems_in_outage_then_back(express):
    """Over HTTP, signed, against the sandbox EMS server: 503 while in outage, booked once it is back."""
    sandbox_settings = SandboxEmsSettings(order_secret="test-order-secret", refusal_rate=0, step_seconds=3600)
    sandbox = create_sandbox(sandbox_settings)
    async with sandbox.router.lifespan_context(sandbox):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url="http://ems")
        carrier = HttpCarrier("http://ems", key_id="express", secret="test-order-secret", client=client)
        await consume(express, delivery_requested())
        assert (await client.put("/sandbox/outage", json={"outage": True})).json() == {"outage": True}
        orders = worker(express, carrier)
        assert await orders.run_once() == 1
        shipment, queued = await _one(express)
        assert shipment.waybill is None and queued.attempts == 1 and "503" in queued.last_error
        await client.put("/sandbox/outage", json={"outage": False})
        express.clock.advance(60)
        assert await orders.run_once() == 1
        shipment, queued = await _one(express)
        assert queued is None and s10.is_ems(shipment.waybill)
        known = (await client.get(f"/orders/{shipment.waybill}")).json()
        assert known["reference"] == shipment.id and known["kind"] == "deliver"
        await carrier.aclose()


async def test_a_new_shipment_wakes_the_worker_instead_of_waiting_for_the_poll(express):
    """The consumer's commit wakes the running worker: booked well within a poll interval of 60 s."""
    settings = express.app.state.express.settings.model_copy(update={"carrier_poll_seconds": 60.0})
    orders = OrderWorker(express.app.state.sessionmaker, express.carrier, settings, clock=express.clock)
    await orders.start()
    try:
        await asyncio.sleep(0.05)  # the loop found nothing due and waits for a wake or the poll
        assert await consume(express, delivery_requested())
        for _ in range(100):
            shipment, queued = await _one(express)
            if shipment.waybill is not None:
                break
            await asyncio.sleep(0.02)
        assert queued is None and s10.is_ems(shipment.waybill), "not booked within 2 s of the commit"
        assert len(await published(express, "created")) == 1
    finally:
        await orders.stop()


async def test_two_replicas_book_each_shipment_once_and_a_dead_ones_claims_come_back(express):
    """Two workers at once share the queue (each shipment ordered once, one created event each); a
    worker killed after its claim (nothing sent yet) holds its rows until the claim ends, then the
    other books them."""
    for n in range(6):
        await consume(express, delivery_requested(f"CF2026120100001{n}"))
    dead = worker(express, express.carrier)
    dead.batch_size = 2
    assert len(await dead._claim(express.clock())) == 2  # noqa: SLF001 - claimed, then the process died
    ours, theirs = worker(express, express.carrier), worker(express, express.carrier)
    ours.batch_size = theirs.batch_size = 2
    booked = await asyncio.gather(ours.run_once(), theirs.run_once(), ours.run_once(), theirs.run_once())
    assert sum(booked) == 4 and await ours.run_once() == 0  # the dead one's two still held
    express.clock.advance(dead.claim_seconds + 1)
    assert await ours.run_once() + await theirs.run_once() == 2
    references = [call.reference for call in express.carrier.calls]
    assert len(references) == len(set(references)) == 6
    assert len(await published(express, "created")) == 6
