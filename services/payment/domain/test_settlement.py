"""What a notification and a case's end do to an order."""

from __future__ import annotations

import pytest

from services.payment.domain import settlement


@pytest.mark.parametrize(("status", "order", "attempt", "reported", "expected"), [
    ("open", 100, 100, 100, "paid"),
    ("open", 100, 100, 99, "amount_mismatch"),
    ("open", 200, 100, 100, "amount_mismatch"),  # the fees were revised after the attempt began
    ("paid", 100, 100, 100, "late"),
    ("closed", 100, 100, 100, "late"),
    ("refunding", 100, 100, 100, "late"),
    ("refunded", 100, 100, 100, "late"),
])  # fmt: skip
def test_settle(status, order, attempt, reported, expected):
    assert settlement.settle(order_status=status, order_amount=order, attempt_amount=attempt,
                             reported_amount=reported) == expected  # fmt: skip


def test_after_outcome():
    assert settlement.after_outcome(order_status="open", outcome="denied", refund_on=[]) == "close"
    assert settlement.after_outcome(order_status="paid", outcome="denied", refund_on=["denied"]) == "refund"
    assert settlement.after_outcome(order_status="paid", outcome="denied", refund_on=["withdrawn"]) == "keep"
    assert settlement.after_outcome(order_status="refunded", outcome="denied", refund_on=["denied"]) == "keep"
    with pytest.raises(ValueError):
        settlement.after_outcome(order_status="paid", outcome="approved", refund_on=["approved"])


def test_should_update():
    assert settlement.should_update(order_status="open", order_revision=1, revision=2)
    assert not settlement.should_update(order_status="open", order_revision=2, revision=2)
    assert not settlement.should_update(order_status="paid", order_revision=1, revision=2)
