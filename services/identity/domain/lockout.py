"""Login lockout: N failures within a window lock the account for a while."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    duration: timedelta = timedelta(minutes=15)


def locked_until(failures: Sequence[datetime], now: datetime, policy: LockoutPolicy) -> datetime | None:
    """When the lock ends, or None if the account may try now.

    The lock starts at the failure that completed ``max_failures`` inside one window and lasts
    ``duration`` from there; failures older than window + duration can no longer matter.
    """
    ordered = sorted(failures)
    for end in range(policy.max_failures - 1, len(ordered)):
        start = ordered[end - policy.max_failures + 1]
        if ordered[end] - start <= policy.window:
            until = ordered[end] + policy.duration
            if until > now:
                return until
    return None
