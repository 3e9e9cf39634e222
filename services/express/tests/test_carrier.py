"""HttpCarrier against the EMS sandbox on a real socket, and against small servers that misbehave."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kit.signing import new_nonce, signed_headers
from kit.testing import serve
from services.express.adapters.carrier import (
    CarrierUnavailable,
    HttpCarrier,
    OrderRefused,
    Party,
    SandboxCarrier,
    ShipmentOrder,
)
from services.express.domain import s10
from services.express.sandbox_ems import SandboxEmsSettings, create_app

ORDER_SECRET = "test-order-secret"


def order(reference: str = "shp-0001") -> ShipmentOrder:
    return ShipmentOrder(
        reference=reference,
        kind="deliver",
        sender=Party("杭州市市场监督管理局", "0571-87000000", "浙江省杭州市上城区解放东路18号", "330102"),
        recipient=Party("张三", "13800138000", "浙江省杭州市西湖区文三路90号", "330106"),
        note="准予行政许可决定书",
    )


def sandbox(**overrides) -> SandboxEmsSettings:
    values = dict(order_secret=ORDER_SECRET, refusal_rate=0.0, step_seconds=60, callback_url="http://127.0.0.1:9/cb")
    return SandboxEmsSettings(**{**values, **overrides})


def carrier(url: str, **overrides) -> HttpCarrier:
    return HttpCarrier(url, **{"key_id": "express", "secret": ORDER_SECRET, "timeout": 2.0, **overrides})


async def test_an_order_gets_an_ems_waybill_and_the_same_one_again():
    async with serve(create_app(sandbox(seed=7))) as url:
        ems = carrier(url)
        try:
            booked = await ems.create_order(order())
            assert s10.is_ems(booked.waybill) and booked.waybill.endswith("CN")
            assert booked.expected_delivery is not None and booked.expected_delivery.utcoffset() is not None
            again = await ems.create_order(order())  # a retry after a lost answer books nothing new
            assert again == booked
            other = await ems.create_order(order("shp-0002"))
            assert other.waybill != booked.waybill and s10.is_ems(other.waybill)
        finally:
            await ems.aclose()
    # The same seed and the same orders give the same waybills (a second sandbox).
    async with serve(create_app(sandbox(seed=7))) as url:
        ems = carrier(url)
        assert (await ems.create_order(order())).waybill == booked.waybill
        await ems.aclose()


async def test_a_refusal_is_final_and_names_field_and_rule():
    async with serve(create_app(sandbox(refusal_rate=1.0))) as url:
        ems = carrier(url)
        with pytest.raises(OrderRefused) as refused:
            await ems.create_order(order())
        assert refused.value.rule in {"service_area", "unreachable", "pickup_area"}
        assert refused.value.field in {"recipient.address", "recipient.phone", "sender.address"}
        assert refused.value.reason
        with pytest.raises(OrderRefused):  # the same reference stays refused
            await ems.create_order(order())
        await ems.aclose()


async def test_a_malformed_order_is_refused_naming_the_field():
    bad = ShipmentOrder("shp-1", "deliver", order().sender, Party("张三", "not a phone", "某地"))
    async with serve(create_app(sandbox())) as url:
        ems = carrier(url)
        with pytest.raises(OrderRefused) as refused:
            await ems.create_order(bad)
        assert refused.value.field == "recipient.phone"
        await ems.aclose()


async def test_outage_wrong_key_and_no_connection_are_unavailable():
    app = create_app(sandbox(outage=True))
    async with serve(app) as url:
        ems = carrier(url)
        with pytest.raises(CarrierUnavailable, match="HTTP 503"):
            await ems.create_order(order())
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.put("/sandbox/outage", json={"outage": False})).json() == {"outage": False}
            assert (await client.get("/readyz")).status_code == 200
        assert s10.is_ems((await ems.create_order(order())).waybill)
        wrong = carrier(url, secret="not-the-secret")
        with pytest.raises(CarrierUnavailable, match="HTTP 401"):
            await wrong.create_order(order("shp-9"))
        await ems.aclose()
        await wrong.aclose()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed_port = sock.getsockname()[1]
    sock.close()
    nobody = carrier(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(CarrierUnavailable, match="ConnectError"):
        await nobody.create_order(order())
    await nobody.aclose()


async def test_the_sandbox_checks_signatures_and_refuses_a_replay():
    async with serve(create_app(sandbox())) as url, httpx.AsyncClient(base_url=url) as client:
        body = json.dumps(order().body()).encode()
        headers = signed_headers("express", ORDER_SECRET, "POST", "/orders", body, nonce=new_nonce(),
                                 timestamp=int(time.time()))  # fmt: skip
        first = await client.post("/orders", content=body, headers=headers)
        assert first.status_code == 201, first.text
        replay = await client.post("/orders", content=body, headers=headers)
        assert replay.status_code == 401 and replay.json()["reason"] == "replay"
        unsigned = await client.post("/orders", content=body)
        assert unsigned.status_code == 401 and unsigned.json()["reason"] == "missing"
        tampered = await client.post("/orders", content=body.replace(b"shp-0001", b"shp-0002"),
                                     headers={**headers, "X-Nonce": new_nonce()})  # fmt: skip
        assert tampered.status_code == 401 and tampered.json()["reason"] == "bad-signature"
        assert (await client.get("/orders/EA123456789CN")).status_code == 404
        assert (await client.get(f"/orders/{first.json()['waybill']}")).json()["reference"] == "shp-0001"


def misbehaving(status: int, body: object = None, delay: float = 0.0) -> Starlette:
    async def endpoint(request):
        await asyncio.sleep(delay)
        if body is None:
            return Response(status_code=status)
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/orders", endpoint, methods=["POST"])])


@pytest.mark.parametrize(
    ("app", "error", "match"),
    [
        (misbehaving(500), CarrierUnavailable, "HTTP 500"),
        (misbehaving(502, {"title": "bad gateway"}), CarrierUnavailable, "HTTP 502"),
        (misbehaving(429), CarrierUnavailable, "HTTP 429"),
        (misbehaving(201, {"waybill": "EA123456789CN"}), CarrierUnavailable, "not UPU S10"),
        (misbehaving(201, {"waybill": "ea123456785cn"}), CarrierUnavailable, "not UPU S10"),
        (misbehaving(201, {"no": "waybill"}), CarrierUnavailable, "without a waybill"),
        (misbehaving(201, ["EA123456785CN"]), CarrierUnavailable, "without a waybill"),
        (misbehaving(201, {"waybill": "EA123456785CN", "expected_delivery": "2026-12-04T12:00:00"}),
         CarrierUnavailable, "timezone"),
        (misbehaving(400), OrderRefused, "HTTP 400"),
        (misbehaving(409, {"detail": "duplicate order"}), OrderRefused, "duplicate order"),
    ],
)  # fmt: skip
async def test_every_kind_of_answer_maps_to_one_outcome(app, error, match):
    async with serve(app, lifespan="off") as url:
        ems = carrier(url)
        with pytest.raises(error, match=match):
            await ems.create_order(order())
        await ems.aclose()


async def test_a_slow_carrier_is_unavailable_within_the_timeout():
    async with serve(misbehaving(201, {"waybill": "EA123456785CN"}, delay=1.0), lifespan="off") as url:
        ems = carrier(url, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(CarrierUnavailable, match="no answer within 0.3 s"):
            await ems.create_order(order())
        assert time.monotonic() - started < 0.9
        await ems.aclose()


async def test_the_in_memory_carrier():
    ems = SandboxCarrier(seed=3, fail_first=1, refuse={"shp-refused"})
    with pytest.raises(CarrierUnavailable):
        await ems.create_order(order())
    booked = await ems.create_order(order())
    assert s10.is_ems(booked.waybill) and await ems.create_order(order()) == booked
    with pytest.raises(OrderRefused) as refused:
        await ems.create_order(order("shp-refused"))
    assert refused.value.rule == "service_area"
    ems.down = True
    with pytest.raises(CarrierUnavailable):
        await ems.create_order(order("shp-3"))
    assert SandboxCarrier(seed=3).orders == {} and len(ems.calls) == 5
