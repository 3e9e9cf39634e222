"""委托 mandates: who may act for an enterprise, for what, until when."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from kit.errors import RuleViolation

# Scopes are "<area>" or "<area>:<matter-or-action>", lowercase; "*" is the legal representative's.
SCOPE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{1,31}(:[A-Za-z0-9_.-]{1,64})?$")
MAX_MANDATE = timedelta(days=3 * 366)


def normalise_scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise RuleViolation("min_items", "at least one scope")
    cleaned = sorted({scope.strip() for scope in scopes})
    for scope in cleaned:
        if not SCOPE_PATTERN.match(scope):
            raise RuleViolation("pattern", f"scope {scope!r} is not '<area>' or '<area>:<item>'")
    return cleaned


def check_expiry(expires_at: datetime, now: datetime) -> None:
    if expires_at.tzinfo is None:
        raise RuleViolation("timezone", "expires_at needs a timezone")
    if expires_at <= now:
        raise RuleViolation("future", "expires_at must be in the future")
    if expires_at - now > MAX_MANDATE:
        raise RuleViolation("max_duration", "a mandate lasts at most three years")


def mandate_usable(*, expires_at: datetime, revoked_at: datetime | None, now: datetime) -> bool:
    """A mandate acts only before its expiry and only while not revoked."""
    return revoked_at is None and now < expires_at
