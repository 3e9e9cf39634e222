"""caseflow's delivery and pickup requests become exactly one shipment each, with its carrier order."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from services.express.models import CarrierOrder, Shipment
from services.express.tests.conftest import consume, delivery_requested, pickup_requested


async def _shipments(client) -> list[Shipment]:
    async with client.app.state.sessionmaker() as session:
        return list((await session.execute(select(Shipment).order_by(Shipment.created_at, Shipment.id))).scalars())


async def _orders(client) -> int:
    async with client.app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(CarrierOrder))).scalar_one()


async def test_a_delivery_request_is_one_deliver_shipment_even_redelivered_or_republished(express):
    event = delivery_requested()
    assert await consume(express, event) is True
    assert await consume(express, event) is False  # redelivered: the inbox drops it
    again = delivery_requested()  # the same request under a new event id
    assert again.id != event.id
    assert await consume(express, again) is True  # applied, but no second parcel
    [shipment] = await _shipments(express)
    assert (shipment.kind, shipment.case_no, shipment.department, shipment.applicant) == (
        "deliver", "CF20261201000001", "SCJGJ", "11010519491231002X",
    )  # fmt: skip
    assert shipment.recipient_name == "张三" and shipment.recipient_phone == "13800138000"
    assert shipment.recipient_division_code == "371402" and shipment.status == "created" and shipment.waybill is None
    assert shipment.due.isoformat() == "2026-12-15"
    assert await _orders(express) == 1


async def test_one_collect_shipment_per_pickup_id(express):
    assert await consume(express, pickup_requested(pickup_id="pk_1"))
    assert await consume(express, pickup_requested(pickup_id="pk_1"))  # same pickup, new event id
    assert await consume(express, pickup_requested(pickup_id="pk_2"))  # a second pickup for the case
    assert await consume(express, delivery_requested(case_no="CF20261201000002"))  # and its result
    shipments = await _shipments(express)
    assert sorted((s.kind, s.pickup_id) for s in shipments) == [("collect", "pk_1"), ("collect", "pk_2"),
                                                                ("deliver", None)]  # fmt: skip
    collect = next(s for s in shipments if s.pickup_id == "pk_1")
    assert collect.sender_name == "张三" and collect.recipient_name == "SCJGJ"
    assert json.loads(collect.items) == ["营业执照原件", "身份证原件"]
    assert await _orders(express) == 3


def test_requests_are_fetched_one_at_a_time_and_events_relayed_without_a_long_linger():
    """nats-py holds a multi-message fetch's first message until the batch fills or 1 s passes
    (docs/benchmarks.md, Express): express's consumers fetch one message at a time."""
    from types import SimpleNamespace

    from services.express.main import consumers_for
    from services.express.settings import Settings

    settings = Settings(database_url="sqlite+aiosqlite://", carrier_secret="x")
    app = SimpleNamespace(state=SimpleNamespace(bus=None, sessionmaker=None, express=None))
    consumers = consumers_for(settings)(app)
    assert [c.durable for c in consumers] == ["express-delivery-requested", "express-pickup-requested"]
    assert all(c.batch == 1 for c in consumers)
    assert settings.relay_linger_seconds <= 0.02
    assert [c.batch for c in consumers_for(settings.model_copy(update={"consumer_batch": 20}))(app)] == [20, 20]
