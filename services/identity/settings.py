"""Identity's settings (env prefix IDENTITY_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


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
    sms_adapter: str = "sandbox"
    sms_http_url: str = ""
    sms_http_api_key: str = ""
    wechat_adapter: str = "sandbox"
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_app_id: str = ""
    wechat_app_secret: str = ""
    registry_adapter: str = "sandbox"
    registry_http_url: str = ""
    registry_http_api_key: str = ""
    face_adapter: str = "sandbox"
    face_http_url: str = ""
    face_http_api_key: str = ""
    # Sandbox behaviour: a little latency like the real gateways, and an optional failure rate.
    sandbox_delay_ms: int = Field(default=5, ge=0)
    sandbox_failure_rate: float = Field(default=0.0, ge=0, le=1)
    adapter_timeout_seconds: float = Field(default=5.0, gt=0)
    # Public and bench-only identity: 127.0.0.1:8001 issues tokens for itself, so verify locally.
    jwks_url: str = ""
    # argon2id cost (RFC 9106's second recommended profile by default); tests lower it.
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=8)
