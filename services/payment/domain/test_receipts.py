"""电子票据 numbers: 票据代码, 票据号码 and the 校验码 (ADR 0024)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.payment.domain import receipts

KEY = b"k"
AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
FIELDS = dict(code="37010126", number="0000000001", amount_fen=3550, issued_at=AT, payer="11010519491231002X")


def test_the_code_is_province_category_kind_and_year_in_beijing_time():
    assert receipts.receipt_code("37", AT) == "37010126"
    assert (
        receipts.receipt_code("11", datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == "11010127"
    )  # 2027-01-01 in Beijing
    with pytest.raises(ValueError):
        receipts.receipt_code("3", AT)
    with pytest.raises(ValueError):
        receipts.receipt_code("91", AT)


def test_the_number_is_ten_digits_from_one():
    assert receipts.receipt_number(1) == "0000000001"
    assert receipts.receipt_number(9_999_999_999) == "9999999999"
    for bad in (0, -1, 10**10):
        with pytest.raises(ValueError):
            receipts.receipt_number(bad)
    assert receipts.is_receipt_no("37010126" + "0000000001")
    assert not receipts.is_receipt_no("37020126" + "0000000001") and not receipts.is_receipt_no("3701012600000001")


def test_the_check_code_binds_every_field_and_the_key():
    code = receipts.check_code(KEY, **FIELDS)
    assert len(code) == 6 and all(c in "0123456789abcdef" for c in code)
    assert code == receipts.check_code(KEY, **FIELDS)
    assert receipts.verify_check_code(KEY, code.upper(), **FIELDS)
    changed = [dict(FIELDS, number="0000000002"), dict(FIELDS, amount_fen=3551), dict(FIELDS, payer="110105194912310038"),
               dict(FIELDS, issued_at=datetime(2026, 12, 2, 2, 0, tzinfo=UTC)), dict(FIELDS, code="37010125")]  # fmt: skip
    for fields in changed:
        assert not receipts.verify_check_code(KEY, code, **fields), fields
    assert not receipts.verify_check_code(b"other key", code, **FIELDS)
    # The same Beijing day, another hour: the same code (the day is what the receipt prints).
    assert receipts.check_code(KEY, **dict(FIELDS, issued_at=datetime(2026, 12, 1, 15, 0, tzinfo=UTC))) == code
