"""Holders of licences: GB/T 36903 holder code types and the checks of their codes — pure.

A holder is a natural person identified by a resident ID number (GB 11643, code type ``111``
居民身份证) or a legal person identified by a unified social credit code (GB 32100, code type
``001`` 统一社会信用代码). Checksums come from python-stdnum; like identity (ADR 0005), a region code
that existed in some year but not in the birth year is accepted (re-coded counties), and 港澳台
residence-permit numbers (regions 810000/820000/830000) are accepted.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Final, Literal

from stdnum import numdb
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidComponent

from kit.errors import RuleViolation

PERSON_CODE_TYPE: Final = "111"
ENTERPRISE_CODE_TYPE: Final = "001"
CODE_TYPES: Final = {PERSON_CODE_TYPE: "person", ENTERPRISE_CODE_TYPE: "enterprise"}
HolderKind = Literal["person", "enterprise"]

_RESIDENCE_PERMIT_REGIONS: Final = frozenset({"810000", "820000", "830000"})
_USCC_AUTHORITIES: Final = frozenset("123456789ABCDEFGNY")
_USCC_CHARACTERS: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100's 31 characters, in value order
_USCC_ALPHABET: Final = frozenset(_USCC_CHARACTERS)
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def _compact(value: str, module) -> str:
    # stdnum's compact() folds full-width and other look-alike characters, which costs more than
    # the rest of the check together; a plain ASCII code (the bulk of an import) has none to fold.
    if value.isascii() and value.isalnum():
        return value.upper()
    return module.compact(value)


@lru_cache(maxsize=65_536)
def _region_known(region: str, birth_year: int) -> bool:
    """The region was a division in the birth year, or (re-coded counties) in some year.

    Cached: stdnum's division table lookup is slow and an import sees the same few regions."""
    try:
        ric.get_birth_place(f"{region}{birth_year:04d}0101")
    except InvalidComponent:
        return any(props for _, props in numdb.get("cn/loc").info(region))
    return True


def validate_id_number(value: str, *, today: dt.date | None = None) -> str:
    """The ID number normalised (upper-case X), or RuleViolation naming the rule it breaks."""
    number = _compact(value or "", ric)
    if len(number) != 18:
        raise RuleViolation("length", "a resident ID number has 18 characters")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise RuleViolation("format", "17 digits followed by a digit or X")
    if number[-1] != ric.calc_check_digit(number):
        raise RuleViolation("checksum", "the check character (GB 11643, ISO 7064 MOD 11-2) does not match")
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise RuleViolation("birth_date", "the birth date part is not a real date") from None
    if birth > (today or dt.date.today()):
        raise RuleViolation("birth_date", "the birth date is in the future")
    if number[:6] in _RESIDENCE_PERMIT_REGIONS:
        return number
    if not _region_known(number[:6], birth.year):
        raise RuleViolation("region", "the region code is not an administrative division")
    return number


def _uscc_check_character(code: str) -> str:
    total = sum(_USCC_CHARACTERS.index(char) * weight for char, weight in zip(code, _USCC_WEIGHTS, strict=False))
    return _USCC_CHARACTERS[(31 - total) % 31]


def validate_uscc(value: str) -> str:
    """The unified social credit code normalised, or RuleViolation naming the rule it breaks."""
    code = _compact(value or "", uscc)
    if len(code) != 18:
        raise RuleViolation("length", "a unified social credit code has 18 characters")
    if any(char not in _USCC_ALPHABET for char in code):
        raise RuleViolation("format", "only digits and upper-case letters except I, O, Z, S, V")
    if code[0] not in _USCC_AUTHORITIES:
        raise RuleViolation("format", "the registration authority code (1st character) is not defined")
    if not code[2:8].isdigit():
        raise RuleViolation("format", "characters 3-8 are a region code of digits")
    if code[-1] != _uscc_check_character(code):
        raise RuleViolation("checksum", "the check character (GB 32100) does not match")
    return code


def holder_kind_of(code: str) -> HolderKind:
    """'person' when ``code`` is a valid ID number, else 'enterprise' (an all-digit credit code of
    a government organ may look like an ID number: its check character decides; where both could
    hold, the caller names the code type)."""
    try:
        validate_id_number(code)
    except RuleViolation:
        return "enterprise"
    return "person"


def code_type_for(kind: str) -> str:
    """GB/T 36903 holder code type of a holder kind."""
    return PERSON_CODE_TYPE if kind == "person" else ENTERPRISE_CODE_TYPE


def validate_holder(code: str, code_type: str | None = None, *, today: dt.date | None = None) -> tuple[str, str]:
    """(normalised code, code type) of a holder; the code type is inferred when not given.

    Raises RuleViolation: ``code_type`` for an unknown type, else the rule the code breaks."""
    if code_type is None:
        code = code or ""
        try:
            return validate_id_number(code, today=today), PERSON_CODE_TYPE
        except RuleViolation as as_person:
            try:
                return validate_uscc(code), ENTERPRISE_CODE_TYPE
            except RuleViolation:
                # Neither: say what is wrong with what it looks like (17 digits first: an ID number).
                if code[:17].isdigit():
                    raise as_person from None
                raise
    if code_type == PERSON_CODE_TYPE:
        return validate_id_number(code, today=today), code_type
    if code_type == ENTERPRISE_CODE_TYPE:
        return validate_uscc(code), code_type
    raise RuleViolation("code_type", "holder_code_type is 111 (resident ID number) or 001 (credit code)")
