"""The boundaries the design promises, checked: no service imports another, contracts don't drift,
migrations match the models — and a new service is one package plus one platform.toml block.

platform.toml is the one list of services (tools/platform.py reads it). Every per-service list here
is derived from it; where another file must stay static (the compose file, the gateway's default
upstreams), a test compares it with platform.toml and names the missing entry (ADR 0014).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import contracts.events
from contracts.generate import drift
from gateway.routes import DEFAULT_RULES
from gateway.settings import default_upstreams
from kit.migrate import upgrade
from tools.platform import Service, backend_services, sandboxes, services

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = services()
BACKENDS = backend_services()
MIGRATED = [entry for entry in BACKENDS if entry.migrate]
COMPOSE = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text(encoding="utf-8"))["services"]


def _exists(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def by_name(entries: list[Service]):
    return pytest.mark.parametrize("entry", entries, ids=[entry.name for entry in entries])


def test_import_contracts_hold():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Services never import each other KEPT" in result.stdout


def test_event_schemas_match_the_models():
    assert drift() == [], "run `make contracts` and commit contracts/"


@by_name(MIGRATED)
def test_migrations_match_the_models(entry: Service, tmp_path):
    assert _exists(f"{entry.package}.models"), f"{entry.name}: migrate = true but no {entry.package}.models"
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    upgrade(entry.package, url)
    metadata = importlib.import_module(f"{entry.package}.models").metadata
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == [], f"{entry.name}: models changed without a migration: {diff}"


# ---- one package, one block ---------------------------------------------------------------------
def test_every_service_package_has_a_platform_block_and_back():
    packages = {path.parent.name for path in (ROOT / "services").glob("*/__init__.py")}
    blocks = {entry.package.removeprefix("services."): entry for entry in BACKENDS}
    problems = [
        f"services/{package}/ has no [[service]] block in platform.toml" for package in sorted(packages - set(blocks))
    ]
    problems += [
        f"platform.toml service {blocks[name].name!r}: no package services/{name}/"
        for name in sorted(set(blocks) - packages)
    ]
    problems += [
        f"platform.toml service {entry.name!r} runs services.{package}: name them alike"
        for package, entry in blocks.items()
        if entry.name != package
    ]
    assert not problems, "\n".join(problems)


def test_platform_blocks_are_unique():
    for attribute in ("port", "env_prefix"):
        seen: dict[object, str] = {}
        for entry in PLATFORM:
            value = getattr(entry, attribute)
            assert value not in seen, f"platform.toml: {entry.name} and {seen[value]} share {attribute} {value!r}"
            seen[value] = entry.name
    areas: dict[str, str] = {}
    for entry in PLATFORM:
        for area in entry.area_routes():
            assert area not in areas, f"platform.toml: area {area!r} routed to both {areas[area]} and {entry.name}"
            areas[area] = entry.name


@by_name(BACKENDS)
def test_a_service_block_matches_its_package(entry: Service):
    """The app factory exists; migrate = true iff there are migrations; the settings carry the
    block's env prefix and the service name (its NATS stream and subjects are named after it)."""
    assert _exists(entry.module), f"{entry.name}: module {entry.module} not found"
    app_module = importlib.import_module(entry.module)
    assert hasattr(app_module, entry.app.split(":", 1)[1]), f"{entry.name}: {entry.app} does not exist"
    migrations = ROOT / entry.package.replace(".", "/") / "migrations"
    if entry.migrate:
        assert (migrations / "env.py").is_file(), f"{entry.name}: migrate = true but no {migrations.relative_to(ROOT)}"
    else:
        assert not migrations.exists(), f"{entry.name}: has {migrations.relative_to(ROOT)} but migrate = false"
    settings = importlib.import_module(f"{entry.package}.settings").Settings
    assert settings.model_config.get("env_prefix") == entry.env_prefix, (
        f"{entry.name}: settings env_prefix {settings.model_config.get('env_prefix')!r}, platform.toml {entry.env_prefix!r}"
    )
    assert settings.model_fields["service_name"].default == entry.name, f"{entry.name}: settings service_name differs"


