"""The e-licence identifier of GB/T 36904-2018 (电子证照标识规范):

    1.2.156.3005.2.<type code>.<issuer code>.<serial>.<version>.<check>

``1.2.156.3005.2`` is the fixed OID arc for e-licences. The check character is ISO/IEC 7064
MOD 37,36 (GB/T 17710) computed over type code + issuer code + serial + version, concatenated
WITHOUT the dots and WITHOUT the fixed prefix. That reading is confirmed by real identifiers (see
test_identifier.py): with the prefix or with the dots included, their check characters do not
come out. MOD 37,36 is a hybrid system, so the check character is one of 0-9 and A-Z (no ``*``,
which belongs to the pure MOD 37-2).

Parts, as every published identifier shows them:
- type code (证照类型代码): 21 characters, the defining department's unified social credit code
  (18) followed by a 3-digit sequence number from the national licence catalogue;
- issuer code (颁证机构代码): the issuing authority's unified social credit code (18), or in some
  provinces a 6-digit administrative division code;
- serial (顺序号): 1-32 characters 0-9/A-Z, assigned by the issuer;
- version (版本号): 3 digits from 001, raised each time the licence is changed and reissued.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from stdnum.iso7064 import mod_37_36

from services.licence.domain.errors import InvalidIdentifier

PREFIX = "1.2.156.3005.2"

# 证照持有人证件类型代码: the kind of number that identifies a licence's holder.
HOLDER_CODE_RESIDENT_ID = "111"  # 居民身份证 (GB 11643 resident identity number)
HOLDER_CODE_USCC = "001"  # 统一社会信用代码 (GB 32100 unified social credit code)
HOLDER_CODE_TYPES = {
    HOLDER_CODE_RESIDENT_ID: "居民身份证",
    HOLDER_CODE_USCC: "统一社会信用代码",
}

_TYPE_CODE = re.compile(r"[0-9A-Z]{18}[0-9]{3}")
_ISSUER_CODE = re.compile(r"[0-9A-Z]{18}|[0-9]{6}")
_SERIAL = re.compile(r"[0-9A-Z]{1,32}")
_VERSION = re.compile(r"[0-9]{3}")
_CHECK = re.compile(r"[0-9A-Z]")
_FIELD = "identifier"


@dataclass(frozen=True, slots=True)
class LicenceIdentifier:
    """A parsed, valid identifier. ``str()`` gives the full dotted form."""

    type_code: str
    issuer_code: str
    serial: str
    version: int
    check: str

    def __str__(self) -> str:
        return f"{PREFIX}.{self.type_code}.{self.issuer_code}.{self.serial}.{self.version:03d}.{self.check}"


_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALUES = {char: value for value, char in enumerate(_ALPHABET)}


def _mod_37_36(state: int, text: str) -> int:
    # ISO 7064 hybrid MOD 37,36 as python-stdnum's mod_37_36.checksum computes it, from a state.
    for char in text:
        state = (((state or 36) * 2) % 37 + _VALUES[char]) % 36
    return state


@lru_cache(maxsize=1024)
def _state_after(parts: str) -> int:
    # Type code + issuer code are the same for every licence of a type and issuer (an import
    # checks thousands): their part of the computation is done once.
    return _mod_37_36(18, parts)


def check_character(*, type_code: str, issuer_code: str, serial: str, version: int) -> str:
    """The MOD 37,36 check character over the four parts, dots and prefix left out
    (the same as ``stdnum.iso7064.mod_37_36.calc_check_digit`` of their concatenation)."""
    text = f"{serial}{version:03d}"
    try:
        state = _mod_37_36(_state_after(type_code + issuer_code), text)
    except KeyError:  # a character outside 0-9/A-Z (parts are checked first): stdnum's own error
        return str(mod_37_36.calc_check_digit(f"{type_code}{issuer_code}{text}"))
    return _ALPHABET[(1 - ((state or 36) * 2) % 37) % 36]


def _check_parts(type_code: str, issuer_code: str, serial: str, version: int) -> None:
    if not _TYPE_CODE.fullmatch(type_code):
        raise InvalidIdentifier(_FIELD, "type_code", "the type code is 18 characters 0-9/A-Z and 3 digits")
    if not _ISSUER_CODE.fullmatch(issuer_code):
        raise InvalidIdentifier(
            _FIELD, "issuer_code", "the issuer code is an 18-character credit code or a 6-digit division code"
        )
    if not _SERIAL.fullmatch(serial):
        raise InvalidIdentifier(_FIELD, "serial", "the serial is 1-32 characters 0-9/A-Z")
    if not 1 <= version <= 999:
        raise InvalidIdentifier(_FIELD, "version", "the version is 001-999")


def build_identifier(*, type_code: str, issuer_code: str, serial: str, version: int = 1) -> LicenceIdentifier:
    """A new identifier with its check character; raises InvalidIdentifier for a malformed part."""
    _check_parts(type_code, issuer_code, serial, version)
    check = check_character(type_code=type_code, issuer_code=issuer_code, serial=serial, version=version)
    return LicenceIdentifier(type_code, issuer_code, serial, version, check)


def parse_identifier(text: str) -> LicenceIdentifier:
    """Parse and validate a dotted identifier; raises InvalidIdentifier naming the rule it broke."""
    if not isinstance(text, str) or len(text) > 120:
        raise InvalidIdentifier(_FIELD, "format", "an identifier is a string of at most 120 characters")
    if not text.startswith(PREFIX + "."):
        raise InvalidIdentifier(_FIELD, "prefix", f"an e-licence identifier starts with {PREFIX}.")
    parts = text[len(PREFIX) + 1 :].split(".")
    if len(parts) != 5:
        raise InvalidIdentifier(_FIELD, "format", "an identifier has type code, issuer, serial, version and check")
    type_code, issuer_code, serial, version_text, check = parts
    if not _VERSION.fullmatch(version_text):
        raise InvalidIdentifier(_FIELD, "version", "the version is 3 digits")
    version = int(version_text)
    _check_parts(type_code, issuer_code, serial, version)
    if not _CHECK.fullmatch(check):
        raise InvalidIdentifier(_FIELD, "check", "the check character is one of 0-9 and A-Z")
    expected = check_character(type_code=type_code, issuer_code=issuer_code, serial=serial, version=version)
    if check != expected:
        raise InvalidIdentifier(_FIELD, "check", "the check character does not match (mistyped or altered)")
    return LicenceIdentifier(type_code, issuer_code, serial, version, check)


def is_valid_identifier(text: str) -> bool:
    """True when ``text`` is a well-formed identifier whose check character matches."""
    try:
        parse_identifier(text)
    except InvalidIdentifier:
        return False
    return True


def mask_holder_code(code: str) -> str:
    """A personal holder code with all but the first 4 and last 4 characters starred
    (``3714**********0012``); never show or log a full resident identity number."""
    if len(code) <= 8:
        return "*" * len(code)
    return code[:4] + "*" * (len(code) - 8) + code[-4:]
