"""The gateway sandbox on a real socket: payment's signed requests, the cashier, refunds, and
notifications that are signed, late, duplicated and retried until a receiver answers 2xx."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kit.testing import serve
from services.payment.adapters.gateway import (
    GatewayRefused,
    GatewayUnavailable,
    HttpGateway,
    RefundRequest,
    TransactionRequest,
)
from services.payment.domain import signature
from services.payment.sandbox_gateway import create_app
from services.payment.tests.conftest import MERCHANT_SECRET, sandbox_settings


@dataclass
class Receiver:
    """payment's notify endpoint as far as signatures go: verifies with the sandbox's published key,
    refuses replayed nonces, answers the first ``fail_first`` with 503."""

    keys: dict[str, Any] = field(default_factory=dict)
    fail_first: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    failed: int = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/notify", self._notify, methods=["POST"])])

    async def _notify(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            verified = signature.verify(self.keys, request.headers, body, now=time.time(), max_age=300)
        except signature.NotificationRejected as rejected:
            return JSONResponse({"reason": rejected.reason}, status_code=401)
        if verified.nonce in self.nonces:
            return JSONResponse({"reason": "replay"}, status_code=401)
        self.nonces.add(verified.nonce)
        if self.fail_first > 0:
            self.fail_first -= 1
            self.failed += 1
            return JSONResponse({"code": "FAIL"}, status_code=503)
        self.accepted.append(json.loads(body))
        return JSONResponse({"code": "SUCCESS"})


def gateway(url: str, **changes) -> HttpGateway:
    return HttpGateway(url, **{"name": "sandbox", "merchant_id": "payment", "secret": MERCHANT_SECRET,
                               "timeout": 5.0, **changes})  # fmt: skip


def transaction(out_trade_no: str = "pay000001", amount: int = 3550, notify_url: str = "http://127.0.0.1:9/x"):
    return TransactionRequest(out_trade_no, "CF1 行政事业性收费", amount, notify_url, 30)


async def test_transactions_need_payments_signature_and_answer_a_retry_alike():
    async with serve(create_app(sandbox_settings())) as url:
        unsigned = await httpx.AsyncClient().post(f"{url}/transactions", json={"out_trade_no": "pay000001"})
        assert unsigned.status_code == 401
        with pytest.raises(GatewayUnavailable):  # our secret is wrong: an operator fixes it, not the payer
            await gateway(url, secret="wrong").create_transaction(transaction())
        ours = gateway(url)
        opened = await ours.create_transaction(transaction())
        assert opened.pay_url.endswith(f"/cashier/{opened.prepay_id}") and opened.expires_at is not None
        assert await ours.create_transaction(transaction()) == opened
        with pytest.raises(GatewayRefused) as refused:
            await ours.create_transaction(transaction(amount=1))
        assert refused.value.rule is None or refused.value.rule == "out_trade_no"
        with pytest.raises(GatewayRefused) as invalid:
            await ours.create_transaction(transaction(out_trade_no="x"))
        assert invalid.value.field == "out_trade_no"
        await ours.aclose()
    with pytest.raises(GatewayUnavailable):  # nobody listening
        await gateway(url).create_transaction(transaction())


async def test_a_payment_is_notified_signed_retried_until_taken_and_refunded_with_its_own_notice():
    receiver = Receiver(fail_first=2)
    app = create_app(sandbox_settings())
    async with serve(receiver.app()) as receiver_url, serve(app) as url:
        app.state.sandbox.settings.public_url = url
        keys = (await httpx.AsyncClient().get(f"{url}/keys")).json()
        receiver.keys = {serial: signature.load_public_key(text) for serial, text in keys.items()}
        ours = gateway(url)
        opened = await ours.create_transaction(transaction(notify_url=f"{receiver_url}/notify"))
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/cashier/{opened.prepay_id}")).json()["amount_fen"] == 3550
            paid = (await client.post(opened.pay_url, json={"result": "success"})).json()
            assert paid["state"] == "SUCCESS" and len(paid["transaction_id"]) == 28
            again = await client.post(opened.pay_url, json={"result": "success"})
            assert again.status_code == 409
            assert (await client.post(f"{url}/cashier/nope", json={"result": "success"})).status_code == 404
            bad = await client.post(opened.pay_url, json={"result": "maybe"})
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "result"
        with pytest.raises(GatewayRefused) as too_much:
            await ours.refund(RefundRequest("rfd000001", "pay000001", 3551, "denied", f"{receiver_url}/notify"))
        assert too_much.value.field == "amount_fen"
        accepted = await ours.refund(RefundRequest("rfd000001", "pay000001", 3550, "denied", f"{receiver_url}/notify"))
        assert accepted.status == "PROCESSING"
        again = await ours.refund(RefundRequest("rfd000001", "pay000001", 3550, "denied", "http://x/y"))
        assert again.refund_id == accepted.refund_id  # the same refund (by then perhaps SUCCESS), not a second
        await ours.aclose()
        await _settled(url)
    assert receiver.failed == 2
    kinds = [n["event_type"] for n in receiver.accepted]
    assert kinds == ["TRANSACTION.SUCCESS", "REFUND.SUCCESS"]
    success, refund = receiver.accepted
    assert (
        success["resource"]["amount"]["total"] == 3550
        and success["resource"]["transaction_id"] == paid["transaction_id"]
    )
    assert refund["resource"]["out_trade_no"] == "pay000001" and refund["resource"]["amount"]["refund"] == 3550


async def _settled(url: str) -> None:
    """Wait until the sandbox has delivered (or given up on) every notification."""
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            known = (await client.get(f"{url}/transactions/pay000001")).json()
            refund = (await client.get(f"{url}/refunds/rfd000001")).json()
            sends = [s for n in known["notices"] + refund["notices"] for s in n["sends"]]
            if len(sends) >= 2 and all(s["delivered_at"] or s["gave_up"] for s in sends):
                return
            await _sleep()
    raise AssertionError("notifications not delivered")


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.05)  # polling the sandbox's record, nothing else to wait on


async def test_duplicates_carry_the_same_id_with_fresh_nonces():
    receiver = Receiver()
    app = create_app(sandbox_settings(duplicate_rate=1.0))
    async with serve(receiver.app()) as receiver_url, serve(app) as url:
        app.state.sandbox.settings.public_url = url
        receiver.keys = {"test-1": signature.load_public_key(signature.public_text(app.state.sandbox.key))}
        ours = gateway(url)
        opened = await ours.create_transaction(transaction(notify_url=f"{receiver_url}/notify"))
        async with httpx.AsyncClient() as client:
            await client.post(opened.pay_url, json={"result": "fail"})
        await app.state.sandbox.settle(10)
        await ours.aclose()
    assert [n["id"] for n in receiver.accepted] == [receiver.accepted[0]["id"]] * 2
    assert receiver.accepted[0]["event_type"] == "TRANSACTION.FAIL" and len(receiver.nonces) == 2
