"""Gateway settings (env prefix ``GATEWAY_``; dicts and lists are given as JSON)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.upstreams import replica_urls, url_prefix

MIB = 1024 * 1024


class Partner(BaseModel):
    """A department system or EMS that pushes signed requests.

    ``secrets``: any of them may sign (two during a rotation). ``paths``: route patterns the
    partner may call (``**`` = every signed route), so a department cannot push for another.
    """

    secrets: list[str] = Field(min_length=1)
    paths: list[str] = Field(default_factory=lambda: ["**"])


def default_upstreams() -> dict[str, str | list[str]]:
    # An upstream URL may carry a path: it is prepended to what follows /api/v1/<area>. An area may
    # also name a list of replica URLs, all with the same path (ADR 0032).
    return {
        "identity": "http://127.0.0.1:8001",
        "catalog": "http://127.0.0.1:8002",
        "caseflow": "http://127.0.0.1:8003",
        "licence": "http://127.0.0.1:8004",
        "express": "http://127.0.0.1:8005",
        "exchange": "http://127.0.0.1:8006",
        "departments": "http://127.0.0.1:8006/departments",
        "payment": "http://127.0.0.1:8008",
        "hall": "http://127.0.0.1:8007",
    }


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    environment: str = "development"
    upstreams: dict[str, str | list[str]] = Field(default_factory=default_upstreams)
    # A replica that refused a connection is skipped this long (ADR 0032); 0 = never skipped.
    replica_cooldown_seconds: float = Field(default=2.0, ge=0)
    # Rows added in front of gateway.routes.DEFAULT_RULES (same keys as RouteRule).
    extra_routes: list[dict[str, Any]] = Field(default_factory=list)

    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    token_issuer: str = "yiwang-identity"
    token_audience: str = "yiwang"
    # An unknown kid triggers a JWKS fetch at most once per this many seconds.
    jwks_min_refetch_seconds: float = Field(default=10.0, ge=0)
    # Verified tokens remembered (until their exp) so a token is checked once, not per request.
    verified_token_cache_size: int = Field(default=10_000, ge=0)

    # Revocations (identity.tokens.revoked on identity's stream) are followed over NATS by every
    # gateway replica for itself and checked on every request, cached tokens too (ADR 0010).
    # Off only in tests without NATS. While NATS is away the gateway fails open, loudly.
    # Empty: not configured — the gateway then cannot refuse revoked tokens and says so at start
    # (ERROR log, token_revocation_feed_up 0); it never guesses a server (the development machines
    # run someone else's NATS on 4222). `make run` and the compose file set it.
    nats_url: str = ""
    nats_enabled: bool = True
    # How far back the revocations are read on start and reconnect: the longest-lived token identity
    # makes (a counter token, 30 minutes; ADR 0025).
    access_token_max_ttl_seconds: int = Field(default=1800, ge=1)

    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    read_timeout_seconds: float = Field(default=15.0, gt=0)
    upstream_pool_size: int = Field(default=512, ge=1)
    upstream_keepalive_seconds: float = Field(default=4.0, gt=0)  # below uvicorn's 5 s

    max_body_bytes: int = Field(default=2 * MIB, ge=0)
    signed_max_body_bytes: int = Field(default=1 * MIB, ge=0)

    rate_limit_ip_per_second: float = Field(default=100.0, gt=0)
    rate_limit_ip_burst: float = Field(default=200.0, ge=1)
    rate_limit_subject_per_second: float = Field(default=20.0, gt=0)
    rate_limit_subject_burst: float = Field(default=60.0, ge=1)
    rate_limit_max_keys: int = Field(default=100_000, ge=100)
    # Peers whose X-Forwarded-For is believed (a load balancer in front of the gateway).
    trusted_proxies: list[str] = Field(default_factory=list)

    # CORS for browser front-ends (H5, admin consoles): GATEWAY_CORS_ORIGINS='["https://h5.example.gov.cn"]'.
    # Exact origins only (no wildcard: the API takes bearer tokens); empty = no cross-origin browser
    # calls. Preflights are answered by the gateway; allowed request headers are Authorization,
    # Content-Type, Idempotency-Key, If-Match, If-None-Match, X-Request-Id; exposed response headers
    # X-Request-Id, Retry-After, ETag, Location, Content-Disposition. No cookies (credentials) are used.
    cors_origins: list[str] = Field(default_factory=list)
    cors_max_age_seconds: int = 600

    # /docs: Swagger UI over the merged /api/v1/openapi.json, its assets served from the
    # fastapi-offline package (no CDN, works without internet).
    docs_enabled: bool = True

    partners: dict[str, Partner] = Field(default_factory=dict)
    signature_max_age_seconds: int = Field(default=300, ge=1)
    # Department partners (ADR 0019): read from exchange's GET /partners/keys (signed with the
    # service key ``exchange_key_id`` / ``exchange_secret``), merged with ``partners`` above,
    # reloaded every ``partner_refresh_seconds`` and at once on exchange.partner.changed (over
    # ``nats_url``). Empty URL or secret: static partners only.
    partner_source_url: str = ""
    exchange_key_id: str = "gateway"
    exchange_secret: SecretStr = SecretStr("")
    partner_refresh_seconds: float = Field(default=30.0, gt=0)

    # Self-service kiosks (ADR 0025): read from identity's GET /kiosks/keys (signed with the service
    # key ``identity_key_id`` / ``identity_secret``), reloaded every ``kiosk_refresh_seconds`` and
    # at once on identity.kiosk.changed (over ``nats_url``). Empty URL or secret: no kiosk is known,
    # so every kiosk request and every kiosk token is refused.
    kiosk_source_url: str = ""
    identity_key_id: str = "gateway"
    identity_secret: SecretStr = SecretStr("")
    kiosk_refresh_seconds: float = Field(default=30.0, gt=0)

    readiness_timeout_seconds: float = Field(default=1.0, gt=0)
    openapi_cache_seconds: float = Field(default=30.0, ge=0)

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("upstreams")
    @classmethod
    def _replicas_share_a_prefix(cls, upstreams: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        """Every area needs a replica, and all its replicas the same path: a request's path is
        built before its replica is chosen, and the OpenAPI merge reads the area's prefix once.
        Replicas are reached over plain http://host:port (the gateway's client, ADR 0035)."""
        for area, value in upstreams.items():
            urls = replica_urls(value)
            if not urls:
                raise ValueError(f"upstreams[{area!r}]: at least one replica URL is required")
            for url in urls:
                parts = urlsplit(url)
                if parts.scheme != "http" or not parts.hostname:
                    raise ValueError(f"upstreams[{area!r}]: {url!r} is not an http://host[:port] URL")
            prefixes = {url_prefix(url) for url in urls}
            if len(prefixes) > 1:
                shown = ", ".join(repr(p or "/") for p in sorted(prefixes))
                raise ValueError(f"upstreams[{area!r}]: replicas must share one path prefix, got {shown}")
        return upstreams
