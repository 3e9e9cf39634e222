"""Orders from caseflow's fees_due: one per case, revisions, redeliveries, who reads them, paying
starts at the gateway with the order's amount and an Idempotency-Key."""

from __future__ import annotations

from services.payment.models import Order, Payment
from services.payment.tests.conftest import (
    LI_SI,
    ZHANG_SAN,
    consume,
    count,
    ended,
    fees_due,
    officer,
    person,
    start_payment,
    the_order,
)


async def test_fees_open_one_order_and_a_higher_revision_replaces_its_items(payment):
    first = fees_due()
    assert await consume(payment, first)
    assert not await consume(payment, first)  # redelivered: nothing twice
    assert await consume(payment, fees_due())  # the same fees under another event id: still one order
    order = await the_order(payment)
    assert await count(payment, Order) == 1
    assert (order["status"], order["amount_fen"], order["revision"], order["payer"]) == ("open", 3550, 1, ZHANG_SAN)
    assert [i["item"] for i in order["items"]] == ["食品经营许可证工本费", "检验检测费"]
    assert await consume(payment, fees_due(revision=3, items=[("评审费", 80000)]))
    assert await consume(payment, fees_due(revision=2, items=[("older", 1)]))  # late, lower: ignored
    order = await the_order(payment)
    assert (order["amount_fen"], order["revision"], order["latest_revision"]) == (80000, 3, 3)
    assert order["items"] == [{"item": "评审费", "amount_fen": 80000, "basis": None}]


async def test_who_reads_an_order(payment):
    await consume(payment, fees_due())
    order = await the_order(payment)
    client, path = payment.client, f"/orders/{order['id']}"
    assert (await client.get(path, headers=officer("SCJGJ"))).json()["payer"] == ZHANG_SAN
    assert (await client.get(path, headers=person(LI_SI))).status_code == 404
    assert (await client.get(path, headers=officer("BDCDJ"))).status_code == 404
    supervised = await client.get(path, headers=officer("JXJ", "supervisor"))
    assert supervised.status_code == 200 and supervised.json()["payer"] == "1101**********002X"
    assert (await client.get(path, headers=person(ZHANG_SAN, act={"sub": LI_SI}, scope="payment"))).status_code == 200
    outside = await client.get(path, headers=person(ZHANG_SAN, act={"sub": LI_SI}, scope="licence"))
    assert outside.status_code == 404  # like express: outside the mandate, the order is not there
    enterprise = await client.get("/orders", headers=person(LI_SI))
    assert enterprise.json()["total"] == 0  # another citizen's list is empty
    assert (await client.get("/orders", headers=officer("SCJGJ"))).json()["total"] == 1
    assert (await client.get(path)).status_code == 401


async def test_paying_opens_a_transaction_with_the_orders_amount_once_per_key(payment):
    await consume(payment, fees_due())
    order = await the_order(payment)
    path = f"/orders/{order['id']}/payments"
    assert (await payment.client.post(path, headers=person())).status_code == 428
    bad = await payment.client.post(path, headers={**person(), "Idempotency-Key": "a b"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "header.Idempotency-Key"
    # An amount in the body is nobody's business: the order's amount is charged.
    made = await payment.client.post(path, json={"amount_fen": 1}, headers={**person(), "Idempotency-Key": "k-1"})
    assert made.status_code == 201, made.text
    attempt = made.json()
    assert attempt["amount_fen"] == 3550 and attempt["status"] == "created"
    assert attempt["pay_url"] == f"{payment.sandbox_url}/cashier/{attempt['prepay_id']}"
    known = (await payment.client.get(f"{payment.sandbox_url}/transactions/{attempt['id']}")).json()
    assert known["amount_fen"] == 3550 and known["state"] == "NOTPAY"
    again = await payment.client.post(path, headers={**person(), "Idempotency-Key": "k-1"})
    assert again.status_code == 200 and again.json()["id"] == attempt["id"]
    assert (await payment.client.post(path, headers={**officer("SCJGJ"), "Idempotency-Key": "k-2"})).status_code == 403
    assert (await payment.client.post(path, headers={**person(LI_SI), "Idempotency-Key": "k-2"})).status_code == 404
    assert await count(payment, Payment) == 1


async def test_a_case_that_ended_unpaid_closes_its_order_and_it_cannot_be_paid(payment):
    await consume(payment, fees_due())
    await consume(payment, ended("withdrawn"))
    order = await the_order(payment)
    assert (order["status"], order["outcome"]) == ("closed", "withdrawn")
    refused = await payment.client.post(f"/orders/{order['id']}/payments", headers={**person(), "Idempotency-Key": "k"})
    assert refused.status_code == 409 and refused.json()["errors"][0]["field"] == "order.status"
    # The end arriving before the fees (another durable, a retry): the order opens closed.
    await consume(payment, ended("denied", "CF20261201000002"))
    await consume(payment, fees_due("CF20261201000002"))
    late = await the_order(payment, "CF20261201000002")
    assert (late["status"], late["outcome"]) == ("closed", "denied")


async def test_a_revision_after_payment_is_recorded_not_applied(payment):
    from services.payment.tests.conftest import cashier

    await consume(payment, fees_due())
    order = await the_order(payment)
    attempt = await start_payment(payment, order["id"])
    await cashier(payment, attempt["pay_url"])
    await payment.settle()
    await consume(payment, fees_due(revision=2, items=[("评审费", 99)]))
    order = await the_order(payment)
    assert (order["status"], order["amount_fen"], order["revision"], order["latest_revision"]) == ("paid", 3550, 1, 2)
