"""The access-token claims of docs/adr/0002-token-claims.md, built from facts, no I/O."""

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
    actor: str | None = None,
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
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    if actor:
        claims["act"] = {"sub": actor}
    if scopes:
        claims["scope"] = " ".join(scopes)
    if roles:
        claims["roles"] = roles
    if department:
        claims["dept"] = department
    return claims
