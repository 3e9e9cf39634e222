"""What the use cases share for one app: settings, the gateway, the notification keys, the clock."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.payment.domain import signature
from services.payment.settings import Settings


def _utc_now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """``pay`` + 24 hex digits (fits the gateways' 6–32 character out_trade_no)."""
    return prefix + secrets.token_hex(12)


@dataclass
class Context:
    settings: Settings
    gateway: Any = None  # adapters.gateway.PaymentGateway
    now: Callable[[], datetime] = field(default=_utc_now)
    keys: dict[str, signature.PublicKey] = field(default_factory=dict)
    wake_refunds: Callable[[], None] = field(default=lambda: None)

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys = {
                serial: signature.load_public_key(text) for serial, text in self.settings.provider_keys.items()
            }

    def current_time(self) -> datetime:
        return self.now()
