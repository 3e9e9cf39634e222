"""电子票据 numbers — pure.

Modelled on the 财政电子票据 the finance departments issue for non-tax fees (财政部《财政电子票据
数据规范》): a receipt is identified by its 票据代码 and 票据号码 and carries a 校验码.

- **票据代码** (8 digits) = the issuing region's 2-digit province code (GB/T 2260, 37 = 山东)
  + ``01`` (票据分类: 非税收入类) + ``01`` (票据种类: 非税收入通用票据) + the year's last two digits.
  E.g. ``37010126`` for a Shandong receipt issued in 2026.
- **票据号码** (10 digits): the receipt's sequence number under its 票据代码, from ``0000000001``,
  handed out without gaps by one row per 票据代码 (``receipt_sequences``, locked by its UPDATE).
- **校验码** (6 characters, lower-case hex): the first 24 bits of HMAC-SHA256 under the platform's
  receipt key over ``code|number|amount_fen|yyyymmdd|payer`` (the issue date in Beijing time). The
  real 校验码 is the issuing system's own; ours lets the platform — and only the platform, holding
  the key — tell a receipt it issued from one edited afterwards (another amount, another payer).

``receipt_no`` (how the API names a receipt) is 票据代码 + 票据号码: 18 digits.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "CST")
CATEGORY = "01"  # 非税收入类
KIND = "01"  # 非税收入通用票据
RECEIPT_NO = re.compile(r"^[1-8][0-9]0101[0-9]{2}[0-9]{10}$")


def receipt_code(province: str, issued_at: datetime) -> str:
    """The 8-digit 票据代码 for a receipt issued at ``issued_at`` (aware) in ``province``."""
    if not re.fullmatch(r"[1-8][0-9]", province):
        raise ValueError("province: two digits of GB/T 2260 (11–82)")
    return f"{province}{CATEGORY}{KIND}{issued_at.astimezone(BEIJING).year % 100:02d}"


def receipt_number(sequence: int) -> str:
    """The 10-digit 票据号码 of the ``sequence``-th receipt under a code (1 … 9 999 999 999)."""
    if not 1 <= sequence <= 9_999_999_999:
        raise ValueError("the sequence is 1 … 9 999 999 999")
    return f"{sequence:010d}"


def check_code(key: bytes, *, code: str, number: str, amount_fen: int, issued_at: datetime, payer: str) -> str:
    """The 6-character 校验码 (module doc)."""
    day = issued_at.astimezone(BEIJING).strftime("%Y%m%d")
    text = f"{code}|{number}|{amount_fen}|{day}|{payer}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()[:6]


def verify_check_code(key: bytes, given: str, **fields) -> bool:
    return hmac.compare_digest(check_code(key, **fields), given.lower())


def is_receipt_no(value: str) -> bool:
    return bool(RECEIPT_NO.match(value))
