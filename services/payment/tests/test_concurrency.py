"""Real concurrency (SQLite and PostgreSQL): the same notice twice at once, two orders paid at once
(distinct receipt numbers), the same Idempotency-Key twice at once (one attempt)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from services.payment.domain.receipts import BEIJING
from services.payment.models import Notification, Payment, Receipt
from services.payment.tests.conftest import (
    consume,
    count,
    fees_due,
    notice_body,
    notify,
    person,
    published,
    start_payment,
    the_order,
)


async def test_the_same_notice_twice_at_once_pays_once(payment):
    await consume(payment, fees_due())
    order = await the_order(payment)
    attempt = await start_payment(payment, order["id"])
    body = notice_body(out_trade_no=attempt["id"], transaction_id="42000000007", trade_state="SUCCESS",
                       amount={"total": 3550})  # fmt: skip
    answers = await asyncio.gather(*(notify(payment, body) for _ in range(4)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True]
    assert len(await published(payment, "paid")) == 1
    assert await count(payment, Notification) == 1 and await count(payment, Receipt) == 1


async def test_orders_paid_at_once_get_distinct_receipt_numbers(payment):
    bodies = []
    for n in range(4):
        case_no = f"CF2026120100010{n}"
        await consume(payment, fees_due(case_no))
        attempt = await start_payment(payment, (await the_order(payment, case_no))["id"])
        bodies.append(notice_body(out_trade_no=attempt["id"], transaction_id=f"4200000010{n}", trade_state="SUCCESS",
                                  amount={"total": 3550}))  # fmt: skip
    answers = await asyncio.gather(*(notify(payment, body) for body in bodies))
    assert [a.json()["outcome"] for a in answers] == ["paid"] * 4
    numbers = sorted(event["receipt_no"] for event in await published(payment, "paid"))
    code = f"370101{datetime.now(BEIJING).year % 100:02d}"  # 山东, 非税收入通用票据, this year
    assert numbers == [f"{code}00000000{n:02d}" for n in range(1, 5)]


async def test_the_same_key_twice_at_once_opens_one_attempt(payment):
    await consume(payment, fees_due())
    order = await the_order(payment)
    path = f"/orders/{order['id']}/payments"
    answers = await asyncio.gather(*(payment.client.post(path, headers={**person(), "Idempotency-Key": "same"})
                                     for _ in range(3)))  # fmt: skip
    assert all(a.status_code in {200, 201} for a in answers), [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1 and await count(payment, Payment) == 1
    assert all(a.json()["pay_url"] for a in answers)


async def test_another_provider_is_not_there(payment):
    answer = await payment.client.post("/notifications/unionpay", content=b"{}",
                                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 404
