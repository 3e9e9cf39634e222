"""Exchange's settings (env prefix EXCHANGE_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class InboundSettings(ServiceSettings):
    """Partners, pushes and receipts (services/exchange/partners.py, pushes.py, receipts.py)."""

    # AES-GCM key (32 bytes, base64) under which partner and webhook secrets are stored.
    secrets_key: SecretStr = SecretStr("")
    # The receipts' Ed25519 signing key (JWK file, created on first start when missing).
    receipt_key_file: str = ""
    # Same window as the gateway's: a push whose X-Timestamp is further away is refused.
    signature_max_age_seconds: int = Field(default=300, ge=1)


class OutboundSettings(ServiceSettings):
    """Subscriptions and webhook deliveries (services/exchange/webhooks.py, deliveries.py)."""

    deliveries_enabled: bool = True
    delivery_poll_seconds: float = Field(default=1.0, gt=0)
    delivery_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    consume_case_events: bool = True


class Settings(InboundSettings, OutboundSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", extra="ignore")

    service_name: str = "exchange"
    timezone: str = "Asia/Shanghai"
