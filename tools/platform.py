"""The one list of services: ``platform.toml`` read into typed entries.

``make run`` (tools/run.py) starts what it lists; the architecture and deploy tests derive their
per-service lists from it and fail, naming the entry, where a static file (compose, the gateway's
default upstreams) disagrees. A new service is its package plus one ``[[service]]`` block.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLATFORM_TOML = REPO / "platform.toml"


@dataclass(frozen=True)
class Service:
    """One ``[[service]]`` block of platform.toml."""

    name: str
    app: str
    port: int
    env_prefix: str
    migrate: bool = False
    seed: str = ""
    # Gateway areas routed here: a list of names, or {area = "/path prefix"} when an area maps
    # to a sub-path of the service (the gateway's "departments" → caseflow's /departments).
    areas: list[str] | dict[str, str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    common_env: bool = True
    ready_path: str = "/readyz"
    # A stand-in for an outside party (the EMS sandbox) that make run and compose start beside the
    # services: its app lives inside a service package, it has no database, no bus, no gateway
    # area, and it is no service package of its own (ADR 0017).
    sandbox: bool = False
    # uvicorn worker processes (``--workers``) make run starts for this service; YIWANG_WORKERS
    # overrides it per service (ADR 0035). The gateway keeps one (its nonces are per process).
    workers: int = 1

    @property
    def module(self) -> str:
        """``services.identity.main`` for ``services.identity.main:create_app``."""
        return self.app.split(":", 1)[0]

    @property
    def package(self) -> str:
        """``services.identity``: what ``kit.migrate`` and import-linter know it by."""
        return self.module.rsplit(".", 1)[0]

    @property
    def is_gateway(self) -> bool:
        return self.package == "gateway"

    def area_routes(self) -> dict[str, str]:
        """Area → path prefix on this service (``""`` when the area is the service's root)."""
        return dict(self.areas) if isinstance(self.areas, dict) else dict.fromkeys(self.areas, "")


@dataclass(frozen=True)
class Platform:
    nats_port: int
    common_env: dict[str, str]
    entries: list[Service]


def load(path: Path = PLATFORM_TOML) -> Platform:
    """The whole file; ``ValueError`` naming the file when it is malformed or names a service twice."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        entries = [Service(**block) for block in raw.get("service", [])]
    except (OSError, tomllib.TOMLDecodeError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate service names in {names}")
    return Platform(int(raw.get("nats", {}).get("port", 4222)), dict(raw.get("env", {})), entries)


def services(path: Path = PLATFORM_TOML) -> list[Service]:
    """Every ``[[service]]`` block in file order, the gateway included."""
    return load(path).entries


def backend_services(path: Path = PLATFORM_TOML) -> list[Service]:
    """The services under ``services/`` (everything but the gateway and the sandboxes)."""
    return [entry for entry in services(path) if not entry.is_gateway and not entry.sandbox]


def sandboxes(path: Path = PLATFORM_TOML) -> list[Service]:
    """The outside parties' stand-ins (``sandbox = true``)."""
    return [entry for entry in services(path) if entry.sandbox]
