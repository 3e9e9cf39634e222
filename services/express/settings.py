"""Express's settings (env prefix EXPRESS_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXPRESS_", extra="ignore")

    service_name: str = "express"
    # The carrier: EMS's order API (the sandbox, services/express/sandbox_ems.py, in development).
    # Orders are HMAC-signed (kit.signing, ADR 0003 canonical string) with this key id and secret.
    carrier: str = "ems"
    carrier_url: str = "http://127.0.0.1:8090"
    carrier_key_id: str = "yiwang-express"
    carrier_secret: SecretStr = SecretStr("")
    carrier_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The order worker: claims due carrier_orders rows in batches; a carrier that is away
    # (CarrierUnavailable) is asked again after base × 2^(attempts−1) seconds, jittered, capped.
    carrier_orders_enabled: bool = True
    carrier_poll_seconds: float = Field(default=1.0, gt=0)
    carrier_batch_size: int = Field(default=50, ge=1, le=1000)
    carrier_concurrency: int = Field(default=8, ge=1, le=100)
    carrier_backoff_base_seconds: float = Field(default=5.0, gt=0)
    carrier_backoff_max_seconds: float = Field(default=600.0, gt=0)
    # The partner id the gateway puts in X-Partner-Id after it checked a callback's signature.
    callback_partner: str = "ems"
    # Consume caseflow.case.delivery_requested / pickup_requested (off: nothing creates shipments).
    consume_case_events: bool = True
    # Local days (the Art. 44 due date is one).
    timezone: str = "Asia/Shanghai"
