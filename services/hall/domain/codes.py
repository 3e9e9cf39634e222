"""Check-in codes and queue numbers — pure.

A check-in code is 6 random digits, sent by SMS and kept only as an HMAC over the hall, the day
and the code: the database cannot show it, and the same six digits on another day or at another
hall are another hash (so codes are unique per hall and day, not forever).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date

CODE_DIGITS = 6


def new_code() -> str:
    """Six random digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(secret: bytes, hall_code: str, day: date, code: str) -> str:
    """HMAC-SHA256 (hex) of ``hall|YYYY-MM-DD|code`` under the service's code secret."""
    message = f"{hall_code}|{day.isoformat()}|{code}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def ticket_display(prefix: str, number: int) -> str:
    """``("A", 17)`` → ``A017``; four digits once a day passes 999 tickets."""
    return f"{prefix}{number:03d}"
