"""Login lockout: N failed password checks within a window lock the login for a while.

The rule runs inside the database as one conditional UPDATE (services/identity/login_guard.py) so
that parallel guesses cannot pass it; this module holds the policy and the arithmetic around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    duration: timedelta = timedelta(minutes=15)


def retry_after_seconds(
    locked_until: datetime | None, window_started_at: datetime, now: datetime, policy: LockoutPolicy
) -> int:
    """Whole seconds until the login may try again: the end of the lock, or (while the last allowed
    checks are still in flight and no lock is set yet) the end of the window; at least 1."""
    end = locked_until if locked_until is not None else window_started_at + policy.window
    return max(1, math.ceil((end - now).total_seconds()))
