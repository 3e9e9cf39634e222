"""What a gateway's notification does to an order and its payment — pure.

A successful transaction settles the order only when all three agree: the order is open, the
amount the gateway reports is the attempt's amount, and the attempt's amount is the order's amount
now (a later fees_due revision may have changed it since the attempt began). Otherwise the money
was not owed as paid and goes back (refunded automatically, as the platforms do):

- ``late``: the order was paid already (by another attempt), closed, or refunded;
- ``amount_mismatch``: the amounts disagree (the order stays open: the payer pays the right amount).

A failed transaction never changes the order (it stays payable).
"""

from __future__ import annotations

from typing import Literal

Outcome = Literal["paid", "late", "amount_mismatch"]
OPEN = "open"
REFUND_OUTCOMES = frozenset({"withdrawn", "rejected", "denied"})


def settle(*, order_status: str, order_amount: int, attempt_amount: int, reported_amount: int) -> Outcome:
    """The outcome of a successful transaction for one attempt of one order."""
    if order_status != OPEN:
        return "late"
    if reported_amount != attempt_amount or attempt_amount != order_amount:
        return "amount_mismatch"
    return "paid"


def after_outcome(*, order_status: str, outcome: str, refund_on: list[str]) -> Literal["close", "refund", "keep"]:
    """What a case's end (withdrawn, rejected, denied) does to its order: an unpaid order closes;
    a paid one is refunded when the matter says so for that outcome; anything else stays."""
    if outcome not in REFUND_OUTCOMES:
        raise ValueError(f"not a case outcome: {outcome}")
    if order_status == OPEN:
        return "close"
    if order_status == "paid" and outcome in refund_on:
        return "refund"
    return "keep"


def should_update(*, order_status: str, order_revision: int, revision: int) -> bool:
    """A fees_due revision replaces an unpaid order's items when it is newer."""
    return order_status == OPEN and revision > order_revision
