"""The gateway's notifications through the sandbox over real HTTP: paid once with an e-receipt;
duplicated, late, failed and mismatched notices; forged ones refused with nothing stored."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from services.payment.domain import receipts
from services.payment.models import Notification, NotificationNonce, Order, Payment, Receipt, Refund
from services.payment.tests.conftest import (
    LI_SI,
    RECEIPT_KEY,
    cashier,
    consume,
    count,
    ended,
    fees_due,
    notice_body,
    notify,
    officer,
    person,
    published,
    start_payment,
    the_order,
)


async def _open(platform, case_no: str = "CF20261201000001", key: str = "k-1"):
    await consume(platform, fees_due(case_no))
    order = await the_order(platform, case_no)
    return order, await start_payment(platform, order["id"], key)


async def _rows(platform, model):
    async with platform.app.state.sessionmaker() as session:
        return list((await session.execute(select(model))).scalars())


async def test_a_paid_order_publishes_once_and_has_an_e_receipt(payment):
    order, attempt = await _open(payment)
    paid = await cashier(payment, attempt["pay_url"])
    await payment.settle()
    order = await the_order(payment)
    assert order["status"] == "paid" and order["payments"][0]["transaction_id"] == paid["transaction_id"]
    (event,) = await published(payment, "paid")
    assert (event["order_id"], event["case_no"], event["amount_fen"]) == (order["id"], order["case_no"], 3550)
    assert event["transaction_id"] == paid["transaction_id"] and event["receipt_no"] == order["receipt_no"]
    assert event["items"] == [
        {"item": "食品经营许可证工本费", "amount_fen": 1000},
        {"item": "检验检测费", "amount_fen": 2550},
    ]
    receipt = (await payment.client.get(f"/receipts/{order['receipt_no']}", headers=person())).json()
    code = f"370101{datetime.now(receipts.BEIJING).year % 100:02d}"  # 山东, 非税收入通用票据, this year
    assert receipt["code"] == code and receipt["number"] == "0000000001"
    assert receipt["payer"] == "1101**********002X" and receipt["department_name"] == "德州市市场监督管理局"
    assert receipt["amount_fen"] == 3550 and len(receipt["items"]) == 2
    (row,) = await _rows(payment, Receipt)
    assert receipts.verify_check_code(RECEIPT_KEY.encode(), receipt["check_code"], code=row.code, number=row.number,
                                      amount_fen=3550, issued_at=row.issued_at, payer=row.payer)  # fmt: skip
    assert (await payment.client.get(f"/receipts/{order['receipt_no']}", headers=officer("SCJGJ"))).status_code == 200
    assert (await payment.client.get(f"/receipts/{order['receipt_no']}", headers=person(LI_SI))).status_code == 404
    assert (await payment.client.get(f"/receipts/{order['receipt_no']}", headers=officer("BDCDJ"))).status_code == 404
    assert (await payment.client.get(f"/receipts/{code}0000000099", headers=person())).status_code == 404
    # A second order gets the next number.
    _, other = await _open(payment, "CF20261201000002")
    await cashier(payment, other["pay_url"])
    await payment.settle()
    assert (await the_order(payment, "CF20261201000002"))["receipt_no"] == f"{code}0000000002"


async def test_a_duplicated_notice_changes_nothing(payment_duplicating):
    platform = payment_duplicating
    _, attempt = await _open(platform)
    await cashier(platform, attempt["pay_url"])
    await platform.settle()
    known = (await platform.client.get(f"{platform.sandbox_url}/transactions/{attempt['id']}")).json()
    (notice,) = known["notices"]
    assert len(notice["sends"]) == 2 and all(s["delivered_at"] for s in notice["sends"])  # both taken with 200
    assert len(await published(platform, "paid")) == 1
    assert await count(platform, Notification) == 1 and await count(platform, Receipt) == 1
    # The same transaction told again under a new notification id: still a duplicate.
    again = await notify(platform, notice_body(out_trade_no=attempt["id"], transaction_id=known["transaction_id"],
                                               trade_state="SUCCESS", amount={"total": 3550}))  # fmt: skip
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(await published(platform, "paid")) == 1 and await count(platform, Notification) == 1


async def test_a_late_payment_changes_nothing_for_the_case_and_is_refunded(payment):
    order, first = await _open(payment)
    second = await start_payment(payment, order["id"], "k-2")  # the payer opened the cashier twice
    assert second["id"] != first["id"]
    await cashier(payment, first["pay_url"])
    await payment.settle()
    before = await the_order(payment)
    await cashier(payment, second["pay_url"])
    await payment.settle()
    after = await the_order(payment)
    assert {k: after[k] for k in ("status", "receipt_no", "paid_at", "amount_fen")} == {
        k: before[k] for k in ("status", "receipt_no", "paid_at", "amount_fen")}  # fmt: skip
    late = next(p for p in after["payments"] if p["id"] == second["id"])
    assert (late["status"], late["outcome"]) == ("succeeded", "late")
    assert len(await published(payment, "paid")) == 1 and await count(payment, Receipt) == 1
    assert await payment.refunds() == 1
    after = await the_order(payment)
    (refund,) = after["refunds"]
    assert (refund["payment_id"], refund["reason"], refund["status"], refund["amount_fen"]) == (
        second["id"], "late", "succeeded", 3550)  # fmt: skip
    assert after["status"] == "paid" and await published(payment, "refunded") == []
    known = (await payment.client.get(f"{payment.sandbox_url}/transactions/{second['id']}")).json()
    assert known["refunded_fen"] == 3550
    assert await payment.refunds() == 0  # asked once


async def test_a_failed_payment_leaves_the_order_payable(payment):
    order, attempt = await _open(payment)
    assert (await cashier(payment, attempt["pay_url"], "fail"))["state"] == "PAYERROR"
    await payment.settle()
    order = await the_order(payment)
    assert order["status"] == "open" and order["payments"][0]["status"] == "failed"
    await cashier(payment, attempt["pay_url"])  # tries again at the same cashier
    await payment.settle()
    assert (await the_order(payment))["status"] == "paid"
    assert len(await published(payment, "paid")) == 1


async def test_another_amount_is_recorded_not_paid_and_refunded(payment):
    order, attempt = await _open(payment)
    await cashier(payment, attempt["pay_url"], amount_fen=1)
    await payment.settle()
    order = await the_order(payment)
    assert order["status"] == "open" and order["receipt_no"] is None
    assert order["payments"][0]["outcome"] == "amount_mismatch"
    assert await published(payment, "paid") == []
    assert await payment.refunds() == 1
    assert (await the_order(payment))["refunds"][0]["status"] == "succeeded"


async def test_two_successes_at_once_pay_the_order_once(payment):
    order, first = await _open(payment)
    second = await start_payment(payment, order["id"], "k-2")
    bodies = [notice_body(out_trade_no=a["id"], transaction_id=f"4200000000{n}", trade_state="SUCCESS",
                          amount={"total": 3550}) for n, a in enumerate((first, second))]  # fmt: skip
    answers = await asyncio.gather(*(notify(payment, body) for body in bodies))
    assert sorted(a.json()["outcome"] for a in answers) == ["late", "paid"]
    assert len(await published(payment, "paid")) == 1
    assert await count(payment, Refund) == 1 and await count(payment, Receipt) == 1


async def _nothing_stored(platform, before):
    assert await count(platform, Notification) == before[0] and await count(platform, NotificationNonce) == before[1]
    payments = await _rows(platform, Payment)
    assert all(p.status == "created" and p.transaction_id is None for p in payments)
    assert (await _rows(platform, Order))[0].status == "open" and await published(platform, "paid") == []


@pytest.mark.parametrize("forgery", ["other-key", "unknown-serial", "stale", "future", "tampered", "missing",
                                     "not-base64"])  # fmt: skip
async def test_a_forged_notice_is_refused_and_stores_nothing(payment, forgery):
    _, attempt = await _open(payment)
    body = notice_body(out_trade_no=attempt["id"], transaction_id="42000000001", trade_state="SUCCESS",
                       amount={"total": 3550})  # fmt: skip
    before = (await count(payment, Notification), await count(payment, NotificationNonce))
    if forgery == "other-key":
        answer = await notify(payment, body, key=Ed25519PrivateKey.generate())
    elif forgery == "unknown-serial":
        answer = await notify(payment, body, serial="test-2")
    elif forgery in {"stale", "future"}:
        answer = await notify(payment, body, timestamp=int(time.time()) + (-301 if forgery == "stale" else 301))
    elif forgery == "tampered":  # signed for one body, sent with another amount
        from services.payment.domain import signature
        from services.payment.tests.conftest import GATEWAY_KEY, SERIAL

        headers = signature.signed_headers(GATEWAY_KEY, SERIAL, body, timestamp=int(time.time()), nonce="n" * 20)
        answer = await payment.client.post("/notifications/sandbox", content=body.replace(b"3550", b"3551"),
                                           headers={"Content-Type": "application/json", **headers})  # fmt: skip
    elif forgery == "missing":
        answer = await payment.client.post("/notifications/sandbox", content=body,
                                           headers={"Content-Type": "application/json"})  # fmt: skip
    else:
        answer = await notify(payment, body, headers={"Pay-Signature": "%%%not base64%%%"})
    assert answer.status_code == 401, answer.text
    assert answer.json()["reason"] in {"bad-signature", "unknown-key", "stale", "missing"}
    await _nothing_stored(payment, before)


async def test_a_replayed_notice_is_refused(payment):
    _, attempt = await _open(payment)
    body = notice_body(out_trade_no=attempt["id"], transaction_id="42000000001", trade_state="FAIL",
                       amount={"total": 3550})  # fmt: skip
    fail = notice_body("TRANSACTION.FAIL", out_trade_no=attempt["id"], trade_state="PAYERROR")
    assert (await notify(payment, fail, nonce="replayed-nonce-0001")).status_code == 200
    before = (await count(payment, Notification), await count(payment, NotificationNonce))
    replay = await notify(payment, body, nonce="replayed-nonce-0001", timestamp=int(time.time()))
    assert replay.status_code == 401 and replay.json()["reason"] == "replay"
    assert (await count(payment, Notification), await count(payment, NotificationNonce)) == before


@pytest.mark.parametrize(("body", "field"), [
    (b'{"id": "x", "event_type": "TRANSACTION.SUCCESS", "resource": {"out_trade_no": "a", "amount": {"total": 1e999}}}', "body"),
    (b'{"id": "x", "event_type": "TRANSACTION.SUCCESS", "resource": {"amount": {"total": 100000000000000000000}}}', "body.resource.amount.total"),
    (b'{"id": "x", "event_type": "REFUND.NOPE", "resource": {}}', "body.event_type"),
    (b'{"id": "x\\ud800", "event_type": "TRANSACTION.FAIL", "resource": {}}', "body.id"),
    (b'{"id": "x", "event_type": "TRANSACTION.SUCCESS", "resource": {"out_trade_no": "a\\u0000"}}', "body.resource.out_trade_no"),
    (b'{"id": "x", "event_type": "TRANSACTION.SUCCESS", "resource": {"out_trade_no": "payx", "transaction_id": "1"}}', None),
    (b'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', None),
    (b'\xff\xfe', "body"),
])  # fmt: skip
async def test_hostile_signed_bodies_are_4xx_naming_the_field(payment, body, field):
    answer = await notify(payment, body)
    assert 400 <= answer.status_code < 500, answer.text
    if field:
        assert json.dumps(answer.json()).count(field) >= 1, answer.text
    assert await count(payment, Notification) == 0


async def test_a_payment_after_the_case_ended_is_late_and_refunded(payment):
    order, attempt = await _open(payment)
    await consume(payment, ended("withdrawn"))  # the applicant withdrew while the cashier was open
    await cashier(payment, attempt["pay_url"])
    await payment.settle()
    order = await the_order(payment)
    assert (order["status"], order["receipt_no"], order["payments"][0]["outcome"]) == ("closed", None, "late")
    assert await published(payment, "paid") == [] and await count(payment, Receipt) == 0
    assert await payment.refunds() == 1
    order = await the_order(payment)
    assert order["status"] == "closed" and order["refunds"][0]["status"] == "succeeded"
    assert await published(payment, "refunded") == []


async def test_a_transaction_id_told_for_two_attempts_settles_one(payment):
    order, first = await _open(payment)
    second = await start_payment(payment, order["id"], "k-2")
    for attempt in (first, second):
        answer = await notify(payment, notice_body(out_trade_no=attempt["id"], transaction_id="42000000042",
                                                   trade_state="SUCCESS", amount={"total": 3550}))  # fmt: skip
        assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "conflict"
    order = await the_order(payment)
    assert sorted(p["status"] for p in order["payments"]) == ["created", "succeeded"]
    assert len(await published(payment, "paid")) == 1
