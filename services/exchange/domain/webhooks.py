"""Outbound webhook rules — pure (ADR 0020): the retry schedule, what an answer means, the order
in which a subscription's deliveries may go, and what a subscription may be.

Order: a subscription's deliveries of one ``ordering_key`` (one case) go in ``sequence`` order; a
delivery waits while an earlier one of the same key is still ``pending``. A ``dead`` delivery does
not hold the later ones back (they would wait forever behind a poisoned one): they go on, the
receiver sees the gap in ``sequence``, and an administrator's replay sends the dead one again with
its own id and sequence.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

# Standard Webhooks / Svix: the first try at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_SCHEDULE: Final[tuple[float, ...]] = (5, 300, 1800, 7200, 18000, 36000, 36000)
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATUSES: Final = (PENDING, DELIVERED, DEAD)
# Only a delivery still being tried holds the later ones of its case back.
HOLDS_BACK: Final = frozenset({PENDING})
SECRET_PREFIX: Final = "whsec_"
SECRET_BYTES: Final = (24, 32)  # Standard Webhooks: 24 to 64 bytes; we make 32, accept 24–32 given
MAX_URL_LENGTH: Final = 500


def retry_delay(attempts: int, schedule: Sequence[float], *, jitter: float = 1.0) -> float | None:
    """Seconds to wait after the ``attempts``-th failed try (counting from 1), or ``None`` when
    the schedule is spent and the delivery is dead. ``jitter`` is a draw in 0.9–1.1 so that a
    department's backlog does not come back all at the same second."""
    if attempts < 1:
        raise ValueError("attempts counts from 1")
    if attempts > len(schedule):
        return None
    return schedule[attempts - 1] * jitter


def max_attempts(schedule: Sequence[float]) -> int:
    """Tries in all: the first, then one after each wait of the schedule."""
    return len(schedule) + 1


def is_success(status_code: int | None) -> bool:
    """Only a 2xx is delivered; any other answer, a timeout or no connection is tried again
    (Standard Webhooks: the receiver acknowledges with a 2xx, quickly)."""
    return status_code is not None and 200 <= status_code < 300


@dataclass(frozen=True)
class Queued:
    """What the ordering rule needs to know of a delivery."""

    id: str
    subscription_id: str
    ordering_key: str
    sequence: int
    status: str
    next_attempt_at: datetime


def sendable(deliveries: Iterable[Queued], now: datetime) -> list[Queued]:
    """The deliveries that may be sent now: pending, due, and no earlier one (lower sequence) of
    the same subscription and ordering key still pending. At most one per (subscription, key),
    so two workers can never send one case's webhooks side by side. The worker's claim query is
    this rule in SQL (deliveries.py)."""
    rows = list(deliveries)
    first_pending: dict[tuple[str, str], int] = {}
    for row in rows:
        if row.status in HOLDS_BACK:
            key = (row.subscription_id, row.ordering_key)
            first_pending[key] = min(first_pending.get(key, row.sequence), row.sequence)
    return sorted(
        (
            row
            for row in rows
            if row.status == PENDING
            and row.next_attempt_at <= now
            and first_pending[(row.subscription_id, row.ordering_key)] == row.sequence
        ),
        key=lambda row: (row.next_attempt_at, row.id),
    )


def url_problem(url: str, *, allow_http: bool) -> tuple[str, str] | None:
    """Why ``url`` cannot be a webhook endpoint, as (rule, message); ``None`` when it can.
    Plain http only where ``allow_http`` (sandbox platforms): deliveries carry personal data."""
    if len(url) > MAX_URL_LENGTH:
        return "max_length", f"at most {MAX_URL_LENGTH} characters"
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF for ch in url):
        return "characters", "no spaces, control characters or lone surrogates"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "url", "not a URL"
    del port
    allowed = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in allowed:
        return "scheme", "https only" if not allow_http else "http or https"
    if not parts.hostname:
        return "host", "the URL names no host"
    if parts.username or parts.password:
        return "userinfo", "no credentials in the URL (the webhook signature authenticates the platform)"
    if parts.fragment:
        return "fragment", "no fragment"
    return None


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is no Standard Webhooks secret (``whsec_`` + base64 of 24–32 bytes)."""
    if not secret.startswith(SECRET_PREFIX):
        return f"starts with {SECRET_PREFIX}"
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return "base64 after the prefix"
    if not SECRET_BYTES[0] <= len(raw) <= SECRET_BYTES[1]:
        return f"{SECRET_BYTES[0]} to {SECRET_BYTES[1]} bytes"
    return None
