"""What the outbound half's use cases share for one app: settings, the secrets key and the clock
(tests move it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kit.errors import Problem
from services.exchange.secrets import secrets_key
from services.exchange.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class OutboundContext:
    settings: Settings
    now: Callable[[], datetime] = field(default=utc_now)

    def current_time(self) -> datetime:
        return self.now()

    def key(self) -> bytes:
        """The AES key webhook secrets are sealed under; 503 while none is configured."""
        value = self.settings.secrets_key.get_secret_value()
        if not value:
            raise Problem(503, "not-configured", "Secrets key missing", "EXCHANGE_SECRETS_KEY is not set")
        return secrets_key(value)
