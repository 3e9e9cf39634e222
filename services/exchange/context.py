"""What exchange's handlers need besides the session, for both halves (ADR 0019, 0020): settings,
the secrets box (partner keys and webhook secrets are sealed in it), the receipts' signer and a
clock tests can set (``app.state.exchange``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kit.deps import from_app_state
from services.exchange.receipts import ReceiptSigner
from services.exchange.secretbox import SecretBox
from services.exchange.settings import Settings


def utc_now() -> datetime:
    """The wall clock, in UTC (a context's default clock)."""
    return datetime.now(UTC)


@dataclass
class ExchangeContext:
    """Built once at start (wiring.start); handlers reach it with ``from_app_state``."""

    settings: Settings
    box: SecretBox
    signer: ReceiptSigner
    now: Callable[[], datetime] = field(default=utc_now)
    # When this process last wrote a key's last_used_at (pushes.py writes it once a minute at most).
    keys_touched: dict[str, datetime] = field(default_factory=dict)

    @classmethod
    def for_tools(cls, settings: Settings) -> ExchangeContext:
        """A context for the command line (the demo seed): the configured secrets box and a
        throwaway receipt signer (the seed signs no receipt; the service's key file is its own)."""
        box = SecretBox.from_setting(settings.secrets_key.get_secret_value(), sandbox=settings.sandbox)
        return cls(settings=settings, box=box, signer=ReceiptSigner.generate())

    def current_time(self) -> datetime:
        return self.now()


# The routers' way to it (both halves): ``app_context(request)`` or ``Depends(app_context)``.
app_context = from_app_state("exchange", ExchangeContext)
