"""Subject ids: resident ID numbers (GB 11643) and unified social credit codes (GB 32100) — pure.

One copy for identity (registration, enterprises), licence (holders) and caseflow (form fields).

Checksums come from python-stdnum (ISO 7064 MOD 11-2 for ID numbers, MOD 31-3 weights for credit
codes). Two of stdnum's stricter checks are relaxed on purpose (docs/adr/0005):
a region code that existed in some year but not the birth year is accepted (re-coded counties),
and credit codes whose registration authority is a letter (e.g. ``N``, ``Y``) are accepted.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from stdnum import numdb
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError

from kit.errors import RuleViolation

# 港澳台居民居住证 numbers: region 810000 (Hong Kong), 820000 (Macao), 830000 (Taiwan).
RESIDENCE_PERMIT_REGIONS = {"810000": "香港", "820000": "澳门", "830000": "台湾"}
# GB 32100 registration-authority codes (first character).
USCC_AUTHORITIES = set("123456789ABCDEFGNY")
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@lru_cache(maxsize=65_536)
def _region_known_in_any_year(region: str) -> bool:
    # Cached: stdnum's division table lookup is slow, and a bulk import sees the same few regions.
    return any(info for _, _, info in _lookup(region) if info)


@lru_cache(maxsize=65_536)
def _region_known_in(region: str, birth_year: int) -> bool:
    try:
        ric.get_birth_place(f"{region}{birth_year:04d}0101")
    except InvalidComponent:
        return False
    return True


def _compact(value: str, module) -> str:
    # stdnum's compact() folds full-width and other look-alike characters, which costs more than the
    # rest of the check together; a plain ASCII code (the bulk of an import) has none to fold.
    if value.isascii() and value.isalnum():
        return value.upper()
    return module.compact(value)


def _lookup(region: str):
    db = numdb.get("cn/loc")
    results = db.info(region)
    return [(part, len(part), props) for part, props in results]


def validate_id_number(value: str, *, today: dt.date | None = None) -> str:
    """Return the normalised ID number (uppercase X) or raise RuleViolation naming the broken rule."""
    number = _compact(value or "", ric)
    if len(number) != 18:
        raise RuleViolation("length", "a resident ID number has 18 characters")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise RuleViolation("format", "17 digits followed by a digit or X")
    if number[-1] != ric.calc_check_digit(number):
        raise RuleViolation("checksum", "the check character (GB 11643, ISO 7064 MOD 11-2) does not match")
    try:
        birth = ric.get_birth_date(number)
    except ValidationError as exc:
        raise RuleViolation("birth_date", "the birth date part is not a real date") from exc
    if birth > (today or dt.date.today()):
        raise RuleViolation("birth_date", "the birth date is in the future")
    if number[:6] in RESIDENCE_PERMIT_REGIONS:
        return number
    if not (_region_known_in(number[:6], birth.year) or _region_known_in_any_year(number[:6])):
        raise RuleViolation("region", "the region code is not an administrative division")
    return number


def validate_uscc(value: str) -> str:
    """Return the normalised unified social credit code or raise RuleViolation."""
    code = _compact(value or "", uscc)
    if len(code) != 18:
        raise RuleViolation("length", "a unified social credit code has 18 characters")
    if any(char not in USCC_ALPHABET for char in code):
        raise RuleViolation("format", "only digits and uppercase letters except I, O, Z, S, V")
    if code[0] not in USCC_AUTHORITIES:
        raise RuleViolation("format", "the registration authority code (1st character) is not defined")
    if not code[2:8].isdigit():
        raise RuleViolation("format", "characters 3–8 are a region code of digits")
    if code[-1] != uscc.calc_check_digit(code):
        raise RuleViolation("checksum", "the check character (GB 32100) does not match")
    return code


def subject_kind(value: str) -> str:
    """'person' for a valid ID number, 'enterprise' for a valid credit code, else RuleViolation."""
    try:
        validate_id_number(value)
        return "person"
    except RuleViolation:
        validate_uscc(value)
        return "enterprise"


__all__ = [
    "InvalidChecksum",
    "InvalidFormat",
    "InvalidLength",
    "RESIDENCE_PERMIT_REGIONS",
    "subject_kind",
    "validate_id_number",
    "validate_uscc",
]
