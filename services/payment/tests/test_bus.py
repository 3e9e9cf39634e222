"""Over a real NATS: caseflow's fees_due on the CASEFLOW stream opens an order through payment's own
durable consumer; the payment's event leaves through the outbox relay onto the PAYMENT stream."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
from nats.js.api import ConsumerConfig, DeliverPolicy

from kit.bus import Bus
from kit.migrate import upgrade
from kit.testing import serve
from services.payment.main import create_app
from services.payment.sandbox_gateway import create_app as create_sandbox
from services.payment.tests.conftest import TOKENS, fees_due, person, sandbox_settings, settings_for


async def until(check, what: str, timeout: float = 15.0):
    for _ in range(int(timeout / 0.05)):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)  # polling what the consumers and the relay do in the background
    raise AssertionError(f"not seen: {what}")


async def test_fees_due_from_the_bus_open_an_order_and_paid_reaches_the_bus(database_url, nats_server):
    await asyncio.to_thread(upgrade, "services.payment", database_url)
    case_no = "CF" + uuid.uuid4().hex[:14].upper()
    caseflow = Bus(nats_server.url, name="caseflow", streams={"CASEFLOW": ["caseflow.>"]})
    await caseflow.start()
    await caseflow.wait_connected(10)
    js = await caseflow.jetstream()
    event = fees_due(case_no)
    await js.publish("caseflow.case.fees_due", event.model_dump_json().encode(), headers={"Nats-Msg-Id": event.id})
    sandbox_app = create_sandbox(sandbox_settings())
    try:
        async with serve(sandbox_app) as sandbox_url:
            sandbox_app.state.sandbox.settings.public_url = sandbox_url
            settings = settings_for(database_url, nats_server.url, gateway_url=sandbox_url, consume_case_events=True)
            app = create_app(settings, key_fetcher=TOKENS.fetch_keys)
            async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
                settings.notify_url = f"{url}/notifications/sandbox"

                async def listed():
                    items = (await client.get("/orders", params={"case_no": case_no}, headers=person())).json()
                    return items["items"][0] if items.get("items") else None

                order = await until(listed, "the order opened from the bus")
                attempt = (await client.post(f"/orders/{order['id']}/payments",
                                             headers={**person(), "Idempotency-Key": "bus"})).json()  # fmt: skip
                async with httpx.AsyncClient() as payer:  # the payer's client at the gateway's cashier
                    await payer.post(attempt["pay_url"], json={"result": "success"})
                await sandbox_app.state.sandbox.settle(20)
                subscription = await js.pull_subscribe(
                    "payment.order.paid", durable=None, stream="PAYMENT",
                    config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
                )  # fmt: skip

                async def paid_on_bus():
                    try:
                        messages = await subscription.fetch(10, timeout=0.5)
                    except TimeoutError:
                        return None
                    found = [json.loads(m.data)["data"] for m in messages]
                    return next((d for d in found if d["case_no"] == case_no), None)

                paid = await until(paid_on_bus, "payment.order.paid on the PAYMENT stream")
                assert paid["order_id"] == order["id"] and paid["amount_fen"] == 3550
    finally:
        await caseflow.close()


def test_one_durable_per_subject_and_none_when_switched_off():
    from types import SimpleNamespace

    from services.payment.main import consumers_for

    settings = settings_for("sqlite+aiosqlite://", "nats://127.0.0.1:1", consume_case_events=True)
    app = SimpleNamespace(state=SimpleNamespace(bus=None, sessionmaker=None, payment=None))
    consumers = consumers_for(settings)(app)
    assert {c.durable: c.filter_subject for c in consumers} == {
        "payment-fees-due": "caseflow.case.fees_due", "payment-withdrawn": "caseflow.case.withdrawn",
        "payment-rejected": "caseflow.case.rejected", "payment-denied": "caseflow.case.denied",
    }  # fmt: skip
    assert all(c.stream == "CASEFLOW" and c.batch == 1 and len(c.handlers) == 1 for c in consumers)
    assert consumers_for(settings.model_copy(update={"consume_case_events": False}))(app) == []
