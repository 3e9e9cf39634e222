from __future__ import annotations

from datetime import date

import pytest
from stdnum.iso7064 import mod_11_2, mod_37_36

from services.caseflow.domain import case_number
from services.caseflow.domain.case_number import (
    QUERY_ALPHABET,
    make_case_number,
    make_query_code,
    valid_case_number,
)


def test_published_iso7064_vectors():
    # python-stdnum's documented examples (ISO 7064 annex)
    assert mod_37_36.calc_check_digit("A12425GABC1234002") == "M"
    assert mod_37_36.is_valid("A12425GABC1234002M")
    assert mod_11_2.calc_check_digit("079") == "X"


def test_case_number_shape_and_check():
    number = make_case_number("320802", date(2026, 10, 12), 427)
    assert number[:20] == "32080220261012000427"
    assert number[-1] == mod_37_36.calc_check_digit(number[:20])
    assert len(number) == 21
    assert valid_case_number(number)


def test_typos_are_caught():
    number = make_case_number("320802", date(2026, 10, 12), 427)
    for position in range(20):
        digit = number[position]
        wrong = str((int(digit) + 1) % 10)
        assert not valid_case_number(number[:position] + wrong + number[position + 1 :])
    swapped = number[:14] + number[15] + number[14] + number[16:]
    if swapped != number:
        assert not valid_case_number(swapped)


@pytest.mark.parametrize("division,sequence", [("32080", 1), ("320802", 0), ("320802", 1_000_000)])
def test_bad_parts(division, sequence):
    with pytest.raises(ValueError):
        make_case_number(division, date(2026, 1, 5), sequence)


def test_query_code():
    codes = {make_query_code() for _ in range(200)}
    assert len(codes) > 190
    assert all(len(c) == 6 and set(c) <= set(QUERY_ALPHABET) for c in codes)


def test_query_code_maps_random_bytes_evenly_and_skips_those_past_the_last_whole_alphabet(monkeypatch):
    chunks = iter([bytes([248, 255, 0, 1, 30, 31]), bytes([247, 62, 0, 0, 0, 0])])
    monkeypatch.setattr(case_number.secrets, "token_bytes", lambda n: next(chunks))
    assert make_query_code() == "23Z2Z2"  # 248 and 255 skipped; 31 and 62 wrap to the first character
    accepted = [QUERY_ALPHABET[b % len(QUERY_ALPHABET)] for b in range(case_number._UNBIASED)]
    assert {accepted.count(c) for c in QUERY_ALPHABET} == {8}  # every character equally likely