@by_name(sandboxes())
def test_a_sandbox_block_is_no_service(entry: Service):
    """A stand-in for an outside party (ADR 0017): its app exists inside a service package, and it
    has no database, no gateway area and no common env (so no bus and no service's settings)."""
    assert _exists(entry.module), f"{entry.name}: module {entry.module} not found"
    assert hasattr(importlib.import_module(entry.module), entry.app.split(":", 1)[1]), f"{entry.name}: no {entry.app}"
    assert entry.package in {b.package for b in BACKENDS}, f"{entry.name}: {entry.package} is no service package"
    assert not entry.migrate and not entry.areas and not entry.common_env and not entry.seed, entry.name
    assert entry.name in COMPOSE, f"deploy/docker-compose.yml has no service {entry.name!r}"
    assert entry.app in COMPOSE[entry.name]["command"], f"compose {entry.name}: command does not run {entry.app}"


def test_event_modules_belong_to_a_service():
    """contracts/events/<service>.py: the index is found by walking the package (no list to edit)."""
    names = {entry.name for entry in BACKENDS}
    modules = {info.name for info in pkgutil.iter_modules(contracts.events.__path__)}
    problems = [f"contracts/events/{module}.py names no platform.toml service" for module in sorted(modules - names)]
    problems += [
        f"{model.__name__}: subject {model.nats_subject} names no platform.toml service"
        for model in contracts.events.all_event_models()
        if model.nats_subject.split(".", 1)[0] not in names
    ]
    assert not problems, "\n".join(problems)


# ---- the gateway knows every area ---------------------------------------------------------------
@by_name(BACKENDS)
def test_the_gateway_default_upstreams_route_each_area(entry: Service):
    """gateway/settings.py stays static (the gateway never reads platform.toml); it must agree."""
    defaults = default_upstreams()
    for area, prefix in entry.area_routes().items():
        assert area in defaults, f"gateway.settings.default_upstreams lacks area {area!r} ({entry.name})"
        expected = f"http://127.0.0.1:{entry.port}{prefix}"
        assert defaults[area] == expected, f"default_upstreams[{area!r}] = {defaults[area]}, platform.toml: {expected}"


def test_route_rules_name_known_areas():
    known = set(default_upstreams()) | {"*"}
    for rule in DEFAULT_RULES:
        assert rule.area in known, f"gateway.routes rule {rule.pattern}: area {rule.area!r} has no upstream"


# ---- the compose file runs every service ----------------------------------------------------------
@by_name(BACKENDS)
def test_compose_runs_each_service(entry: Service):
    """deploy/docker-compose.yml stays static (Docker reads it); it must have the block's service,
    its migration step, its database, and the gateway's route and dependency."""
    assert entry.name in COMPOSE, f"deploy/docker-compose.yml has no service {entry.name!r}"
    command = COMPOSE[entry.name]["command"]
    assert entry.app in command, f"compose {entry.name}: command does not run {entry.app}"
    assert command[command.index("--port") + 1] == str(entry.port), f"compose {entry.name}: port is not {entry.port}"
    environment = COMPOSE[entry.name].get("environment") or {}
    assert f"{entry.env_prefix}NATS_URL" in environment, f"compose {entry.name}: no {entry.env_prefix}NATS_URL"
    migrate = f"migrate-{entry.name}"
    if entry.migrate:
        assert migrate in COMPOSE, f"deploy/docker-compose.yml has no {migrate} step"
        assert COMPOSE[migrate]["command"] == ["python", "-m", "kit.migrate", entry.package], migrate
        databases = COMPOSE["postgres"]["environment"]["POSTGRES_DATABASES"].split(",")
        assert entry.name in databases, f"compose POSTGRES_DATABASES lacks {entry.name}"
    else:
        assert migrate not in COMPOSE, f"compose has {migrate} but platform.toml says migrate = false"
    gateway = COMPOSE["gateway"]
    assert entry.name in gateway["depends_on"], f"compose gateway does not wait for {entry.name}"
    upstreams = json.loads(gateway["environment"]["GATEWAY_UPSTREAMS"])
    for area, prefix in entry.area_routes().items():
        expected = f"http://{entry.name}:{entry.port}{prefix}"
        assert upstreams.get(area) == expected, f"compose GATEWAY_UPSTREAMS[{area!r}] should be {expected}"


def test_compose_runs_nothing_platform_toml_does_not_list():
    names = {entry.name for entry in PLATFORM}
    for name, spec in COMPOSE.items():
        if "build" in spec:  # our image: an app or its migration step
            assert name.removeprefix("migrate-") in names, f"compose service {name!r} has no platform.toml block"
