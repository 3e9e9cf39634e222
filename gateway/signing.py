"""HMAC-SHA256 signatures of partner requests (department pushes, EMS callbacks).

The scheme (docs/adr/0003-gateway.md): the partner sends ``X-Partner-Id``, ``X-Timestamp`` (Unix
seconds), ``X-Nonce`` (16–64 of ``[A-Za-z0-9_-]``) and ``X-Signature`` (lower-case hex of
HMAC-SHA256 with the partner's secret over the canonical string)::

    METHOD \\n PATH[?QUERY] \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))

PATH and QUERY exactly as sent to the gateway (``/api/v1/express/callbacks/ems``). A request is
refused if the partner is unknown or not allowed on the path, the timestamp is more than
``max_age`` seconds from the gateway's clock, the signature does not match, or the nonce was
seen before within twice that window. The pure parts (canonical string, signing, verifying a
request) are kit.signing's, shared with services that sign their calls to each other.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.routes import compile_patterns

# The scheme's pure parts are the kit's (services sign and verify service-to-service calls with them).
from kit.signing import (
    NONCE_HEADER,
    PARTNER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRejected,
    canonical_string,
    sign,
    signed_headers,
    verify_request,
)

__all__ = [
    "NONCE_HEADER",
    "PARTNER_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "MemoryNonceStore",
    "NonceStore",
    "PartnerKeys",
    "RedisNonceStore",
    "SignatureRejected",
    "canonical_string",
    "check_signature",
    "sign",
    "signed_headers",
]


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
    return verify_request(
        {partner: keys.secrets for partner, keys in partners.items()},
        method=method,
        path=path,
        query=query,
        headers=headers,
        body=body,
        now=now,
        max_age=max_age,
        path_allowed=lambda partner, wanted: any(p.match(wanted) for p in partners[partner].paths),
    )


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
