"""GB 11643 and GB 32100 against published vectors (the standards' own examples and python-stdnum's)."""

import datetime as dt

import pytest
from stdnum.iso7064 import mod_11_2

from kit.errors import RuleViolation
from kit.subject_ids import subject_kind, validate_id_number, validate_uscc

# GB 11643-1999 appendix example, and python-stdnum's cn.ric doctest vector (born 1880).
VALID_ID_NUMBERS = ["11010519491231002X", "440524188001010014"]
# Real codes found online and collected in python-stdnum's tests/test_cn_uscc.doctest.
VALID_USCC = [
    "91110000600037341L",
    "121200004013590816",
    "91310115MA1K3BTP2B",
    "9144030071526726XG",
    "91620105L015101280",
    "92340602MA2PBMEM24",
    "91340600MA2PBNE723",
]


@pytest.mark.parametrize("number", VALID_ID_NUMBERS)
def test_published_id_numbers_are_valid(number):
    assert validate_id_number(number) == number


def test_lowercase_x_is_normalised():
    assert validate_id_number("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        ("110105194912310021", "checksum"),  # stdnum's doctest: wrong check digit
        ("11010519491231002", "length"),
        ("1101051949123100AX", "format"),
        ("110105194902300025", "birth_date"),  # 30 February
        ("990105194912310027", "region"),  # no province 99
    ],
)
def test_invalid_id_numbers_name_the_rule(number, rule):
    if rule in ("birth_date", "region"):
        # give the vector a correct check digit so that only the rule under test can fail
        number = number[:17] + mod_11_2.calc_check_digit(number[:17])
    with pytest.raises(RuleViolation) as error:
        validate_id_number(number)
    assert error.value.rule == rule


def test_future_birth_date_refused():
    number = "11010520300101002"
    number += mod_11_2.calc_check_digit(number)
    with pytest.raises(RuleViolation) as error:
        validate_id_number(number, today=dt.date(2026, 11, 23))
    assert error.value.rule == "birth_date"


def test_iso_7064_mod_11_2_published_vector():
    # ISO 7064 examples (as in python-stdnum's docs): 0794 → 0, 079 → X; GB 11643 uses MOD 11-2.
    assert mod_11_2.calc_check_digit("0794") == "0"
    assert mod_11_2.calc_check_digit("079") == "X"
    assert mod_11_2.is_valid("07940") and not mod_11_2.is_valid("07941")


@pytest.mark.parametrize("prefix", ["810000", "820000", "830000"])
def test_residence_permit_numbers_are_accepted_with_their_checksum(prefix):
    body = prefix + "19900101" + "002"
    number = body + mod_11_2.calc_check_digit(body)
    assert validate_id_number(number) == number
    wrong = body + ("0" if number[-1] != "0" else "1")
    with pytest.raises(RuleViolation):
        validate_id_number(wrong)


@pytest.mark.parametrize("code", VALID_USCC)
def test_published_credit_codes_are_valid(code):
    assert validate_uscc(code) == code
    assert validate_uscc(code.lower()) == code


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("91110000600037341M", "checksum"),
        ("91110000600037341N", "checksum"),  # stdnum's test vector
        ("9111000060003IOZSV", "format"),  # stdnum's test vector
        ("9111000060003734", "length"),
        ("91110000600037341I", "format"),  # I is not in the GB 32100 alphabet
        ("Z1110000600037341L", "format"),  # no such registration authority
        ("911A0000600037341L", "format"),  # region must be digits
    ],
)
def test_invalid_credit_codes_name_the_rule(code, rule):
    with pytest.raises(RuleViolation) as error:
        validate_uscc(code)
    assert error.value.rule == rule


def test_letter_registration_authority_is_accepted_unlike_stdnum():
    from stdnum.cn import uscc

    body = "N2110000MA0000001"
    code = body + uscc.calc_check_digit(body + "0")
    assert validate_uscc(code) == code
    assert not uscc.is_valid(code)  # the stdnum limitation this module works around


def test_subject_kind():
    assert subject_kind("11010519491231002X") == "person"
    assert subject_kind("91110000600037341L") == "enterprise"
