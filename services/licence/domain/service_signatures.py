"""HMAC-SHA256 signatures of internal service calls (caseflow → POST /checks) — pure.

The scheme is ADR 0003's partner signature: headers ``X-Partner-Id`` (the key id),
``X-Timestamp`` (Unix seconds), ``X-Nonce`` (16-64 of ``[A-Za-z0-9_-]``) and ``X-Signature``
(lower-case hex HMAC-SHA256 under the key id's secret) over five lines without a trailing newline::

    METHOD \\n PATH[?QUERY] \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))

PATH is the path the service received (``/checks``): the gateway never routes this endpoint, the
caller signs what it sends. Whether the nonce was seen before is the caller's (I/O) business.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Final

_NONCE: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
_HEX: Final = re.compile(r"[0-9a-f]{64}")


class SignatureRefused(Exception):
    """Why a signed request is refused; ``reason`` is a short slug for logs and the problem."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def canonical_string(method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What is signed: five lines joined by newlines."""
    return "\n".join((method.upper(), path_with_query, timestamp, nonce, hashlib.sha256(body).hexdigest())).encode()


def sign(secret: str, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The ``X-Signature`` a caller sends."""
    message = canonical_string(method, path_with_query, timestamp, nonce, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(key_id: str, secret: str, method: str, path_with_query: str, body: bytes, *, nonce: str,
                   timestamp: int) -> dict[str, str]:  # fmt: skip
    """The four headers of a signed request (for callers and tests)."""
    ts = str(timestamp)
    return {
        "X-Partner-Id": key_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(secret, method, path_with_query, ts, nonce, body),
    }


def verify(keys: Mapping[str, str], *, method: str, path_with_query: str, headers: Mapping[str, str], body: bytes,
           now: float, max_age: int) -> tuple[str, str]:  # fmt: skip
    """The key id and nonce of a correctly signed, fresh request; SignatureRefused otherwise."""
    key_id = headers.get("x-partner-id", "")
    timestamp = headers.get("x-timestamp", "")
    nonce = headers.get("x-nonce", "")
    signature = headers.get("x-signature", "").lower()
    if not (key_id and timestamp and nonce and signature):
        raise SignatureRefused("missing", "X-Partner-Id, X-Timestamp, X-Nonce and X-Signature are required")
    secret = keys.get(key_id)
    if secret is None:
        raise SignatureRefused("unknown-key", "unknown key id")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureRefused("bad-timestamp", "X-Timestamp must be Unix seconds")
    if abs(now - int(timestamp)) > max_age:
        raise SignatureRefused("stale", f"X-Timestamp is more than {max_age} s away from the service's clock")
    if not _NONCE.fullmatch(nonce):
        raise SignatureRefused("bad-nonce", "X-Nonce must be 16-64 characters of A-Z a-z 0-9 _ -")
    expected = sign(secret, method, path_with_query, timestamp, nonce, body)
    if not _HEX.fullmatch(signature) or not hmac.compare_digest(expected, signature):
        raise SignatureRefused("bad-signature", "signature does not match")
    return key_id, nonce
