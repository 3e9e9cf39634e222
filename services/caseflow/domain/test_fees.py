"""Fees in fen, the payment wait and the fee anomalies."""

from __future__ import annotations

import pytest

from services.caseflow.domain.fees import (
    FeeAmountInvalid,
    anomalies,
    fees_due_at_submission,
    guide_fees,
    waits_for_payment,
    yuan_to_fen,
)


@pytest.mark.parametrize(("yuan", "fen"), [("80", 8000), ("9.5", 950), ("0.01", 1), ("0", 0), ("12.30", 1230),
                                          (" 7 ", 700), ("1E2", 10000), ("1000000000", 10**11)])  # fmt: skip
def test_yuan_to_fen_is_exact(yuan, fen):
    assert yuan_to_fen(yuan) == fen


@pytest.mark.parametrize("yuan", ["9.555", "0.001", "-1", "NaN", "Infinity", "abc", "", "1000000000.01", "1e400"])
def test_amounts_that_are_no_whole_fen_are_refused_never_rounded(yuan):
    with pytest.raises(FeeAmountInvalid):
        yuan_to_fen(yuan)


MATTER = {"fees": [{"item": "工本费", "amount_yuan": "80"}, {"item": "证书费", "amount_yuan": "9.5"}],
          "payment": {"due_before": "decision"}}  # fmt: skip


def test_fees_due_only_with_payment_and_fees():
    assert fees_due_at_submission(MATTER) == [{"item": "工本费", "amount_fen": 8000, "basis": None},
                                              {"item": "证书费", "amount_fen": 950, "basis": None}]  # fmt: skip
    assert fees_due_at_submission({**MATTER, "payment": None}) is None
    assert fees_due_at_submission({"fees": [], "payment": {}}) is None
    assert guide_fees(MATTER) == {"工本费": 8000, "证书费": 950}


@pytest.mark.parametrize(("due_before", "waiting"), [
    ("acceptance", {"accept", "approve", "deliver", "complete", "hand_out"}),
    ("decision", {"approve", "deliver", "complete", "hand_out"}),
    ("delivery", {"deliver", "complete", "hand_out"}),
])  # fmt: skip
def test_steps_wait_from_the_due_point_on_while_unpaid(due_before, waiting):
    every = {"accept", "deem_accept", "reject", "request_correction", "review", "approve", "deny", "deliver",
             "complete", "hand_out", "withdraw", "suspend"}  # fmt: skip
    assert {a for a in every if waits_for_payment(a, fees_status="due", due_before=due_before)} == waiting
    for status in ("paid", "refunded", "waived", None):
        assert not any(waits_for_payment(a, fees_status=status, due_before=due_before) for a in every)


def test_anomalies_against_the_guide():
    assert anomalies(MATTER, [{"item": "工本费", "amount_fen": 8000}], what="paid") == []
    assert anomalies(MATTER, [{"item": "工本费", "amount_fen": 7000}], what="paid") == []  # below: no anomaly
    found = anomalies(MATTER, [{"item": "工本费", "amount_fen": 8001}, {"item": "加急费", "amount_fen": 100}],
                      what="assessed")  # fmt: skip
    assert [a.step for a in found] == ["fee_not_in_guide", "fee_above_guide"]
    assert "加急费" in found[0].detail and "8001" in found[1].detail
    free = anomalies({"fees": []}, [{"item": "工本费", "amount_fen": 500}], what="paid")
    assert [a.step for a in free] == ["fee_on_free_matter"]
    assert anomalies({"fees": []}, [{"item": "x", "amount_fen": 0}], what="paid") == []
