"""The EMS sandbox books express's orders and pushes its imperfect callbacks (duplicated, out of
order) straight into express: every shipment ends in the sandbox's final status, once."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from services.express.adapters.carrier import HttpCarrier
from services.express.domain.tracking import ems_status
from services.express.models import Shipment, ShipmentEvent
from services.express.orders import OrderWorker
from services.express.sandbox_ems import SandboxEmsSettings
from services.express.sandbox_ems import create_app as create_sandbox
from services.express.tests.conftest import consume, delivery_requested, published


async def test_duplicated_and_reordered_pushes_end_in_the_carriers_final_status(express):
    into_express = httpx.AsyncClient(transport=httpx.ASGITransport(app=express.app), base_url="http://express")
    sandbox = create_sandbox(SandboxEmsSettings(
        order_secret="test-order-secret", partner_secret="unused-without-the-gateway",
        callback_url="http://express/callbacks/ems", refusal_rate=0, failure_rate=0.4, return_rate=0.2,
        duplicate_rate=0.5, reorder_rate=0.5, step_seconds=0.02, retry_base_seconds=0.02, retry_max_seconds=0.1,
        seed=5,
    ), client=into_express)  # fmt: skip
    async with sandbox.router.lifespan_context(sandbox):
        to_sandbox = httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url="http://ems")
        carrier = HttpCarrier("http://ems", key_id="express", secret="test-order-secret", client=to_sandbox)
        for n in range(5):
            await consume(express, delivery_requested(case_no=f"CF2026120100001{n}"))
        settings = express.app.state.express.settings
        assert await OrderWorker(express.app.state.sessionmaker, carrier, settings, clock=express.clock).run_once() == 5
        await sandbox.state.sandbox.settle(timeout=30)
        async with express.app.state.sessionmaker() as session:
            shipments = list((await session.execute(select(Shipment))).scalars())
            events = list((await session.execute(select(ShipmentEvent))).scalars())
        for shipment in shipments:
            known = (await to_sandbox.get(f"/orders/{shipment.waybill}")).json()
            assert known["done"]
            assert shipment.status == ems_status(known["plan"][-1])  # signed_for or returned
            mine = [e for e in events if e.shipment_id == shipment.id]
            assert len(mine) == len(known["plan"])  # every event once, duplicates dropped
        finals = await published(express, "delivered") + [f for f in await published(express, "failed") if f["final"]]
        assert sorted(f["shipment_id"] for f in finals) == sorted(s.id for s in shipments)  # each end once
        await carrier.aclose()
    await into_express.aclose()
