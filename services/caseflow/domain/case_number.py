"""办件编号 and the public query code: pure.

A case number reads ``<division 6><yyyymmdd><sequence 6><check>``: ``320802202610120000427``.
The check character is ISO 7064 MOD 37-36 over the first 20 digits (python-stdnum computes it),
so a mistyped digit or a swap of two neighbours is caught before any lookup.
"""

from __future__ import annotations

import re
import secrets
from datetime import date

from stdnum.iso7064 import mod_37_36

CASE_NUMBER = re.compile(r"^\d{6}\d{8}\d{6}[0-9A-Z]$")
# No 0/O, 1/I/L: read aloud and typed from an SMS without confusion.
QUERY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
QUERY_CODE_LENGTH = 6


def make_case_number(division: str, day: date, sequence: int) -> str:
    if not re.fullmatch(r"\d{6}", division):
        raise ValueError("division must be a six-digit GB/T 2260 code")
    if not 0 < sequence < 1_000_000:
        raise ValueError("sequence must be 1..999999")
    body = f"{division}{day:%Y%m%d}{sequence:06d}"
    return body + mod_37_36.calc_check_digit(body)


def valid_case_number(value: str) -> bool:
    """Shape and check character; nothing about whether such a case exists."""
    return bool(CASE_NUMBER.match(value)) and mod_37_36.is_valid(value)


# A random byte below this maps onto the alphabet with every character equally likely (8 × 31).
_UNBIASED = 256 - 256 % len(QUERY_ALPHABET)


def make_query_code() -> str:
    """Six characters of the alphabet, each uniformly random: bytes from one ``secrets`` call
    (``secrets.choice`` per character asked the system six times), those at or past the last whole
    multiple of the alphabet's length skipped."""
    code = ""
    while len(code) < QUERY_CODE_LENGTH:
        for byte in secrets.token_bytes(QUERY_CODE_LENGTH):
            if byte < _UNBIASED and len(code) < QUERY_CODE_LENGTH:
                code += QUERY_ALPHABET[byte % len(QUERY_ALPHABET)]
    return code
