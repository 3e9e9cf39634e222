"""HMAC-SHA256 request signatures (docs/adr/0003-gateway.md): partners' pushes to the gateway and
service-to-service calls (caseflow asking licence, docs/adr/0016-licence-reuse-in-caseflow.md).

The signer sends ``X-Partner-Id``, ``X-Timestamp`` (Unix seconds), ``X-Nonce`` (16–64 of
``[A-Za-z0-9_-]``) and ``X-Signature`` (lower-case hex of HMAC-SHA256 with its secret over the
canonical string)::

    METHOD \\n PATH[?QUERY] \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))

PATH and QUERY exactly as the receiver sees them. ``verify_request`` refuses a request whose
partner is unknown (or not allowed on the path), whose timestamp is more than ``max_age`` seconds
from the receiver's clock, or whose signature does not match; remembering nonces (a replay within
the window) is the receiver's part, since only it knows where to keep them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

PARTNER_HEADER = "x-partner-id"
TIMESTAMP_HEADER = "x-timestamp"
NONCE_HEADER = "x-nonce"
SIGNATURE_HEADER = "x-signature"

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")


def canonical_string(method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What is signed: five lines, no trailing newline."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path_with_query, timestamp, nonce, digest)).encode()


def _key(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode()


def sign(secret: str | bytes, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The ``X-Signature`` value: lower-case hex HMAC-SHA256 over the canonical string."""
    message = canonical_string(method, path_with_query, timestamp, nonce, body)
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """A fresh nonce (32 URL-safe characters, within the 16–64 the receivers accept)."""
    return secrets.token_urlsafe(24)


def signed_headers(
    partner_id: str,
    secret: str | bytes,
    method: str,
    path_with_query: str,
    body: bytes,
    *,
    nonce: str,
    timestamp: int,
) -> dict[str, str]:
    """The four headers of a signed request."""
    ts = str(timestamp)
    return {
        "X-Partner-Id": partner_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(secret, method, path_with_query, ts, nonce, body),
    }


def verify(
    secrets_: Sequence[str | bytes],
    method: str,
    path_with_query: str,
    timestamp: str,
    nonce: str,
    body: bytes,
    signature: str,
) -> bool:
    """Whether ``signature`` is the canonical string's HMAC under one of ``secrets_`` (several while
    a key is rotated); compared in constant time."""
    message = canonical_string(method, path_with_query, timestamp, nonce, body)
    given = signature.lower().encode()
    return any(
        hmac.compare_digest(hmac.new(_key(secret), message, hashlib.sha256).hexdigest().encode(), given)
        for secret in secrets_
    )


class SignatureRejected(Exception):
    """Why a signed request is refused; ``reason`` is a short slug used in logs and metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def verify_request(
    partners: Mapping[str, Sequence[str | bytes]],
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    max_age: int,
    path_allowed: Callable[[str, str], bool] | None = None,
) -> tuple[str, str]:
    """Verify one signed request (no nonce bookkeeping); returns ``(partner_id, nonce)`` or raises
    ``SignatureRejected``. ``headers`` is read with lower-case names; ``path_allowed(partner_id,
    path)`` may restrict a partner to some paths."""
    partner_id = headers.get(PARTNER_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "").lower()
    if not (partner_id and timestamp and nonce and signature):
        raise SignatureRejected("missing", "X-Partner-Id, X-Timestamp, X-Nonce and X-Signature are required")
    keys = partners.get(partner_id)
    if keys is None:
        raise SignatureRejected("unknown-partner", "unknown partner")
    if path_allowed is not None and not path_allowed(partner_id, path):
        raise SignatureRejected("path-not-allowed", "this partner may not call this path")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureRejected("bad-timestamp", "X-Timestamp must be Unix seconds")
    if abs(now - int(timestamp)) > max_age:
        raise SignatureRejected("stale", f"X-Timestamp is more than {max_age} s away from the receiver's clock")
    if not _NONCE.match(nonce):
        raise SignatureRejected("bad-nonce", "X-Nonce must be 16-64 characters of A-Z a-z 0-9 _ -")
    if not _HEX_SIGNATURE.match(signature):
        raise SignatureRejected("bad-signature", "signature does not match")
    if verify(keys, method, path + ("?" + query if query else ""), timestamp, nonce, body, signature):
        return partner_id, nonce
    raise SignatureRejected("bad-signature", "signature does not match")


# Client errors from a partner's API that say "not now" rather than "never" (RFC 9110 §15.5): a key
# being rotated (401/403), an id not known there yet (404), a timeout, too early, rate limiting.
RETRYABLE_4XX = frozenset({401, 403, 404, 408, 425, 429})


def worth_retrying(status: int) -> bool:
    """Whether a signed call answered ``status`` (not its success, which the caller takes first)
    may be tried again: a 5xx, a retryable 4xx, or an answer that is no answer (1xx/2xx/3xx)."""
    return status >= 500 or status in RETRYABLE_4XX or status < 400


class SignedJsonPoster:
    """POSTs JSON to one URL, signed as above under ``key_id`` (caseflow asking licence, express
    booking the carrier). httpx is fine for these: one short call per request, low volume (DESIGN
    §7). ``timeout`` bounds each whole call, connection included: past it ``TimeoutError``; other
    transport failures raise httpx's errors (``httpx.ConnectError`` when nothing was sent)."""

    def __init__(
        self,
        url: str,
        *,
        key_id: str,
        secret: str,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.path = urlsplit(url).path  # what the receiver sees and verifies
        self.key_id = key_id
        self._secret = secret
        self.timeout = timeout
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._clock = clock

    async def post(self, payload: Any) -> httpx.Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        signed = signed_headers(self.key_id, self._secret, "POST", self.path, body, nonce=new_nonce(),
                                timestamp=int(self._clock()))  # fmt: skip
        headers = {"Content-Type": "application/json", **signed}
        try:
            async with asyncio.timeout(self.timeout):
                return await self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise TimeoutError(str(exc)) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
