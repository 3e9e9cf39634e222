"""Keeps deploy/docker-compose.yml honest without Docker.

The structural checks always run. The run check (TEST_POSTGRES_URL set) starts every service's
`command` with its `environment` as local processes, in `depends_on` order: compose host names
become 127.0.0.1, compose ports become free ports, the compose databases become throwaway
databases created (and dropped) by this test, and NATS is a nats-server this test starts.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kit.natsd import NatsServer, free_port, nats_server_binary
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


def depends(name: str) -> dict[str, str]:
    raw = SERVICES[name].get("depends_on") or {}
    assert isinstance(raw, dict), f"{name}: depends_on must be a mapping with conditions, not a list"
    return {target: (spec or {}).get("condition") for target, spec in raw.items()}


def is_one_shot(name: str) -> bool:
    return SERVICES[name].get("restart") == "no"


def app_services() -> list[str]:
    """Services built from our image (everything but postgres and nats)."""
    return [name for name, spec in SERVICES.items() if "build" in spec or "yiwang" in str(spec.get("image", ""))]


def long_running_apps() -> list[str]:
    return [name for name in app_services() if not is_one_shot(name)]


def command_port(name: str) -> int:
    command = SERVICES[name]["command"]
    return int(command[command.index("--port") + 1])


def app_module(name: str) -> str:
    command = SERVICES[name]["command"]
    return next(arg for arg in command if ":create_app" in arg).split(":")[0]


def start_order() -> list[str]:
    """A topological order of depends_on; fails on cycles and unknown services."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name in SERVICES, f"{path[-1]} depends on unknown service {name}"
        if state.get(name) == "done":
            return
        assert state.get(name) != "visiting", f"depends_on cycle: {' → '.join((*path, name))}"
        state[name] = "visiting"
        for target in depends(name):
            visit(target, (*path, name))
        state[name] = "done"
        order.append(name)

    for name in SERVICES:
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


class LocalCompose:
    """Runs compose services as local processes with their compose command and environment."""

    def __init__(self, databases: dict[str, str], nats_url: str, workdir: Path) -> None:
        self.databases = databases
        self.nats_url = nats_url
        self.workdir = workdir
        self.ports = {name: free_port() for name in long_running_apps()}
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def localize(self, text: str) -> str:
        text = PG_URL.sub(lambda m: self.databases[m.group(1)], text)
        text = text.replace("nats://nats:4222", self.nats_url)
        for name, port in self.ports.items():
            text = re.sub(rf"(?<![\w.-]){re.escape(name)}:{command_port(name)}\b", f"127.0.0.1:{port}", text)
        return text

    def command(self, name: str, args: list[str], for_healthcheck: bool = False) -> list[str]:
        args = [self.localize(arg) for arg in args]
        if for_healthcheck and name in self.ports:  # inside its container the service is 127.0.0.1:<own port>
            args = [arg.replace(f"127.0.0.1:{command_port(name)}/", f"127.0.0.1:{self.ports[name]}/") for arg in args]
        if args[0] == "python":
            args = [sys.executable, *args[1:]]
        elif args[0] == "uvicorn":
            args = [sys.executable, "-m", "uvicorn", *args[1:]]
        if "--host" in args:
            args[args.index("--host") + 1] = "127.0.0.1"
        if "--port" in args:
            args[args.index("--port") + 1] = str(self.ports[name])
        return args

    def environment(self, name: str) -> dict[str, str]:
        # Only what compose gives (plus what any process needs), so a missing variable shows up here.
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
        env.update({key: self.localize(str(value)) for key, value in (SERVICES[name].get("environment") or {}).items()})
        return env

    def log(self, name: str) -> Path:
        return self.logs.setdefault(name, self.workdir / f"{name}.log")

    def run_one_shot(self, name: str) -> None:
        with open(self.log(name), "ab") as out:
            result = subprocess.run(
                self.command(name, SERVICES[name]["command"]),
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
            self.command(name, SERVICES[name]["command"]),
            env=self.environment(name),
            cwd=self.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def wait_healthy(self, name: str, timeout: float = 60.0) -> None:
        """Runs the compose healthcheck itself until it passes."""
        test = SERVICES[name]["healthcheck"]["test"]
        if test[0] == "CMD-SHELL":
            args = ["sh", "-c", self.localize(test[1])]
        else:
            args = self.command(name, test[1:], for_healthcheck=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes[name]
            assert process.poll() is None, f"{name} exited {process.returncode}:\n{self.log(name).read_text()[-3000:]}"
            if subprocess.run(args, capture_output=True, timeout=10).returncode == 0:
                return
            time.sleep(0.3)
        raise AssertionError(f"{name} not healthy after {timeout}s:\n{self.log(name).read_text()[-3000:]}")

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
