"""What the use cases share for one app: settings and the clock (tests move it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from services.licence.settings import Settings


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    settings: Settings
    now: Callable[[], datetime] = field(default=_utc_now)

    def current_time(self) -> datetime:
        return self.now()

    def today(self) -> date:
        """Today where the licences are issued (issue dates and validity are local days)."""
        return self.now().astimezone(ZoneInfo(self.settings.timezone)).date()
