"""UPU S10 item identifiers (EMS waybill numbers, 运单号): ``EA123456785CN``.

Thirteen characters: a two-letter service indicator (EMS uses ``EA``–``EZ``), an eight-digit serial
number, one check digit and the ISO 3166-1 alpha-2 code of the issuing post (``CN``). The check
digit (UPU S10 §5, DESIGN §7): weights 8 6 4 2 3 5 9 7 on the serial's digits, S their sum,
C = 11 − (S mod 11), then 10 → 0 and 11 → 5.

Two entry points, on purpose:

- ``is_valid`` / ``why_invalid`` take a waybill exactly as given. A carrier's callback and the
  sandbox must send the canonical form (upper case, no spaces); anything else is refused, so a
  mangled callback is never silently "repaired" into some other item's number.
- ``normalise`` is for people typing a number (a form, an officer's search box): it strips
  spaces and upper-cases, the way the number is printed under its barcode ("EA 123 456 785 CN").

What is not checked: whether the country code is an assigned ISO 3166-1 code (a list we do not
carry; express only issues and accepts ``CN`` where it matters), and which service indicators a
post actually uses. Indicators starting with J, K, S, T or W are reserved by the standard and
"cannot be assigned as valid service indicator values", so they are refused.
"""

from __future__ import annotations

import re
from typing import Literal

WEIGHTS: tuple[int, ...] = (8, 6, 4, 2, 3, 5, 9, 7)
LENGTH = 13
# Reserved first letters of a service indicator (UPU S10 Table 1: JA–JZ, KA–KZ, SA–SZ, TA–TZ,
# WA–WZ "reserved; cannot be assigned").
RESERVED_FIRST_LETTERS = frozenset("JKSTW")
EMS_FIRST_LETTER = "E"

_FORMAT = re.compile(r"^[A-Z]{2}[0-9]{9}[A-Z]{2}\Z")
_SERIAL = re.compile(r"^[0-9]{8}\Z")
_LETTERS2 = re.compile(r"^[A-Z]{2}\Z")

Rule = Literal["format", "service_indicator", "check_digit"]


def check_digit(serial8: str) -> int:
    """The check digit of an eight-digit serial number (``"12345678"`` → 5).

    Raises ``ValueError`` unless ``serial8`` is exactly eight ASCII digits."""
    if not _SERIAL.match(serial8):
        raise ValueError("an S10 serial number is exactly eight digits")
    total = sum(int(digit) * weight for digit, weight in zip(serial8, WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 10:
        return 0
    if check == 11:
        return 5
    return check


def build(service_indicator: str, serial8: str, country: str = "CN") -> str:
    """The waybill for ``serial8`` under ``service_indicator`` (two capitals, not reserved) issued in
    ``country`` (two capitals): ``build("EA", "12345678", "CN")`` → ``"EA123456785CN"``.

    Raises ``ValueError`` on any malformed part (a programming error: callers build from their own
    counters, never from input)."""
    if not _LETTERS2.match(service_indicator) or service_indicator[0] in RESERVED_FIRST_LETTERS:
        raise ValueError("an S10 service indicator is two capitals not starting with J, K, S, T or W")
    if not _LETTERS2.match(country):
        raise ValueError("an S10 country code is two capitals (ISO 3166-1 alpha-2)")
    return f"{service_indicator}{serial8}{check_digit(serial8)}{country}"


def why_invalid(waybill: str) -> Rule | None:
    """The first S10 rule ``waybill`` breaks (``format``, ``service_indicator``, ``check_digit``),
    or None when it is a valid identifier. No normalisation: see the module docstring."""
    if not isinstance(waybill, str) or not _FORMAT.match(waybill):
        return "format"
    if waybill[0] in RESERVED_FIRST_LETTERS:
        return "service_indicator"
    if int(waybill[10]) != check_digit(waybill[2:10]):
        return "check_digit"
    return None


def is_valid(waybill: str) -> bool:
    """Whether ``waybill`` is a canonical, valid S10 identifier (``EA123456785CN`` yes,
    ``EA123456789CN`` no: its check digit is 5)."""
    return why_invalid(waybill) is None


def is_ems(waybill: str) -> bool:
    """Whether ``waybill`` is a valid S10 identifier with an EMS service indicator (``E?``)."""
    return is_valid(waybill) and waybill[0] == EMS_FIRST_LETTER


def normalise(text: str) -> str:
    """A number as a person may type or read it ("ea 123 456 785 cn") in canonical form
    ("EA123456785CN"): whitespace removed, ASCII letters upper-cased. Does not validate."""
    return "".join(text.split()).upper()
