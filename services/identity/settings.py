"""Identity's settings (env prefix IDENTITY_).

An adapter choice ("sandbox" or "http") says which implementation talks to an external system;
it is independent of ``sandbox`` (kit.settings), which says whether the sandbox *pages* (the SMS
codes a sandbox gateway "sent", the sandbox register) are served at all.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings, json_text

AdapterChoice = Literal["sandbox", "http"]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    service_name: str = "identity"
    access_token_ttl_seconds: int = Field(default=600, ge=30)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # A new signing key every rotation period; older keys stay in the JWKS until their tokens expire.
    key_rotation_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    lockout_max_failures: int = Field(default=5, ge=1)
    lockout_window_seconds: int = Field(default=15 * 60, ge=1)
    lockout_duration_seconds: int = Field(default=15 * 60, ge=1)
    sms_code_ttl_seconds: int = Field(default=300, ge=30)
    sms_code_max_attempts: int = Field(default=5, ge=1)
    sms_resend_interval_seconds: int = Field(default=60, ge=0)
    # Adapters: "sandbox" (behaves like the real thing, keeps what it sends) or "http".
    sms_adapter: AdapterChoice = "sandbox"
    sms_http_url: str = ""
    sms_http_api_key: SecretStr = SecretStr("")
    wechat_adapter: AdapterChoice = "sandbox"
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_app_id: str = ""
    wechat_app_secret: SecretStr = SecretStr("")
    registry_adapter: AdapterChoice = "sandbox"
    registry_http_url: str = ""
    registry_http_api_key: SecretStr = SecretStr("")
    face_adapter: AdapterChoice = "sandbox"
    face_http_url: str = ""
    face_http_api_key: SecretStr = SecretStr("")
    # The enterprise registry (法人库): registered name, legal representative, status.
    enterprise_registry_adapter: AdapterChoice = "sandbox"
    enterprise_registry_http_url: str = ""
    enterprise_registry_http_api_key: SecretStr = SecretStr("")
    enterprise_registry_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # A JSON list of {uscc, name, legal_representative, status} added to the sandbox register.
    enterprise_registry_sandbox_file: str = ""
    # Sandbox behaviour: a little latency like the real gateways, and an optional failure rate.
    sandbox_delay_ms: int = Field(default=5, ge=0)
    sandbox_failure_rate: float = Field(default=0.0, ge=0, le=1)
    adapter_timeout_seconds: float = Field(default=5.0, gt=0)
    # Public and bench-only identity: 127.0.0.1:8001 issues tokens for itself, so verify locally.
    jwks_url: str = ""
    # Tokens made at the hall (ADR 0025): for a person an officer verified at the counter, and for
    # a person whose ID card a kiosk read. Nothing refreshes them.
    counter_token_ttl_seconds: int = Field(default=30 * 60, ge=30)
    kiosk_token_ttl_seconds: int = Field(default=10 * 60, ge=30)
    # AES-GCM key (32 bytes, base64) under which kiosk secrets are stored (kit.secretbox). Empty in
    # a sandbox: the fixed development key; empty outside one: kiosks cannot be registered or used
    # (503), everything else works.
    secrets_key: SecretStr = SecretStr("")
    # Callers of the internal ``GET /kiosks/keys`` (the gateway), HMAC-signed (kit.signing) under
    # these key ids: JSON {"gateway": "<secret>"}. Empty: nobody may read the kiosks' keys.
    service_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # A kiosk's X-Timestamp further than this from identity's clock is refused (the gateway's window).
    signature_max_age_seconds: int = Field(default=300, ge=1)
    # What a kiosk signed: the gateway's path, of which identity sees the part after this prefix.
    signed_path_prefix: str = "/api/v1/identity"
    # 身份证核验: the ID-card check a kiosk's card read goes through.
    id_card_adapter: AdapterChoice = "sandbox"
    id_card_http_url: str = ""
    id_card_http_api_key: SecretStr = SecretStr("")
    # The department whose admin manages the kiosks with the platform admin (domain/rights.py):
    # 政务服务中心, the one that runs the halls.
    kiosk_department: str = "ZWFW"
    # seed-demo registers kiosk KIOSK-371402-01 of hall HALL-371402 with this secret (make run only;
    # never a deployment's). Empty: the seed registers no kiosk.
    demo_kiosk_secret: SecretStr = SecretStr("")
    # argon2id cost (RFC 9106's second recommended profile by default); tests lower it.
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=8)

    @field_validator("service_keys", mode="before")
    @classmethod
    def _service_keys_from_json(cls, value: Any) -> Any:
        return json_text(value)

    @property
    def longest_token_ttl_seconds(self) -> int:
        """The longest an access token of any kind lives: keys and revocations are kept that long."""
        return max(self.access_token_ttl_seconds, self.counter_token_ttl_seconds, self.kiosk_token_ttl_seconds)
