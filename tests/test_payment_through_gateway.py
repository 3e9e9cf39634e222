"""J10's payment behind the gateway, over real sockets: the payer opens a payment with a token, pays
at the sandbox's cashier, and the sandbox's signed notifications reach payment through the
gateway's PUBLIC route (payment checks the signature itself); a forged one is refused there too; a
denial refunds through the same route."""

from __future__ import annotations

import asyncio
import time

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.tests.conftest import JwksServer, gateway_settings, running_gateway
from kit.migrate import upgrade
from kit.signing import new_nonce
from kit.testing import serve
from services.payment.domain import signature
from services.payment.main import create_app
from services.payment.refunds import RefundWorker
from services.payment.sandbox_gateway import create_app as create_sandbox
from services.payment.tests.conftest import (
    TOKENS,
    consume,
    ended,
    fees_due,
    notice_body,
    person,
    published,
    sandbox_settings,
    settings_for,
)

NOTIFY = "/api/v1/payment/notifications/sandbox"


class _Platform:  # what conftest.consume and published need
    def __init__(self, app) -> None:
        self.app = app


async def test_a_fee_is_paid_and_refunded_through_the_gateway(tmp_path, nats_server):
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'payment.db'}"
    await asyncio.to_thread(upgrade, "services.payment", database_url)
    jwks = await JwksServer([TOKENS]).start()  # type: ignore[list-item]
    sandbox_app = create_sandbox(sandbox_settings())
    try:
        async with serve(sandbox_app) as sandbox_url:
            sandbox_app.state.sandbox.settings.public_url = sandbox_url
            settings = settings_for(database_url, nats_server.url, gateway_url=sandbox_url)
            app = create_app(settings, key_fetcher=TOKENS.fetch_keys)
            async with serve(app) as payment_url:
                gateway = gateway_settings(payment_url, jwks.url, upstreams={"payment": payment_url},
                                           read_timeout_seconds=10, nats_enabled=False)  # fmt: skip
                async with running_gateway(gateway) as (_, base), httpx.AsyncClient(timeout=10) as client:
                    settings.notify_url = base + NOTIFY  # the gateway's public route, as in platform.toml
                    platform = _Platform(app)
                    await consume(platform, fees_due())  # type: ignore[arg-type]
                    orders = await client.get(base + "/api/v1/payment/orders", headers=person())
                    assert orders.status_code == 200, orders.text
                    (order,) = orders.json()["items"]
                    assert (await client.get(base + "/api/v1/payment/orders")).status_code == 401  # no token
                    attempt = await client.post(base + f"/api/v1/payment/orders/{order['id']}/payments",
                                                headers={**person(), "Idempotency-Key": "j10"})  # fmt: skip
                    assert attempt.status_code == 201, attempt.text
                    # The payer's client pays at the cashier (pay_url); the notice comes back via the gateway.
                    paid = await client.post(attempt.json()["pay_url"], json={"result": "success"})
                    assert paid.status_code == 200
                    await sandbox_app.state.sandbox.settle(20)
                    detail = (await client.get(base + f"/api/v1/payment/orders/{order['id']}", headers=person())).json()
                    assert detail["status"] == "paid" and detail["receipt_no"]
                    receipt = await client.get(base + f"/api/v1/payment/receipts/{detail['receipt_no']}",
                                               headers=person())  # fmt: skip
                    assert receipt.status_code == 200 and receipt.json()["amount_fen"] == 3550
                    assert len(await published(platform, "paid")) == 1  # type: ignore[arg-type]
                    # A forged notice, through the same public route: refused by payment.
                    body = notice_body(out_trade_no=attempt.json()["id"], transaction_id="4200000000999",
                                       trade_state="SUCCESS", amount={"total": 3550})  # fmt: skip
                    forged = signature.signed_headers(Ed25519PrivateKey.generate(), "test-1", body,
                                                      timestamp=int(time.time()), nonce=new_nonce())  # fmt: skip
                    refused = await client.post(base + NOTIFY, content=body,
                                                headers={"Content-Type": "application/json", **forged})  # fmt: skip
                    assert refused.status_code == 401 and refused.json()["reason"] == "bad-signature"
                    # The case is denied: the fee goes back, the refund's notice also through the gateway.
                    await consume(platform, ended("denied"))  # type: ignore[arg-type]
                    worker = RefundWorker(app.state.sessionmaker, app.state.payment.gateway, settings)
                    assert await worker.run_once() == 1
                    await sandbox_app.state.sandbox.settle(20)
                    detail = (await client.get(base + f"/api/v1/payment/orders/{order['id']}", headers=person())).json()
                    assert detail["status"] == "refunded"
                    assert len(await published(platform, "refunded")) == 1  # type: ignore[arg-type]
    finally:
        await jwks.stop()
