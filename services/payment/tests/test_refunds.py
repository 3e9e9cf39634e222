"""A case's end refunds a paid order through the gateway (its refund notification finishes it):
payment.order.refunded once, whatever is redelivered or duplicated."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.payment.adapters.gateway import GatewayUnavailable
from services.payment.models import Refund
from services.payment.refunds import RefundWorker
from services.payment.tests.conftest import (
    cashier,
    consume,
    count,
    ended,
    fees_due,
    notice_body,
    notify,
    published,
    start_payment,
    the_order,
)


async def _paid(platform, **fees):
    await consume(platform, fees_due(**fees))
    order = await the_order(platform)
    attempt = await start_payment(platform, order["id"])
    await cashier(platform, attempt["pay_url"])
    await platform.settle()
    return await the_order(platform)


@pytest.mark.parametrize("outcome", ["denied", "withdrawn", "rejected"])
async def test_an_outcome_the_matter_names_refunds_once(payment, outcome):
    order = await _paid(payment)
    event = ended(outcome)
    assert await consume(payment, event)
    assert not await consume(payment, event)  # redelivered
    assert await consume(payment, ended(outcome))  # the same end under another event id
    assert (await the_order(payment))["status"] == "refunding"
    assert await count(payment, Refund) == 1
    assert await payment.refunds() == 1
    refunded = await the_order(payment)
    assert (refunded["status"], refunded["outcome"]) == ("refunded", outcome)
    (event_data,) = await published(payment, "refunded")
    assert (event_data["order_id"], event_data["amount_fen"], event_data["reason"]) == (order["id"], 3550, outcome)
    known = (await payment.client.get(f"{payment.sandbox_url}/transactions/{order['payments'][0]['id']}")).json()
    assert known["refunded_fen"] == 3550
    # The refund notice again (the gateway retrying under the same refund): nothing more.
    refund = refunded["refunds"][0]
    again = await notify(payment, notice_body("REFUND.SUCCESS", out_refund_no=refund["id"], refund_status="SUCCESS",
                                              amount={"refund": 3550, "total": 3550}))  # fmt: skip
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(await published(payment, "refunded")) == 1 and len(await published(payment, "paid")) == 1
    assert await payment.refunds() == 0


async def test_an_outcome_the_matter_does_not_name_keeps_the_payment(payment):
    await _paid(payment, refund_on=("withdrawn",))
    await consume(payment, ended("denied"))
    order = await the_order(payment)
    assert (order["status"], order["outcome"]) == ("paid", None)
    assert await count(payment, Refund) == 0 and await published(payment, "refunded") == []


async def test_a_gateway_that_is_away_is_asked_again_later(payment):
    await _paid(payment)
    await consume(payment, ended("withdrawn"))
    gateway = payment.app.state.payment.gateway
    real = gateway.refund

    async def away(request):
        raise GatewayUnavailable("HTTP 503")

    gateway.refund = away
    assert await payment.worker.run_once() == 1
    (refund,) = (await the_order(payment))["refunds"]
    assert refund["status"] == "pending"
    assert await payment.worker.run_once() == 0  # not due yet: backoff
    gateway.refund = real
    payment.worker.clock = lambda: datetime.now(UTC) + timedelta(hours=1)  # the backoff is over
    assert await payment.worker.run_once() == 1
    await payment.settle()
    assert (await the_order(payment))["status"] == "refunded"


async def test_an_abnormal_refund_is_recorded_for_an_operator(payment):
    await _paid(payment)
    await consume(payment, ended("denied"))
    (refund,) = (await the_order(payment))["refunds"]
    answer = await notify(payment, notice_body("REFUND.ABNORMAL", out_refund_no=refund["id"], refund_status="ABNORMAL"))
    assert answer.status_code == 200 and answer.json()["outcome"] == "refund_failed"
    order = await the_order(payment)
    assert order["status"] == "refunding" and order["refunds"][0]["status"] == "failed"
    assert await published(payment, "refunded") == []


async def test_two_replicas_ask_the_gateway_once_and_a_dead_ones_claim_comes_back(payment):
    """A worker killed after claiming the refund (before asking) holds it until its claim ends;
    meanwhile and afterwards two workers at once ask the gateway once between them."""
    await _paid(payment)
    await consume(payment, ended("withdrawn"))
    gateway = payment.app.state.payment.gateway
    real, asked = gateway.refund, []

    async def counted(request):
        asked.append(request.out_refund_no)
        return await real(request)

    gateway.refund = counted
    maker, settings = payment.app.state.sessionmaker, payment.app.state.payment.settings
    dead = RefundWorker(maker, gateway, settings)
    assert len(await dead._claim(datetime.now(UTC))) == 1  # noqa: SLF001 - claimed, then the process died
    later = datetime.now(UTC) + timedelta(seconds=dead.claim_seconds + 1)
    now_workers = [RefundWorker(maker, gateway, settings) for _ in range(2)]
    assert sum(await asyncio.gather(*(w.run_once() for w in now_workers))) == 0  # still the dead one's
    later_workers = [RefundWorker(maker, gateway, settings, clock=lambda: later) for _ in range(2)]
    assert sum(await asyncio.gather(*(w.run_once() for w in later_workers))) == 1
    await payment.settle()
    assert len(asked) == 1 and (await the_order(payment))["status"] == "refunded"
    assert len(await published(payment, "refunded")) == 1
