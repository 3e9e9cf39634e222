"""Payment's settings (env prefix PAYMENT_)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings, json_text


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENT_", extra="ignore")

    service_name: str = "payment"
    # The payment gateway (支付渠道). ``sandbox``: services/payment/sandbox_gateway.py over HTTP;
    # ``http``: a real gateway speaking the same API (adapters/gateway.py) at ``gateway_url``.
    # Both are HttpGateway; the name is what orders record as their provider and the last segment
    # of the notify URL (POST /notifications/{provider}).
    gateway_adapter: Literal["sandbox", "http"] = "sandbox"
    provider: str = Field(default="sandbox", pattern=r"^[a-z][a-z0-9-]{1,31}$")
    gateway_url: str = "http://127.0.0.1:8092"
    # Payment's requests to the gateway are HMAC-signed (kit.signing, ADR 0003 canonical string):
    # the merchant id is the key id (商户号).
    merchant_id: str = "payment"
    merchant_secret: SecretStr = SecretStr("")
    gateway_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Where the gateway posts its notifications: the PUBLIC gateway route to POST /notifications/{provider}.
    notify_url: str = "http://127.0.0.1:8000/api/v1/payment/notifications/sandbox"
    # The gateway's notification keys: JSON {serial: public key}, the key as PEM (SubjectPublicKeyInfo)
    # or base64 of its DER; Ed25519 or RSA (RSA-SHA256, PKCS#1 v1.5, as WeChat Pay API v3 signs).
    # Two serials while the gateway rotates its key. Empty: every notification is refused (401).
    provider_keys: dict[str, str] = Field(default_factory=dict)
    # A notification's Pay-Timestamp may be this far from our clock; nonces are remembered twice as long.
    notification_max_age_seconds: int = Field(default=300, ge=10, le=3600)
    # A transaction the payer has not paid within this is closed by the gateway.
    transaction_expire_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # 电子票据: the issuing region's 2-digit province code (GB/T 2260; 37 = 山东) opens the 票据代码;
    # the check code (校验码) is an HMAC under receipt_key (a development key when empty and sandbox).
    receipt_province_code: str = Field(default="37", pattern=r"^[1-8][0-9]$")
    receipt_key: SecretStr = SecretStr("")
    # Department names printed on receipts: JSON {"SCJGJ": "德州市市场监督管理局"}.
    departments: dict[str, str] = Field(default_factory=dict)
    # The refund worker: claims due refunds in batches; a gateway that is away is asked again after
    # base × 2^(attempts−1) seconds, capped.
    refunds_enabled: bool = True
    refund_poll_seconds: float = Field(default=1.0, gt=0)
    refund_batch_size: int = Field(default=20, ge=1, le=500)
    refund_backoff_base_seconds: float = Field(default=5.0, gt=0)
    refund_backoff_max_seconds: float = Field(default=600.0, gt=0)
    # Consume caseflow.case.fees_due / withdrawn / rejected / denied (off: no orders are opened).
    consume_case_events: bool = True
    consumer_batch: int = Field(default=1, ge=1, le=500)
    relay_linger_seconds: float = Field(default=0.02, ge=0, le=1)
    timezone: str = "Asia/Shanghai"

    @field_validator("provider_keys", "departments", mode="before")
    @classmethod
    def _from_json(cls, value: Any) -> Any:
        return json_text(value)

    def receipt_secret(self) -> bytes:
        key = self.receipt_key.get_secret_value()
        if not key:
            if not self.sandbox:
                raise ValueError("PAYMENT_RECEIPT_KEY is required outside a sandbox")
            key = "make-run-only-payment-receipt-key"
        return key.encode()
