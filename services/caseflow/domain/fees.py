"""Fees (网上缴费) of a case — pure: the guide's amounts in fen, which steps wait for payment, and
the fee anomalies supervision records (docs/adr/0026-caseflow-counter-and-fees.md).

Amounts in a guide are decimal strings of yuan (``"80"``, ``"9.5"``); caseflow keeps integer fen,
converted exactly with Decimal: an amount that is not a whole number of fen is refused, never rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_FEN = 10**11  # contracts FeeItem.amount_fen's bound (a billion yuan)

# The steps each "due before" point holds back, and every step after it: a case that reached a later
# point unpaid (Art. 32's deemed acceptance does not wait for payment) still waits there.
_AFTER_ACCEPTANCE = frozenset({"approve", "deliver", "complete", "hand_out"})
WAITING_STEPS: dict[str, frozenset[str]] = {
    "acceptance": frozenset({"accept"}) | _AFTER_ACCEPTANCE,
    "decision": _AFTER_ACCEPTANCE,
    "delivery": frozenset({"deliver", "complete", "hand_out"}),
}
REFUND_OUTCOMES = ("withdrawn", "rejected", "denied")
NOT_REFUNDED_AFTER_DAYS = 5  # working days after the outcome (fee_not_refunded)


class FeeAmountInvalid(ValueError):
    """An amount that is not a whole, non-negative, bounded number of fen."""


def yuan_to_fen(amount_yuan: str) -> int:
    """``"80"`` → 8000, ``"9.5"`` → 950, ``"0.01"`` → 1; exact or ``FeeAmountInvalid``."""
    try:
        value = Decimal(str(amount_yuan).strip())
    except InvalidOperation as exc:
        raise FeeAmountInvalid(f"not a decimal amount: {amount_yuan!r}") from exc
    if not value.is_finite() or value < 0:
        raise FeeAmountInvalid(f"not a non-negative amount: {amount_yuan!r}")
    fen = value * 100
    if fen != fen.to_integral_value() or fen > MAX_FEN:
        raise FeeAmountInvalid(f"not a whole number of fen (or too large): {amount_yuan!r}")
    return int(fen)


def payment_of(matter: dict[str, Any]) -> dict[str, Any] | None:
    """The guide's payment section, or None when the matter takes no payment."""
    payment = matter.get("payment")
    return payment if isinstance(payment, dict) else None


def guide_fees(matter: dict[str, Any]) -> dict[str, int]:
    """The guide's fee items in fen (an item listed twice: the sum)."""
    fees: dict[str, int] = {}
    for fee in matter.get("fees") or []:
        fees[fee["item"]] = fees.get(fee["item"], 0) + yuan_to_fen(fee["amount_yuan"])
    return fees


def fees_due_at_submission(matter: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The items a submission owes (revision 1), or None: only a matter with ``payment`` and fees."""
    if payment_of(matter) is None or not matter.get("fees"):
        return None
    return [{"item": f["item"], "amount_fen": yuan_to_fen(f["amount_yuan"]), "basis": f.get("basis")}
            for f in matter["fees"]]  # fmt: skip


def waits_for_payment(action: str, *, fees_status: str | None, due_before: str | None) -> bool:
    """Whether ``action`` must wait: fees are due (unpaid) and the action is at or after ``due_before``."""
    return fees_status == "due" and action in WAITING_STEPS.get(due_before or "decision", frozenset())


@dataclass(frozen=True)
class FeeAnomaly:
    step: str  # fee_above_guide | fee_not_in_guide | fee_on_free_matter
    detail: str


def anomalies(matter: dict[str, Any], items: list[dict[str, Any]], *, what: str) -> list[FeeAnomaly]:
    """The fee anomalies of items assessed or paid (``what`` says which) against the guide: one per
    kind, naming every item concerned."""
    guide = guide_fees(matter)
    charged = [(str(i.get("item")), int(i.get("amount_fen") or 0)) for i in items]
    found: list[FeeAnomaly] = []
    if not guide:
        if any(amount > 0 for _, amount in charged):
            found.append(FeeAnomaly("fee_on_free_matter", f"{what} on a matter whose guide lists no fee: "
                                    + ", ".join(f"{n} {a} fen" for n, a in charged)))  # fmt: skip
        return found
    unknown = [name for name, _ in charged if name not in guide]
    if unknown:
        found.append(FeeAnomaly("fee_not_in_guide", f"{what} items the guide does not list: {', '.join(unknown)}"))
    above = [f"{name} {amount} fen > {guide[name]} fen" for name, amount in charged
             if name in guide and amount > guide[name]]  # fmt: skip
    if above:
        found.append(FeeAnomaly("fee_above_guide", f"{what} above the guide: {'; '.join(above)}"))
    return found
