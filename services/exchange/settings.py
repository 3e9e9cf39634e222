"""Exchange's settings (env prefix EXCHANGE_)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings, json_text
from services.exchange.domain.webhooks import DEFAULT_SCHEDULE


class InboundSettings(ServiceSettings):
    """Partners, pushes and receipts (services/exchange/partners.py, pushes.py, receipts.py)."""

    # AES-GCM key (32 bytes, base64) under which partner and webhook secrets are stored.
    secrets_key: SecretStr = SecretStr("")
    # The receipts' Ed25519 signing key (JWK file, created on first start when missing).
    receipt_key_file: str = ""
    # Same window as the gateway's: a push whose X-Timestamp is further away is refused.
    signature_max_age_seconds: int = Field(default=300, ge=1)
    # The path prefix the partner signed (the gateway's): exchange re-verifies the signature over
    # ``{signed_path_prefix}/departments/{code}/events``, exactly what the partner sent the gateway.
    signed_path_prefix: str = "/api/v1"
    # Callers of the internal ``GET /partners/keys`` (the gateway), HMAC-signed (kit.signing) under
    # these key ids: JSON {"gateway": "<secret>"}. Empty: nobody may read the keys.
    service_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # caseflow.push.settled and licence.push.settled → the push's outcome and a push.settled webhook.
    consume_settled_events: bool = True
    # A push body above this is refused (413) before anything else reads it (the gateway's own
    # limit for signed requests is 1 MiB as well).
    max_push_bytes: int = Field(default=1024 * 1024, ge=1024)
    # The seed's demo partner (services/exchange/cli.py seed-demo): the sandbox department system
    # signs with this secret. Empty: the seed makes no key for it.
    demo_partner_secret: SecretStr = SecretStr("")

    @field_validator("service_keys", mode="before")
    @classmethod
    def _service_keys_from_json(cls, value: Any) -> Any:
        return json_text(value)


class OutboundSettings(ServiceSettings):
    """Subscriptions and webhook deliveries (services/exchange/subscriptions.py, deliveries.py,
    delivery_worker.py; ADR 0020)."""

    deliveries_enabled: bool = True
    delivery_poll_seconds: float = Field(default=1.0, gt=0)
    delivery_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    delivery_batch_size: int = Field(default=50, ge=1, le=1000)
    delivery_concurrency: int = Field(default=10, ge=1, le=200)
    # Waits between tries after the first (Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); the
    # delivery is dead after the last. Tests shrink it; a deployment rarely needs to.
    retry_schedule_seconds: list[float] = Field(default_factory=lambda: list(DEFAULT_SCHEDULE), min_length=1)
    # Each wait is drawn within ± this share, so a department's backlog does not return at once.
    retry_jitter: float = Field(default=0.1, ge=0, lt=1)
    # After a secret rotation the old secret keeps signing (a second signature) this long.
    previous_secret_hours: float = Field(default=24.0, ge=0)
    consume_case_events: bool = True
    # make run's seed subscribes the sandbox department system with this secret (seed_outbound.py).
    demo_webhook_secret: SecretStr = SecretStr("")
    demo_webhook_url: str = ""
    demo_webhook_department: str = "BDCDJ"


class Settings(InboundSettings, OutboundSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", extra="ignore")

    service_name: str = "exchange"
    timezone: str = "Asia/Shanghai"
