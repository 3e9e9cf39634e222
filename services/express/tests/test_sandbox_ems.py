"""The EMS sandbox's tracking push, received on a real socket by an app that verifies signatures:
signed callbacks, duplicates and reorders when the rates say so, retries while the receiver fails,
and every journey reaching its final status through the tracking rule."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

import httpx

from kit.testing import serve
from services.express.adapters.carrier import HttpCarrier, Party, ShipmentOrder
from services.express.domain import s10
from services.express.domain.tracking import EMS_CODES, FINAL, Tracking, TrackingEvent, advance, ems_status
from services.express.sandbox_ems import EmsSandbox, SandboxEmsSettings, create_app, new_ems_waybill, plan_journey
from services.express.tests.sockets import Receiver

ORDER_SECRET = "test-order-secret"
PARTNER_SECRET = "test-partner-secret"


def order(reference: str) -> ShipmentOrder:
    return ShipmentOrder(reference, "collect", Party("张三", "13800138000", "浙江省杭州市西湖区文三路90号"),
                         Party("杭州市市场监督管理局", "0571-87000000", "浙江省杭州市上城区解放东路18号"))  # fmt: skip


def settings(callback_url: str, **overrides) -> SandboxEmsSettings:
    values = dict(
        order_secret=ORDER_SECRET, partner_secret=PARTNER_SECRET, callback_url=callback_url, refusal_rate=0.0,
        step_seconds=0.03, duplicate_rate=0.0, reorder_rate=0.0, late_seconds=0.0, retry_base_seconds=0.02,
        retry_max_seconds=0.2, seed=11,
    )  # fmt: skip
    return SandboxEmsSettings(**{**values, **overrides})


def tracked(callbacks: list[dict]) -> Tracking:
    """Apply callbacks in arrival order, as express will."""
    tracking = Tracking()
    for body in callbacks:
        event = TrackingEvent(body["event_id"], ems_status(body["code"]), datetime.fromisoformat(body["at"]),
                              code=body["code"], text=body["text"], signed_by=body.get("signed_by"))  # fmt: skip
        tracking = advance(tracking, event).tracking
    return tracking


async def run_orders(receiver: Receiver, count: int, **overrides) -> tuple[list[dict], object]:
    """Book ``count`` orders with the sandbox pushing to ``receiver``; wait for every send."""
    async with serve(receiver.app()) as receiver_url:
        sandbox_settings = settings(receiver_url + "/api/v1/express/callbacks/ems", **overrides)
        app = create_app(sandbox_settings)
        async with serve(app) as url:
            ems = HttpCarrier(url, key_id="express", secret=ORDER_SECRET)
            booked = [await ems.create_order(order(f"shp-{n}")) for n in range(count)]
            await ems.aclose()
            await app.state.sandbox.settle(timeout=30)
            async with httpx.AsyncClient(base_url=url) as client:
                shown = [(await client.get(f"/orders/{b.waybill}")).json() for b in booked]
    return shown, booked


async def test_callbacks_arrive_signed_and_every_journey_ends_final():
    receiver = Receiver(PARTNER_SECRET)
    shown, booked = await run_orders(receiver, 6, failure_rate=0.5, return_rate=0.2)
    assert receiver.rejected == []
    assert {c["partner"] for c in receiver.accepted} == {"ems"}
    for order_shown in shown:
        waybill = order_shown["waybill"]
        assert s10.is_ems(waybill) and order_shown["done"]
        callbacks = [c for c in receiver.accepted if c["waybill"] == waybill]
        # Without duplicates: every event once, codes as planned. (Sends run concurrently, so two
        # events a step apart may still cross on the wire: order is checked by event time.)
        assert len({c["event_id"] for c in callbacks}) == len(callbacks)
        by_time = sorted(callbacks, key=lambda c: datetime.fromisoformat(c["at"]))
        assert [c["code"] for c in by_time] == order_shown["plan"]
        assert [c["text"] for c in callbacks] == [EMS_CODES[c["code"]].text for c in callbacks]
        assert all(datetime.fromisoformat(c["at"]).utcoffset() is not None for c in callbacks)
        tracking = tracked(callbacks)
        assert tracking.status in FINAL and tracking.status == ems_status(order_shown["plan"][-1])
        if tracking.status == "signed_for":
            assert tracking.current.signed_by == "杭" + "*" * 9  # the recipient (the department), masked
    assert {s["plan"][-1] for s in shown} <= {"40", "60"}


async def test_duplicates_and_reorders_when_the_rates_say_so_end_in_the_same_place():
    receiver = Receiver(PARTNER_SECRET)
    shown, _ = await run_orders(receiver, 4, duplicate_rate=0.5, reorder_rate=0.5, late_seconds=0.02)
    assert receiver.rejected == []
    ids = Counter(c["event_id"] for c in receiver.accepted)
    assert any(n > 1 for n in ids.values()), "duplicate_rate 0.5 sent no duplicate"
    reordered = 0
    for order_shown in shown:
        callbacks = [c for c in receiver.accepted if c["waybill"] == order_shown["waybill"]]
        assert {c["event_id"] for c in callbacks} == {e["event_id"] for e in order_shown["events"]}
        arrival = list(dict.fromkeys(c["event_id"] for c in callbacks))
        reordered += arrival != [e["event_id"] for e in order_shown["events"]]
        in_order = tracked(order_shown["events"])
        assert tracked(callbacks) == in_order
        assert in_order.status == ems_status(order_shown["plan"][-1])
    assert reordered > 0, "reorder_rate 0.5 reordered nothing"


async def test_the_sandbox_retries_while_the_callback_url_fails():
    receiver = Receiver(PARTNER_SECRET, fail_first=5)
    shown, _ = await run_orders(receiver, 1, failure_rate=0.0, return_rate=0.0)
    assert receiver.failed == 5 and receiver.rejected == []  # every retry carried a fresh nonce
    [order_shown] = shown
    assert sum(s["attempts"] for s in order_shown["sends"]) == len(order_shown["sends"]) + 5
    assert all(s["delivered_at"] and not s["gave_up"] for s in order_shown["sends"])
    assert tracked(receiver.accepted).status == "signed_for"


async def test_a_wrong_partner_secret_is_refused_and_the_sandbox_gives_up():
    receiver = Receiver("another-secret")
    shown, _ = await run_orders(receiver, 1, callback_max_attempts=3, failure_rate=0.0, return_rate=0.0)
    assert receiver.accepted == [] and set(receiver.rejected) == {"bad-signature"}
    assert all(s["gave_up"] and s["attempts"] == 3 and s["last_error"] == "HTTP 401" for s in shown[0]["sends"])


def test_journeys_follow_the_plan_rates():
    rng = random.Random(5)
    plans = [plan_journey(rng, failure_rate=0.3, return_rate=0.1) for _ in range(2000)]
    ends = Counter(plan[-1] for plan in plans)
    assert set(ends) == {"40", "60"} and 140 <= ends["60"] <= 260  # ~10 %
    with_failure = sum("50" in plan and plan[-1] == "40" for plan in plans)
    assert 450 <= with_failure <= 650  # ~0.9 × 0.3 = 27 %
    for plan in plans:
        assert plan[:2] == ["10", "20"] and all(code in EMS_CODES for code in plan)
        # a failed attempt is followed by another round or the return, never by a delivery directly
        assert all(plan[i + 1] in {"30", "60"} for i, code in enumerate(plan) if code == "50")


def test_without_a_seed_each_start_hands_out_other_waybills():
    """`make run` on yesterday's data: express already holds the first start's waybills (unique),
    so a restarted sandbox must not draw the same ones again."""
    first, second = (EmsSandbox(SandboxEmsSettings()) for _ in range(2))
    drawn = [new_ems_waybill(sandbox._random, taken=set()) for sandbox in (first, second)]
    assert first.settings.seed != second.settings.seed and drawn[0] != drawn[1]
    assert all(s10.is_valid(waybill) for waybill in drawn)
    seeded = [new_ems_waybill(EmsSandbox(SandboxEmsSettings(seed=11))._random, taken=set()) for _ in range(2)]
    assert seeded[0] == seeded[1]  # a set seed still reproduces
