"""Express's settings (env prefix EXPRESS_)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings, json_text


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXPRESS_", extra="ignore")

    service_name: str = "express"
    # The carrier: EMS's order API (the sandbox, services/express/sandbox_ems.py, in development).
    # Orders are HMAC-signed (kit.signing, ADR 0003 canonical string) with this key id and secret.
    carrier: str = "ems"
    carrier_url: str = "http://127.0.0.1:8090"
    carrier_key_id: str = "express"
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
    # The departments' counters, sender of results and receiver of originals: JSON
    # {"SCJGJ": {"name": "…", "phone": "…", "address": "…", "division_code": "371402"}}; a department
    # not listed is reached at the government service hall below.
    departments: dict[str, dict[str, str]] = Field(default_factory=dict)
    default_department_address: str = "德州市政务服务中心"
    default_department_phone: str = "12345"
    default_department_division_code: str | None = None
    # The partner id the gateway puts in X-Partner-Id after it checked a callback's signature.
    callback_partner: str = "ems"
    # Consume caseflow.case.delivery_requested / pickup_requested (off: nothing creates shipments).
    consume_case_events: bool = True
    # Messages per JetStream fetch. nats-py's fetch of n > 1, once nothing is waiting, holds the
    # first message that arrives until n have come or its 1 s timeout ends, so at a steady 50/s a
    # request could sit for up to a second (docs/benchmarks.md, Express); a backlog is still read
    # at once, one request per message.
    consumer_batch: int = Field(default=1, ge=1, le=500)
    # The outbox relay's linger (kit default 0.1 s): shipment events are few; a parcel's
    # ``created`` should reach caseflow within 100 ms of the request, not wait for a batch to fill.
    relay_linger_seconds: float = Field(default=0.02, ge=0, le=1)
    # Local days (the Art. 44 due date is one).
    timezone: str = "Asia/Shanghai"

    @field_validator("departments", mode="before")
    @classmethod
    def _departments_from_json(cls, value: Any) -> Any:
        return json_text(value)
