"""What the inbound half's handlers need besides the session: settings, the secrets box, the
receipts' signer and a clock tests can set (``app.state.exchange_inbound``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.exchange.receipts import ReceiptSigner
from services.exchange.secretbox import SecretBox
from services.exchange.settings import Settings


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class InboundContext:
    """Built once at start (wiring.inbound_start); handlers reach it with ``from_app_state``."""

    settings: Settings
    box: SecretBox
    signer: ReceiptSigner
    now: Callable[[], datetime] = field(default=_utc_now)
    # When this process last wrote a key's last_used_at (pushes.py writes it once a minute at most).
    keys_touched: dict[str, datetime] = field(default_factory=dict)

    def current_time(self) -> datetime:
        return self.now()
