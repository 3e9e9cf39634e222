"""Licence's settings (env prefix LICENCE_)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings, json_text


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LICENCE_", extra="ignore")

    service_name: str = "licence"
    # Local day boundaries: issue dates, validity and the expiry timer count in this zone.
    timezone: str = "Asia/Shanghai"
    # Internal callers of POST /checks: key id → HMAC secret (ADR 0003 canonical string), e.g.
    # LICENCE_SERVICE_KEYS='{"caseflow": "…"}'. Empty: /checks refuses everyone (401).
    service_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # A signed internal request older (or newer) than this is refused; its nonce is remembered twice as long.
    signature_max_age_seconds: int = Field(default=300, ge=1, le=3600)
    # Consume caseflow.case.approved and issue the result licence (off: officers and imports only).
    consume_case_events: bool = True
    # Approvals applied at once when a backlog is fetched (each in its own transaction; different
    # cases are independent, the same case is held once by UNIQUE (case_no, type_code)).
    # docs/benchmarks.md (Approve → shipment): one at a time fell behind 50 approvals/s.
    case_consumer_concurrency: int = Field(default=4, ge=1, le=64)
    # The outbox relay's linger (kit default 0.1 s): an issued licence is awaited by caseflow (the
    # case's result, the EMS delivery), each event should leave within tens of milliseconds.
    relay_linger_seconds: float = Field(default=0.02, ge=0, le=1)
    # Consume exchange.department.licence_issued: certificates department systems push are stored
    # as their licences and answered with licence.push.settled (off: no department pushes).
    consume_department_events: bool = True
    # The expiry timer: marks licences past valid_until expired, and reminds holders this many days before.
    expiry_enabled: bool = True
    expiry_interval_seconds: float = Field(default=3600.0, gt=0)
    expiring_reminder_days: int = Field(default=30, ge=1, le=365)
    expiry_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Bulk import: rows written per transaction, the longest line accepted.
    import_batch_size: int = Field(default=500, ge=1, le=10_000)
    import_max_line_bytes: int = Field(default=64 * 1024, ge=1024)
    # POST /licences/verify is public: at most this many verifications per client address per minute.
    verify_per_minute: int = Field(default=60, ge=1)

    # The Ed25519 private JWK that signs QR credentials and the status list (one for all replicas);
    # empty: a development key kept in signing_key_file. Retired public JWKs stay published (JSON list).
    signing_key: SecretStr = SecretStr("")
    signing_key_file: str = ".data/licence-signing-key.json"
    retired_keys: str = "[]"
    # The status list is rebuilt at most this often per process; verifiers may cache it twice as long.
    status_list_ttl_seconds: int = Field(default=60, ge=1, le=86_400)

    # The seal of printable PDFs (PAdES): a PEM private key and the PEM certificate chain, leaf first.
    # Empty: GET /licences/{identifier}/pdf answers 501 (nothing unsigned is handed out as a licence).
    pdf_seal_key: SecretStr = SecretStr("")
    pdf_seal_certificates: str = ""

    @field_validator("service_keys", mode="before")
    @classmethod
    def _keys_from_json(cls, value: Any) -> Any:
        return json_text(value)
