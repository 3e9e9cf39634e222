"""HMAC-SHA256 signatures of partner requests (department pushes, EMS callbacks).

The scheme (docs/adr/0003-gateway.md): the partner sends ``X-Partner-Id``, ``X-Timestamp`` (Unix
seconds), ``X-Nonce`` (16–64 of ``[A-Za-z0-9_-]``) and ``X-Signature`` (lower-case hex of
HMAC-SHA256 with the partner's secret over the canonical string)::

    METHOD \\n PATH[?QUERY] \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))

PATH and QUERY exactly as sent to the gateway (``/api/v1/express/callbacks/ems``). A request is
refused if the partner is unknown or not allowed on the path, the timestamp is more than
``max_age`` seconds from the gateway's clock, the signature does not match, or the nonce was
seen before within twice that window.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.routes import compile_patterns

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


def sign(secret: str, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The ``X-Signature`` value a partner sends."""
    message = canonical_string(method, path_with_query, timestamp, nonce, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    partner_id: str, secret: str, method: str, path_with_query: str, body: bytes, *, nonce: str, timestamp: int
) -> dict[str, str]:
    """Headers for a signed request (for partners' client code and tests)."""
    ts = str(timestamp)
    return {
        "X-Partner-Id": partner_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(secret, method, path_with_query, ts, nonce, body),
    }


class SignatureRejected(Exception):
    """Why a signed request is refused; ``reason`` is a short slug used in logs and metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PartnerKeys:
    secrets: tuple[bytes, ...]
    paths: tuple[re.Pattern[str], ...]

    @classmethod
    def from_config(cls, secrets: list[str], paths: list[str]) -> PartnerKeys:
        return cls(tuple(s.encode() for s in secrets), tuple(compile_patterns(paths)))


def check_signature(
    partners: Mapping[str, PartnerKeys],
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    max_age: int,
) -> tuple[str, str]:
    """Verify one signed request (no nonce bookkeeping); returns ``(partner_id, nonce)``."""
    partner_id = headers.get(PARTNER_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "").lower()
    if not (partner_id and timestamp and nonce and signature):
        raise SignatureRejected("missing", "X-Partner-Id, X-Timestamp, X-Nonce and X-Signature are required")
    keys = partners.get(partner_id)
    if keys is None:
        raise SignatureRejected("unknown-partner", "unknown partner")
    if not any(p.match(path) for p in keys.paths):
        raise SignatureRejected("path-not-allowed", "this partner may not call this path")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureRejected("bad-timestamp", "X-Timestamp must be Unix seconds")
    if abs(now - int(timestamp)) > max_age:
        raise SignatureRejected("stale", f"X-Timestamp is more than {max_age} s away from the gateway's clock")
    if not _NONCE.match(nonce):
        raise SignatureRejected("bad-nonce", "X-Nonce must be 16-64 characters of A-Z a-z 0-9 _ -")
    if not _HEX_SIGNATURE.match(signature):
        raise SignatureRejected("bad-signature", "signature does not match")
    message = canonical_string(method, path + ("?" + query if query else ""), timestamp, nonce, body)
    for secret in keys.secrets:
        if hmac.compare_digest(hmac.new(secret, message, hashlib.sha256).hexdigest(), signature):
            return partner_id, nonce
    raise SignatureRejected("bad-signature", "signature does not match")


class NonceStore(Protocol):
    """Remembers nonces; ``claim`` is true the first time a key is seen within ``ttl`` seconds."""

    async def claim(self, key: str, ttl: float) -> bool: ...


class MemoryNonceStore:
    """One process's nonces. Several gateway replicas need a shared store (RedisNonceStore)."""

    def __init__(self, max_keys: int = 1_000_000, clock=time.monotonic) -> None:
        self._seen: dict[str, float] = {}  # key → expiry; insertion order is claim order
        self._max_keys = max_keys
        self._clock = clock

    async def claim(self, key: str, ttl: float) -> bool:
        now = self._clock()
        self._purge(now)
        expiry = self._seen.get(key)
        if expiry is not None and expiry > now:
            return False
        self._seen.pop(key, None)
        self._seen[key] = now + ttl
        return True

    def _purge(self, now: float) -> None:
        # All nonces share one TTL, so the oldest-claimed expire first: stop at the first live one.
        while self._seen:
            key, expiry = next(iter(self._seen.items()))
            if expiry > now and len(self._seen) < self._max_keys:
                break
            del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)


class RedisNonceStore:
    """Nonces in Redis (``SET key 1 NX EX ttl``), for several gateway replicas.

    ``client`` is a ``redis.asyncio.Redis`` (not a dependency of the gateway until it is used).
    """

    def __init__(self, client: Any, prefix: str = "gateway:nonce:") -> None:
        self._client = client
        self._prefix = prefix

    async def claim(self, key: str, ttl: float) -> bool:
        return bool(await self._client.set(self._prefix + key, b"1", nx=True, ex=max(1, int(ttl + 0.999))))
