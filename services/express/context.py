"""What the use cases share for one app: settings, the carrier and the clock (tests move it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.express.settings import Settings


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    settings: Settings
    now: Callable[[], datetime] = field(default=_utc_now)

    def current_time(self) -> datetime:
        return self.now()
