"""The access-token claims of docs/adr/0002-token-claims.md (and its amendments), built from facts
identity holds, no I/O. ``name`` is the subject's name from identity's record: a person's
(registry-confirmed from L2), an enterprise's registered name, an officer's name. Tokens made at
the hall (ADR 0025) carry ``chn`` (``counter`` or ``kiosk``) and no ``sid``: nothing refreshes
them; a counter token names the officer who helped in ``hlp`` (with the officer's login session,
so that session's end revokes it), a kiosk token its device in ``dev``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any


def access_claims(
    *,
    subject: str,
    kind: str,
    level: int,
    session_id: str | None,
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
    channel: str | None = None,
    helper: dict[str, str] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "kind": kind,
        "lvl": level,
        "jti": uuid.uuid4().hex,
        # Milliseconds (RFC 7519 NumericDate may be fractional): a revocation "issued at or before"
        # must not catch a token signed later within the same second (a re-login right after it).
        "iat": round(now.timestamp(), 3),
        "exp": int((now + ttl).timestamp()),
    }
    if session_id is not None:
        claims["sid"] = session_id
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
    if channel and channel != "online":
        claims["chn"] = channel
    if helper:
        claims["hlp"] = helper
    if device:
        claims["dev"] = device
    return claims
