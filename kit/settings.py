"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kit.db import async_database_url
from kit.pagination import DEFAULT_PAGE_SIZE

DATA_DIR = Path(".data")


def json_text(value: Any) -> Any:
    """A mapping setting's value before validation: pydantic-settings decodes JSON for complex
    fields from the environment; a plain string given in code (tests) is decoded here the same
    way (empty: ``{}``). Anything else is left to the field's own validation."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else {}
    return value


class ServiceSettings(BaseSettings):
    """Common knobs. A subclass sets ``model_config = SettingsConfigDict(env_prefix="IDENTITY_")``."""

    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    service_name: str = "service"
    database_url: str = ""
    # One server, or a cluster's servers comma-separated (the cluster topology, ADR 0029).
    nats_url: str = "nats://127.0.0.1:4222"
    # JetStream replicas of the streams this service declares: 3 on the 3-node cluster.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    # Off only in unit tests that exercise HTTP alone; the relay then keeps events in the outbox.
    nats_enabled: bool = True
    log_level: str = "INFO"
    log_json: bool = True
    token_issuer: str = "yiwang-identity"
    token_audience: str = "yiwang"
    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    # Consumers: a message delivered this many times without success goes to the dead-letter stream.
    max_deliveries: int = Field(default=5, ge=1)
    # Connections of the relay's and the consumers' own pool (PostgreSQL; beside the requests' pool).
    background_pool_size: int = Field(default=8, ge=1, le=100)
    # Connections of the hot paths' driver pool (PostgreSQL, kit.driver; opened as needed, closed idle).
    driver_pool_size: int = Field(default=10, ge=1, le=100)
    relay_batch_size: int = Field(default=200, ge=1)
    relay_max_backoff_seconds: float = Field(default=5.0, gt=0)
    # After a batch that found events, wait this long before the next one so that under load a
    # batch carries many events (one transaction) instead of one per commit; idle: no wait.
    relay_linger_seconds: float = Field(default=0.1, ge=0, le=1)
    # Sandbox pages (SMS codes "sent", notifications with query codes, face-check shortcuts) exist
    # only when the deployment says it is a sandbox. Off by default; `make run` and the tests turn
    # it on (platform.toml [env] SANDBOX), the compose deployment never does.
    sandbox: bool = False
    # List endpoints (kit.pagination): a larger page_size is a 422 naming query.page_size. Never
    # below the default page (20), or a request without page_size would be refused.
    max_page_size: int = Field(default=100, ge=DEFAULT_PAGE_SIZE, le=1000)
    # JSON request bodies nested deeper than this are refused (400) before any route parses them.
    json_max_depth: int = Field(default=32, ge=2, le=500)
    # Revocations (identity.tokens.revoked) are read back this far on start and on every
    # reconnect: the longest an access token lives — a counter token's 30 minutes (ADR 0025; the
    # online access token lives 10) — see ADR 0010.
    access_token_max_ttl_seconds: int = Field(default=1800, ge=1)

    def resolved_database_url(self) -> str:
        """The configured database (its driver made async: ``postgresql://`` works as well as
        ``postgresql+asyncpg://``), or a SQLite file under .data/ named after the service."""
        if self.database_url:
            return async_database_url(self.database_url)
        DATA_DIR.mkdir(exist_ok=True)
        return f"sqlite+aiosqlite:///{DATA_DIR / (self.service_name + '.db')}"
