"""Masking of personal data and secrets before anything is logged or shown to a third party."""

from __future__ import annotations

import re

# 18-char resident ID numbers (last char may be X) and 18-char credit codes share a length; a
# credit code is not secret, but masking it in logs costs nothing and keeps the rule simple.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
# A mainland mobile, also as +86 / 86 / 0086 in front (the country code is not a digit of it).
_PHONE = re.compile(r"(?<!\d)((?:\+|%2[bB]|00)?86)?(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
# Names under which a value is a secret wherever it appears: a log field, a JSON key, a query
# parameter (the progress page's ``?code=``), a form field.
_SECRET_NAMES = (
    "password",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "authorization",
    "code",
    "query_code",
    "sms_code",
    "verification_code",
    "secret",
    "client_secret",
    "api_key",
)
_SECRET_KEYS = set(_SECRET_NAMES) | {"x-signature", "cookie", "set-cookie"}
_NAMES = "|".join(sorted(_SECRET_NAMES, key=len, reverse=True))
# ?code=AB12CD34&… and code=… in a query string or form body (URL-encoded values end at & or space)
_QUERY_SECRET = re.compile(rf"(?i)(?<![A-Za-z0-9_])((?:{_NAMES})=)[^&\s\"'#]+")
# "query_code": "AB12CD34" in JSON written into a message (also with escaped quotes)
_JSON_SECRET = re.compile(rf'(?i)((?:\\?")(?:{_NAMES})(?:\\?")\s*:\s*)(\\?")(?:[^"\\]|\\(?!"))*(\\?")')
# An SMS text: 验证码为123456, 查询码AB12CD34, 校验码: 1234
_CODE_PHRASE = re.compile(r"((?:验证码|查询码|校验码|动态码|短信码)\s*(?:为|是|:|：)?\s*)[0-9A-Za-z]{4,12}")


def mask_id_number(value: str) -> str:
    """``11010519491231002X`` → ``1101**********002X`` (first 4, last 4 kept)."""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str) -> str:
    """``13800138000`` → ``138****8000``."""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str) -> str:
    """``张三丰`` → ``张**``: the family name stays, as on public progress pages."""
    return value[:1] + "*" * (len(value) - 1) if value else value


def mask_text(text: str) -> str:
    """Mask every ID number, phone number and token inside free text."""
    text = _JWT.sub("[token]", text)
    text = _BEARER.sub(r"\1[token]", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(r"\1[masked]", text)
    if ":" in text:
        text = _JSON_SECRET.sub(r"\1\2[masked]\3", text)
    if "码" in text:
        text = _CODE_PHRASE.sub(r"\1[masked]", text)
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)
    return _PHONE.sub(lambda m: (m.group(1) or "") + m.group(2) + "****" + m.group(3), text)


def mask_value(key: str, value: object) -> object:
    if key.lower() in _SECRET_KEYS and value is not None:
        return "[masked]"
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(key, v) for v in value]
    return value
