"""Keeps deploy/docker-compose.yml and its cluster overlay honest without Docker.

The structural checks always run. The run checks (TEST_POSTGRES_URL set) start every service's
`command` with its `environment` as local processes, in `depends_on` order: compose host names
become 127.0.0.1, compose ports become free ports, the compose databases become throwaway
databases created (and dropped) by this test. The plain file runs on a nats-server this test
starts; the cluster topology (docker-compose.yml + docker-compose.cluster.yml, merged here the way
compose merges them) starts its three NATS nodes from their own compose definitions.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kit.natsd import NatsServer, free_port, nats_server_binary, port_open
from tools.platform import sandboxes
from tools.platform import services as platform_services

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
EXTERNAL = {"postgres", "nats"}  # provided by the test itself, not started from compose
SANDBOXES = {entry.name for entry in sandboxes()}  # outside parties' stand-ins: no database, no route
PG_URL = re.compile(r"postgresql\+asyncpg://[^@/\s]*@postgres:5432/(\w+)")
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# ---- reading the file the way compose does --------------------------------------------------------
def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("'\"")
    return values


def interpolate(value, variables: dict[str, str]):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        present = name in variables
        empty = not variables.get(name)
        if operator in (":-", "-") and (not present or (operator == ":-" and empty)):
            return argument
        if operator in (":?", "?") and (not present or (operator == ":?" and empty)):
            raise AssertionError(f"compose needs {name}: {argument}")
        return variables.get(name, "")

    return _VAR.sub(replace, value)


def referenced_variables(text: str) -> dict[str, str | None]:
    """Variables the compose file uses → their operator (None when used bare)."""
    uncommented = "\n".join(line.split(" #", 1)[0] for line in text.splitlines() if not line.lstrip().startswith("#"))
    return {m.group(1): m.group(2) for m in _VAR.finditer(uncommented) if m.group(1)}


COMPOSE_TEXT = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")
ENV_EXAMPLE = read_env_file(DEPLOY / ".env.example")
COMPOSE = interpolate(yaml.safe_load(COMPOSE_TEXT), ENV_EXAMPLE)
SERVICES: dict[str, dict] = COMPOSE["services"]


# ---- the cluster overlay, merged the way compose merges -f files -----------------------------------
# Compose (compose-spec merge rules, as compose-go applies them) merges a later file into the model
# key by key: mappings recursively; `command`, `entrypoint` and `healthcheck.test` replaced whole;
# `environment` and `depends_on` entry by entry (a list form read as a mapping); other lists
# appended, `volumes` kept unique by their mount target (the later one wins). `extends` with a file
# is resolved inside the later file first: the named service of that file, as written there, with
# the extending block merged over it by the same rules. Only what our files use is implemented.
REPLACED = {("command",), ("entrypoint",), ("healthcheck", "test")}
BY_ENTRY = {("environment",), ("depends_on",)}


def as_mapping(value) -> dict:
    """`environment` / `depends_on` in list form (["A=b"], ["svc"]) as the mapping compose reads."""
    if isinstance(value, dict):
        return value
    mapping: dict = {}
    for item in value or []:
        key, separator, rest = str(item).partition("=")
        mapping[key] = rest if separator else {"condition": "service_started"}
    return mapping


def volume_target(entry) -> str:
    return entry["target"] if isinstance(entry, dict) else entry.split(":")[1]


def merge_service(base: dict, override: dict, path: tuple[str, ...] = ()) -> dict:
    """``override`` (a later file's block for a service) merged into ``base``; neither is changed."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        here = (*path, key)
        if key not in merged or here in REPLACED:
            merged[key] = copy.deepcopy(value)
        elif here in BY_ENTRY:
            merged[key] = {**as_mapping(merged[key]), **copy.deepcopy(as_mapping(value))}
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = merge_service(merged[key], value, here)
        elif here == ("volumes",):
            by_target = {volume_target(entry): entry for entry in [*merged[key], *value]}
            merged[key] = list(by_target.values())
        elif isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = [*merged[key], *(item for item in value if item not in merged[key])]
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_extends(services: dict[str, dict]) -> dict[str, dict]:
    """Each ``extends: {file, service}`` replaced by that service (from that file) merged with the block."""
    resolved = {}
    for name, spec in services.items():
        reference = spec.get("extends")
        if reference is None:
            resolved[name] = spec
            continue
        assert isinstance(reference, dict) and reference.get("file"), f"{name}: extends names its file"
        source = interpolate(yaml.safe_load((DEPLOY / reference["file"]).read_text(encoding="utf-8")), ENV_EXAMPLE)
        base = source["services"][reference["service"]]
        assert "extends" not in base, f"{name}: extends a service that extends another"
        resolved[name] = merge_service(base, {key: value for key, value in spec.items() if key != "extends"})
    return resolved


def merge_files(base: dict, overlay: dict) -> dict:
    """The model compose builds from ``-f base -f overlay``."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if key == "services":
            for name, spec in resolve_extends(value).items():
                current = merged["services"].get(name)
                merged["services"][name] = merge_service(current, spec) if current else copy.deepcopy(spec)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **copy.deepcopy(value)}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


CLUSTER_TEXT = (DEPLOY / "docker-compose.cluster.yml").read_text(encoding="utf-8")
CLUSTER_OVERLAY = interpolate(yaml.safe_load(CLUSTER_TEXT), ENV_EXAMPLE)
CLUSTER: dict[str, dict] = merge_files(COMPOSE, CLUSTER_OVERLAY)["services"]
REPLICATED = ("identity", "catalog", "licence", "caseflow", "express")  # issue 13


def depends(name: str, services: dict[str, dict] = SERVICES) -> dict[str, str]:
    raw = services[name].get("depends_on") or {}
    assert isinstance(raw, dict), f"{name}: depends_on must be a mapping with conditions, not a list"
    return {target: (spec or {}).get("condition") for target, spec in raw.items()}


def is_one_shot(name: str, services: dict[str, dict] = SERVICES) -> bool:
    return services[name].get("restart") == "no"


def app_services(services: dict[str, dict] = SERVICES) -> list[str]:
    """Services built from our image (everything but postgres and nats)."""
    return [name for name, spec in services.items() if "build" in spec or "yiwang" in str(spec.get("image", ""))]


def long_running_apps(services: dict[str, dict] = SERVICES) -> list[str]:
    return [name for name in app_services(services) if not is_one_shot(name, services)]


def nats_nodes(services: dict[str, dict]) -> list[str]:
    return [name for name, spec in services.items() if str(spec.get("image", "")).startswith("nats:")]


def command_port(name: str, services: dict[str, dict] = SERVICES) -> int:
    command = services[name]["command"]
    return int(command[command.index("--port") + 1])


def app_module(name: str) -> str:
    command = SERVICES[name]["command"]
    return next(arg for arg in command if ":create_app" in arg).split(":")[0]


def host_names(services: dict[str, dict]) -> dict[str, str]:
    """Host name → the service it reaches: its own name, and its network aliases. An alias several
    replicas share (Docker answers it with any of them) reaches the service of that name."""
    hosts: dict[str, str] = {}
    for name, spec in services.items():
        for alias in ((spec.get("networks") or {}).get("default") or {}).get("aliases", []):
            hosts.setdefault(alias, name)
    hosts.update({name: name for name in services})
    return hosts


def replicas(service: str, services: dict[str, dict] = CLUSTER) -> list[str]:
    """The service and its named replicas (<service>-2, …), replica 1 first."""
    return [service, *sorted(name for name in services if re.fullmatch(rf"{re.escape(service)}-\d+", name))]


def start_order(services: dict[str, dict] = SERVICES) -> list[str]:
    """A topological order of depends_on; fails on cycles and unknown services."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name in services, f"{path[-1]} depends on unknown service {name}"
        if state.get(name) == "done":
            return
        assert state.get(name) != "visiting", f"depends_on cycle: {' → '.join((*path, name))}"
        state[name] = "visiting"
        for target in depends(name, services):
            visit(target, (*path, name))
        state[name] = "done"
        order.append(name)

    for name in services:
        visit(name, ())
    return order


def module_exists(dotted: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:
        return False


# ---- structural checks (always) -----------------------------------------------------------------
def test_every_service_declares_a_restart_policy():
    for name, spec in SERVICES.items():
        assert spec.get("restart") in {"no", "always", "on-failure", "unless-stopped"}, name


def test_long_running_services_have_healthchecks():
    for name, spec in SERVICES.items():
        if not is_one_shot(name):
            test = (spec.get("healthcheck") or {}).get("test")
            assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name} has no healthcheck"


def test_depends_on_uses_conditions_that_can_be_met():
    for name in SERVICES:
        for target, condition in depends(name).items():
            assert condition in CONDITIONS, f"{name} → {target}: condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target} healthy; it has no healthcheck"
            if condition == "service_completed_successfully":
                assert is_one_shot(target), f"{name} waits for {target} to complete; it restarts"
    assert start_order()  # acyclic, no unknown names


def test_app_services_migrate_first_and_wait_for_their_dependencies():
    apps = long_running_apps()
    assert apps, "compose starts no service"
    databases = SERVICES["postgres"]["environment"]["POSTGRES_DATABASES"].split(",")
    for name in apps:
        assert module_exists(app_module(name)), f"{name}: {app_module(name)} cannot be imported"
        healthcheck = " ".join(SERVICES[name]["healthcheck"]["test"])
        path = "/readyz"
        assert f"127.0.0.1:{command_port(name)}{path}" in healthcheck, f"{name}: healthcheck must ask {path}"
        if name == "gateway":
            continue
        if name in SANDBOXES:
            assert f"migrate-{name}" not in SERVICES and "ports" not in SERVICES[name], name
            continue
        deps = depends(name)
        assert deps.get(f"migrate-{name}") == "service_completed_successfully", name
        assert deps.get("postgres") == "service_healthy" and deps.get("nats") == "service_healthy", name
        migrate = SERVICES[f"migrate-{name}"]
        assert migrate["command"] == ["python", "-m", "kit.migrate", f"services.{name}"]
        assert depends(f"migrate-{name}").get("postgres") == "service_healthy"
        prefix = f"{name.upper()}_"
        url = SERVICES[name]["environment"][prefix + "DATABASE_URL"]
        assert migrate["environment"][prefix + "DATABASE_URL"] == url, f"{name} migrates another database"
        database = PG_URL.fullmatch(url).group(1)
        assert database in databases, f"{name}: database {database} is not created by the postgres init script"
        assert SERVICES[name]["environment"][prefix + "NATS_URL"] == "nats://nats:4222"
        assert "ports" not in SERVICES[name], f"{name}: only the gateway is published"


def test_gateway_waits_for_every_service_and_routes_to_them():
    if "gateway" not in SERVICES:
        pytest.skip("gateway not in compose yet (gateway/main.py missing)")
    others = [name for name in long_running_apps() if name != "gateway"]
    assert {name: "service_healthy" for name in others}.items() <= depends("gateway").items()
    upstreams = SERVICES["gateway"]["environment"]["GATEWAY_UPSTREAMS"]
    for name in others:
        if name not in SANDBOXES:
            assert f"http://{name}:{command_port(name)}" in upstreams, f"gateway does not route to {name}"
    assert any(str(port).endswith(":8000") for port in SERVICES["gateway"].get("ports", []))


def test_compose_and_platform_toml_list_the_same_services():
    """make run and compose must not drift: same services, same ports, same app factories."""
    existing = {entry.name: entry for entry in platform_services() if module_exists(entry.module)}
    assert set(existing) == set(long_running_apps())
    for name, entry in existing.items():
        assert entry.app in SERVICES[name]["command"], name
        assert command_port(name) == entry.port, name
    for name in app_services():
        if name.startswith("migrate-"):
            assert name.removeprefix("migrate-") in existing, f"{name} migrates a service that is not there"


def test_required_variables_are_in_env_example():
    for name, operator in referenced_variables(COMPOSE_TEXT).items():
        if operator not in (":-", "-"):
            assert name in ENV_EXAMPLE, f"deploy/.env.example lacks {name}"


def test_postgres_init_script_and_nats_config():
    script = DEPLOY / "postgres" / "init" / "10-databases.sh"
    assert os.access(script, os.X_OK) and "POSTGRES_DATABASES" in script.read_text()
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert "./postgres/init:/docker-entrypoint-initdb.d:ro" in SERVICES["postgres"]["volumes"]
    assert SERVICES["nats"]["image"].startswith("nats:2.")
    conf = DEPLOY / "nats" / "nats.conf"
    assert "jetstream" in conf.read_text()
    result = subprocess.run([nats_server_binary(), "-t", "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_dockerfile_is_non_root_and_installs_the_lock_file():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    instructions = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    users = [line.split(None, 1)[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image must run as a non-root user"
    assert re.search(r"pip install -r \S*requirements\.lock", dockerfile)
    assert re.search(r"pip install --no-deps ", dockerfile)
    for service in app_services():
        assert SERVICES[service]["build"]["dockerfile"] == "deploy/Dockerfile"
    # Every runtime dependency is pinned in the lock file the image installs.
    pinned = {
        re.split(r"[=<>\[ ]", line)[0].lower().replace("_", "-")
        for line in (REPO / "requirements.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[=<>\[ ;]", requirement)[0].lower().replace("_", "-")
        assert name in pinned, f"requirements.lock does not pin {name}"


# ---- the cluster topology: docker-compose.yml + docker-compose.cluster.yml (ADR 0029) ------------------
def nats_flag(node: str, flag: str) -> str:
    command = CLUSTER[node]["command"]
    return command[command.index(flag) + 1]


def node_hosts() -> dict[str, str]:
    """NATS node → the host name the cluster's routes and URLs use for it (its --server_name)."""
    hosts = host_names(CLUSTER)
    named = {node: nats_flag(node, "--server_name") for node in nats_nodes(CLUSTER)}
    for node, host in named.items():
        assert hosts.get(host) == node, f"{node}: its server name {host} is not a host name reaching it"
    return named


def test_cluster_overlay_only_changes_or_extends_plain_services():
    for name, spec in CLUSTER_OVERLAY["services"].items():
        assert name in SERVICES or "extends" in spec, f"{name}: a new service extends a plain one"
    for name in CLUSTER:
        for target, condition in depends(name, CLUSTER).items():
            assert condition in CONDITIONS, f"{name} → {target}: condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in CLUSTER[target], f"{name} waits for {target} healthy; it has no healthcheck"
    assert start_order(CLUSTER)  # acyclic, no unknown names
    for name, spec in CLUSTER.items():
        if not is_one_shot(name, CLUSTER):
            assert spec["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, f"{name} has no healthcheck"
    declared = set(COMPOSE["volumes"]) | set(CLUSTER_OVERLAY.get("volumes") or {})
    for name, spec in CLUSTER.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in declared, f"{name}: volume {source} is not declared"


def test_cluster_has_three_nats_nodes_routed_to_each_other():
    nodes = nats_nodes(CLUSTER)
    assert len(nodes) == 3, nodes
    hosts = node_hosts()
    assert len(set(hosts.values())) == 3, "server names must differ"
    routes = {f"nats://{host}:6222" for host in hosts.values()}
    stores = set()
    for node in nodes:
        spec = CLUSTER[node]
        assert spec["image"] == SERVICES["nats"]["image"], node
        assert nats_flag(node, "--cluster_name") == "yiwang", node
        assert nats_flag(node, "--cluster") == "nats://0.0.0.0:6222", node
        assert set(nats_flag(node, "--routes").split(",")) == routes, f"{node} does not route to all three"
        assert "http://127.0.0.1:8222/healthz" in " ".join(spec["healthcheck"]["test"]), node
        store = {volume.split(":")[0] for volume in spec["volumes"] if volume.split(":")[1] == "/data"}
        assert len(store) == 1 and not store & stores, f"{node}: JetStream needs a volume of its own"
        stores |= store
    # The flags go with the plain config file: nats-server accepts them together.
    conf = DEPLOY / "nats" / "nats.conf"
    flags = [arg for arg in CLUSTER[nodes[0]]["command"] if arg not in ("-c", "/etc/nats/nats.conf")]
    result = subprocess.run([nats_server_binary(), "-t", "-c", str(conf), *flags], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cluster_apps_use_every_node_and_three_stream_replicas():
    urls = {f"nats://{host}:4222" for host in node_hosts().values()}
    for name in long_running_apps(CLUSTER):
        environment = CLUSTER[name]["environment"]
        nats_urls = [key for key in environment if key.endswith("_NATS_URL")]
        if name in SANDBOXES:
            assert not nats_urls, name
            continue
        assert len(nats_urls) == 1, name
        assert set(environment[nats_urls[0]].split(",")) == urls, f"{name} does not list every NATS node"
        if name != "gateway":  # the gateway declares no stream
            prefix = nats_urls[0].removesuffix("NATS_URL")
            assert environment[prefix + "NATS_STREAM_REPLICAS"] == "3", name
        for node in nats_nodes(CLUSTER):
            assert depends(name, CLUSTER).get(node) == "service_healthy", f"{name} does not wait for {node}"


def test_cluster_replicas_are_the_same_service():
    """Two replicas or more of each of issue 13's services, one migration before all of them; the
    replicas differ only in the names they answer to and in waiting for another replica to start."""
    hosts = host_names(CLUSTER)
    for service in REPLICATED:
        names = replicas(service)
        assert len(names) >= 2, f"{service} has no second replica"
        assert f"migrate-{service}-2" not in CLUSTER and is_one_shot(f"migrate-{service}", CLUSTER)
        first = CLUSTER[names[0]]
        for index, name in enumerate(names, start=1):
            spec = CLUSTER[name]
            for key in set(first) | set(spec):
                if key not in {"networks", "depends_on"}:
                    assert spec.get(key) == first.get(key), f"{name}: {key} differs from {names[0]}'s"
            waits = depends(name, CLUSTER)
            assert waits.get(f"migrate-{service}") == "service_completed_successfully", name
            others = {target for target in waits if target in names}
            assert {target: condition for target, condition in waits.items() if target not in others} == depends(
                names[0], CLUSTER
            ), f"{name} waits for other services than {names[0]}"
            assert all(waits[target] == "service_healthy" and target != name for target in others), name
            # its own name for the gateway, the service's name shared (any replica) for the others
            assert hosts[f"{service}-{index}"] == name, f"{service}-{index} does not reach {name}"
            answers = {name, *((spec.get("networks") or {}).get("default") or {}).get("aliases", [])}
            assert answers == {service, f"{service}-{index}"}, name


def test_cluster_gateway_routes_to_every_replica_and_waits_for_them():
    gateway = CLUSTER["gateway"]
    hosts = host_names(CLUSTER)
    upstreams = json.loads(gateway["environment"]["GATEWAY_UPSTREAMS"])
    plain = json.loads(SERVICES["gateway"]["environment"]["GATEWAY_UPSTREAMS"])
    assert set(upstreams) == set(plain)
    for service in REPLICATED:
        urls = upstreams[service]
        assert isinstance(urls, list), f"{service}: a list of replicas"
        reached = [hosts[re.fullmatch(rf"http://([\w-]+):{command_port(service)}", url).group(1)] for url in urls]
        assert sorted(reached) == sorted(replicas(service)), f"gateway does not route to each {service} replica"
    for area, url in plain.items():
        if area not in REPLICATED:
            assert upstreams[area] == url, area
    waits = depends("gateway", CLUSTER)
    for name in [*long_running_apps(CLUSTER), *nats_nodes(CLUSTER)]:
        if name != "gateway":
            assert waits.get(name) == "service_healthy", f"gateway does not wait for {name}"


def test_merge_follows_compose_rules():
    """The merge the cluster checks rely on (compose-spec's rules for the keys our files use)."""
    base = {
        "command": ["a", "b"],
        "environment": {"A": "1", "B": "2"},
        "depends_on": ["x"],
        "healthcheck": {"test": ["CMD", "old"], "interval": "5s"},
        "volumes": ["data:/data", "./c:/etc/c:ro"],
        "expose": ["1"],
    }
    override = {
        "command": ["c"],
        "environment": ["B=3"],
        "depends_on": {"y": {"condition": "service_healthy"}},
        "healthcheck": {"test": ["CMD", "new"]},
        "volumes": ["other:/data"],
        "expose": ["2"],
        "networks": {"default": {"aliases": ["n"]}},
    }
    assert merge_service(base, override) == {
        "command": ["c"],
        "environment": {"A": "1", "B": "3"},
        "depends_on": {"x": {"condition": "service_started"}, "y": {"condition": "service_healthy"}},
        "healthcheck": {"test": ["CMD", "new"], "interval": "5s"},
        "volumes": ["other:/data", "./c:/etc/c:ro"],
        "expose": ["1", "2"],
        "networks": {"default": {"aliases": ["n"]}},
    }
    assert base["environment"] == {"A": "1", "B": "2"}, "the base is left as it was"


# ---- the run check (needs PostgreSQL) ---------------------------------------------------------------
@pytest.fixture
def postgres_databases() -> Iterator[dict[str, str]]:
    """compose database name → URL of a throwaway database created for this run (dropped after)."""
    base = os.environ.get("TEST_POSTGRES_URL")
    if not base:
        pytest.skip("TEST_POSTGRES_URL not set: the compose run check needs PostgreSQL")
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    run = uuid.uuid4().hex[:8]
    names = {
        db: f"yw_compose_{run}_{db}" for db in SERVICES["postgres"]["environment"]["POSTGRES_DATABASES"].split(",")
    }
    created: list[str] = []

    async def admin(statements: list[str]) -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    async def create() -> None:
        for name in names.values():
            await admin([f'CREATE DATABASE "{name}"'])
            created.append(name)

    try:
        asyncio.run(create())
        yield {db: url.set(database=name).render_as_string(hide_password=False) for db, name in names.items()}
    finally:
        # Only what this run created, by its unique name.
        asyncio.run(admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in created]))


NATS_PORTS = (4222, 6222, 8222)  # client, cluster routes, monitoring (the healthcheck asks it)


class LocalCompose:
    """Runs compose services as local processes with their compose command and environment.

    ``nats_url`` replaces the plain file's ``nats://nats:4222`` (a server the test started); without
    it the NATS nodes are compose services too, started from their own definitions."""

    def __init__(
        self,
        databases: dict[str, str],
        nats_url: str | None,
        workdir: Path,
        services: dict[str, dict] = SERVICES,
    ) -> None:
        self.databases = databases
        self.nats_url = nats_url
        self.workdir = workdir
        self.services = services
        self.hosts = host_names(services)
        self.ports = {name: free_port() for name in long_running_apps(services)}
        nodes = [] if nats_url else nats_nodes(services)
        self.nats_ports = {name: {port: free_port() for port in NATS_PORTS} for name in nodes}
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def local_port(self, name: str, port: int) -> int | None:
        """The free port standing for ``name``'s container port ``port`` (None: not one of its ports)."""
        if name in self.nats_ports:
            return self.nats_ports[name].get(port)
        if name in self.ports and port == command_port(name, self.services):
            return self.ports[name]
        return None

    def localize(self, text: str) -> str:
        text = PG_URL.sub(lambda m: self.databases[m.group(1)], text)
        if self.nats_url:
            text = text.replace("nats://nats:4222", self.nats_url)

        def host_port(match: re.Match) -> str:
            name = self.hosts.get(match.group(1))
            port = self.local_port(name, int(match.group(2))) if name else None
            return f"127.0.0.1:{port}" if port else match.group(0)

        return re.sub(r"(?<![\w.-])([A-Za-z][\w-]*):(\d+)\b", host_port, text)

    def command(self, name: str, args: list[str], for_healthcheck: bool = False) -> list[str]:
        args = [self.localize(arg) for arg in args]
        if for_healthcheck:  # inside its container the service is 127.0.0.1:<its own port>
            for port in (command_port(name, self.services),) if name in self.ports else NATS_PORTS:
                local = self.local_port(name, port)
                args = [arg.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{local}/") for arg in args]
        elif name in self.nats_ports:
            return self.nats_command(name, args)
        if args[0] == "python":
            args = [sys.executable, *args[1:]]
        elif args[0] == "uvicorn":
            args = [sys.executable, "-m", "uvicorn", *args[1:]]
        if "--host" in args:
            args[args.index("--host") + 1] = "127.0.0.1"
        if "--port" in args:
            args[args.index("--port") + 1] = str(self.ports[name])
        return args

    def nats_command(self, name: str, args: list[str]) -> list[str]:
        """The image's entrypoint (nats-server) with the compose flags, its volumes here: a named
        volume is a directory of this run, a mounted file a copy naming those directories; the route
        listener on its free port, and flags that override the config file's ports."""
        named: dict[str, str] = {}
        files: dict[str, Path] = {}
        for volume in self.services[name].get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                files[target] = DEPLOY / source
            else:
                named[target] = str(self.workdir / "volumes" / source)
        for target, source in files.items():
            text = source.read_text(encoding="utf-8")
            for mount, directory in named.items():
                text = re.sub(rf"(?<=[\s:]){re.escape(mount)}(?=\s)", f'"{directory}"', text)
            copy_path = self.workdir / name / source.name
            copy_path.parent.mkdir(parents=True, exist_ok=True)
            copy_path.write_text(text, encoding="utf-8")
            args = [arg.replace(target, str(copy_path)) for arg in args]
        ports = self.nats_ports[name]
        args = [arg.replace("0.0.0.0:6222", f"127.0.0.1:{ports[6222]}") for arg in args]
        return [nats_server_binary(), *args, "-a", "127.0.0.1", "-p", str(ports[4222]), "-m", str(ports[8222])]

    def environment(self, name: str) -> dict[str, str]:
        # Only what compose gives (plus what any process needs), so a missing variable shows up here.
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
        env["PYTHONPATH"] = str(REPO)  # this checkout's code, as the image holds it (not another install)
        environment = self.services[name].get("environment") or {}
        env.update({key: self.localize(str(value)) for key, value in environment.items()})
        return env

    def log(self, name: str) -> Path:
        return self.logs.setdefault(name, self.workdir / f"{name}.log")

    def run_one_shot(self, name: str) -> None:
        with open(self.log(name), "ab") as out:
            result = subprocess.run(
                self.command(name, self.services[name]["command"]),
                env=self.environment(name),
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
            )
        assert result.returncode == 0, f"{name} failed:\n{self.log(name).read_text()[-3000:]}"

    def start(self, name: str) -> None:
        out = open(self.log(name), "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            self.command(name, self.services[name]["command"]),
            env=self.environment(name),
            cwd=self.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def wait_healthy(self, name: str, timeout: float = 60.0) -> None:
        """Runs the compose healthcheck itself until it passes (once the service listens)."""
        test = self.services[name]["healthcheck"]["test"]
        if test[0] == "CMD-SHELL":
            args = ["sh", "-c", self.localize(test[1])]
        else:
            args = self.command(name, test[1:], for_healthcheck=True)
        listens = self.ports.get(name) or self.nats_ports.get(name, {}).get(8222)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes[name]
            assert process.poll() is None, f"{name} exited {process.returncode}:\n{self.log(name).read_text()[-3000:]}"
            # A socket check first: the healthcheck is a process of its own, and many start at once.
            if listens is None or port_open(listens):
                if subprocess.run(args, capture_output=True, timeout=10).returncode == 0:
                    return
            time.sleep(0.3)
        raise AssertionError(f"{name} not healthy after {timeout}s:\n{self.log(name).read_text()[-3000:]}")

    def bring_up(self, name: str) -> None:
        if is_one_shot(name, self.services):
            self.run_one_shot(name)
        else:
            self.start(name)
            self.wait_healthy(name)

    def start_all(self, external: set[str], timeout: float = 180.0) -> None:
        """Every service at once as far as depends_on allows: each waits until what it depends on has
        completed (one-shots) or is healthy, as compose does; the first failure is raised."""
        ready = {name: threading.Event() for name in self.services}
        failures: list[str] = []
        for name in external:
            ready[name].set()

        def run(name: str) -> None:
            try:
                for target in depends(name, self.services):
                    if not ready[target].wait(timeout) or failures:
                        return
                self.bring_up(name)
            except BaseException as exc:  # reported below, with the service's name
                failures.append(f"{name}: {exc}")
            finally:
                ready[name].set()

        threads = [threading.Thread(target=run, args=(name,)) for name in self.services if name not in external]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, "\n".join(failures)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_compose_services_start_as_written(postgres_databases, tmp_path):
    with NatsServer(tmp_path / "nats", log_file=tmp_path / "nats.log") as nats:
        local = LocalCompose(postgres_databases, nats.url, tmp_path)
        state = {name: "healthy" for name in EXTERNAL}
        try:
            for name in start_order():
                if name in EXTERNAL:
                    continue
                for target, condition in depends(name).items():
                    wanted = {"service_completed_successfully": "completed", "service_healthy": "healthy"}
                    assert state.get(target) in {wanted.get(condition, "started"), "healthy"}, (
                        f"{name} would start before {target} is {condition}"
                    )
                if is_one_shot(name):
                    local.run_one_shot(name)
                    state[name] = "completed"
                else:
                    local.start(name)
                    state[name] = "started"
                    local.wait_healthy(name)
                    state[name] = "healthy"
            for name in long_running_apps():
                with urllib.request.urlopen(f"http://127.0.0.1:{local.ports[name]}/readyz", timeout=5) as response:
                    assert response.status == 200, name
        finally:
            local.stop()


def test_localize_maps_hosts_ports_and_databases(tmp_path):
    """The rewriting the run check relies on (runs without PostgreSQL)."""
    local = LocalCompose(
        {"identity": "postgresql+asyncpg://u@127.0.0.1:5/yw_x_identity"}, "nats://127.0.0.1:9", tmp_path
    )
    local.ports = {"identity": 4001}
    assert local.localize("postgresql+asyncpg://yiwang:pw@postgres:5432/identity") == (
        "postgresql+asyncpg://u@127.0.0.1:5/yw_x_identity"
    )
    assert local.localize('{"identity":"http://identity:8001"}') == '{"identity":"http://127.0.0.1:4001"}'
    assert local.localize("nats://nats:4222") == "nats://127.0.0.1:9"
    assert shlex.join(
        local.command("identity", ["uvicorn", "x:create_app", "--host", "0.0.0.0", "--port", "8001"])
    ).endswith("--host 127.0.0.1 --port 4001")


def test_localize_maps_cluster_nodes_and_replicas(tmp_path):
    """Each NATS node's ports and each replica's own name map to that process; the shared name to replica 1."""
    local = LocalCompose({}, None, tmp_path, services=CLUSTER)
    node_1, node_2 = local.nats_ports["nats"], local.nats_ports["nats-2"]
    assert local.localize("nats://nats-1:4222,nats://nats-2:6222") == (
        f"nats://127.0.0.1:{node_1[4222]},nats://127.0.0.1:{node_2[6222]}"
    )
    ports = local.ports
    assert local.localize("http://caseflow-1:8003 http://caseflow-2:8003 http://caseflow:8003") == (
        f"http://127.0.0.1:{ports['caseflow']} http://127.0.0.1:{ports['caseflow-2']} http://127.0.0.1:{ports['caseflow']}"
    )
    command = local.command("nats-2", CLUSTER["nats-2"]["command"])
    assert command[0] == nats_server_binary() and f"nats://127.0.0.1:{node_2[6222]}" in command
    config = Path(command[command.index("-c") + 1]).read_text()
    assert str(tmp_path / "volumes" / "nats-2-data") in config, "the node's JetStream store is its own volume"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


async def stream_replicas(servers: list[str], stream: str) -> tuple[int, int]:
    """(replicas the stream is configured with, nodes holding it) as the cluster reports them."""
    import nats

    connection = await nats.connect(servers, connect_timeout=2, max_reconnect_attempts=2)
    try:
        info = await connection.jetstream().stream_info(stream)
        return info.config.num_replicas or 1, 1 + len(info.cluster.replicas or [])
    finally:
        await connection.close()


def test_cluster_topology_starts_as_written(postgres_databases, tmp_path):
    """Three NATS nodes, the one-shot migrations, every replica and the gateway, started from the
    merged compose model; then each replicated area through the gateway, each replica itself, and
    every replicated service's stream at three replicas."""
    from kit.bus import stream_name_for

    local = LocalCompose(postgres_databases, None, tmp_path, services=CLUSTER)
    try:
        local.start_all(external={"postgres"})
        gateway = f"http://127.0.0.1:{local.ports['gateway']}"
        for path in (
            "/api/v1/identity/.well-known/jwks.json",
            "/api/v1/catalog/matters",
            "/api/v1/licence/types",
            "/api/v1/caseflow/calendar/2026",
        ):
            status, body = get(gateway + path)
            assert status == 200, f"{path}: {status} {body[:300]!r}"
        status, body = get(gateway + "/readyz")  # the gateway asks every replica's /readyz itself
        assert status == 200 and "replicas_down" not in json.loads(body), body[:1000]
        status, body = get(gateway + "/api/v1/openapi.json")  # every area's document, express's too
        assert status == 200 and any(path.startswith("/api/v1/express/") for path in json.loads(body)["paths"])
        for service in REPLICATED:
            for name in replicas(service):
                assert get(f"http://127.0.0.1:{local.ports[name]}/readyz")[0] == 200, name
        servers = [f"nats://127.0.0.1:{ports[4222]}" for ports in local.nats_ports.values()]
        for service in REPLICATED:
            stream = stream_name_for(service)
            assert asyncio.run(stream_replicas(servers, stream)) == (3, 3), f"{stream} is not on three nodes"
    finally:
        local.stop()
