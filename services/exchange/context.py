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
    settings: Settings
    box: SecretBox
    signer: ReceiptSigner
    now: Callable[[], datetime] = field(default=_utc_now)

    def current_time(self) -> datetime:
        return self.now()
