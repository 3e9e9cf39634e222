"""The access-token claims of docs/adr/0002-token-claims.md (and its 2026-11-30 amendment), built
from facts identity holds, no I/O. ``name`` is the subject's name from identity's record: a
person's (registry-confirmed from L2), an enterprise's registered name, an officer's name."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any


def access_claims(
    *,
    subject: str,
    kind: str,
    level: int,
    session_id: str,
    issuer: str,
    audience: str,
    now: datetime,
    ttl: timedelta,
    name: str | None = None,
    actor: str | None = None,
    actor_name: str | None = None,
    scopes: list[str] | None = None,
    roles: list[str] | None = None,
    department: str | None = None,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "kind": kind,
        "lvl": level,
        "sid": session_id,
        "jti": uuid.uuid4().hex,
        # Milliseconds (RFC 7519 NumericDate may be fractional): a revocation "issued at or before"
        # must not catch a token signed later within the same second (a re-login right after it).
        "iat": round(now.timestamp(), 3),
        "exp": int((now + ttl).timestamp()),
    }
    if name:
        claims["name"] = name
    if actor:
        claims["act"] = {"sub": actor, "name": actor_name} if actor_name else {"sub": actor}
    if scopes:
        claims["scope"] = " ".join(scopes)
    if roles:
        claims["roles"] = roles
    if department:
        claims["dept"] = department
    return claims
