"""``make chaos``: the cluster topology under load while its parts are killed, then a reconciliation.

    python -m tools.chaos [--duration S] [--replicas N] [--caseflow-replicas N] [--workers N] [--seed S]

What runs, all local processes of this run alone (ADR 0031): a PostgreSQL of its own (initdb into a
temporary directory, as the ``postgres`` OS user when we are root), one database per service; a
three-node NATS cluster (kit.natsd.NatsCluster, streams at three replicas); identity, catalog,
licence, caseflow, express (with the EMS sandbox) and exchange, each ``--replicas`` times (caseflow
``--caseflow-replicas`` times), migrated and seeded as ``make run`` does (tools/run.py's Runner);
the gateway in front with each area's list of replicas.

While tools/chaos_load.py's workers register people, submit and handle cases and push department
events through the gateway, the faults come on a schedule (fractions of ``--duration``): one NATS
node SIGKILLed and started again, a caseflow replica SIGKILLed while requests are in flight and
started again, the whole NATS cluster killed and started, PostgreSQL restarted (immediate mode: a
crash and recovery). Then tools/chaos_check.py waits for the outboxes and consumers to drain and
counts, straight from the databases and streams, what was lost or doubled. The exit code is 1 on
any loss or double, 2 when the topology could not be started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from kit.natsd import NatsCluster, free_port
from tools.chaos_check import Check, reconcile
from tools.chaos_load import Load
from tools.platform import PLATFORM_TOML, Platform, Service
from tools.run import Failure, Runner, load_config

HOST = "127.0.0.1"
# What the load's journeys need; the gateway comes last (platform.toml's order is kept).
NEEDED = ("identity", "catalog", "licence", "caseflow", "ems-sandbox", "express", "exchange", "gateway")
# Services that run once whatever --replicas says: the sandbox carrier is an outside party.
SINGLE = ("ems-sandbox", "gateway")
# When each fault comes, as a fraction of the load's duration.
SCHEDULE = (
    (0.15, "nats-node"),
    (0.35, "caseflow-replica"),
    (0.55, "nats-cluster"),
    (0.75, "postgres"),
)
DOWN_SECONDS = 4.0
AFTER_LAST_FAULT = 10.0
NOWHERE = 9  # the discard port: connections refused  # how long a killed part stays down


class MissingPostgres(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def postgres_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl."""
    found = [
        path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl") if (path.parent / "initdb").exists()
    ]
    if not found:
        raise MissingPostgres("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb, pg_ctl): "
                              "apt-get install postgresql")  # fmt: skip
    return max(found, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)


class Postgres:
    """A PostgreSQL cluster of this run only: its own data directory and port, restartable.

    initdb and postgres refuse to run as root, so as root they run as the ``postgres`` OS user
    (``runuser``), in a directory of their own under the system's temporary directory (a
    pytest directory is private to root)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="yiwang-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / program), *args]
        return ["runuser", "-u", "postgres", "--", *command] if self.as_root else command

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(self._command(program, *args), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args[:2])} failed: {result.stderr.strip() or result.stdout.strip()}"
            )

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        # Enough connections for every replica's two pools; fsync off: a crash of the server
        # process (what the run does) loses nothing the OS holds, and the disk is shared.
        settings = {
            "port": str(self.port),
            "listen_addresses": f"'{HOST}'",
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "600",
            "shared_buffers": "'64MB'",
            "fsync": "off",
            "full_page_writes": "off",
        }
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("".join(f"{key} = {value}\n" for key, value in settings.items()))
        self._pg_ctl("start")

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", *args, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60")

    def restart(self) -> None:
        """Immediate mode: every backend killed at once, recovery from the WAL on start."""
        self._pg_ctl("restart", "-m", "immediate")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def stop(self) -> None:
        """Stopped whatever state it is in; the directory removed."""
        if self.data.exists():
            try:
                self._pg_ctl("stop", "-m", "immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass


async def create_databases(postgres: Postgres, names: list[str]) -> None:
    import asyncpg

    connection = await asyncpg.connect(postgres.url("postgres"))
    try:
        for name in names:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


@dataclass
class Replica:
    """One process of a service: what it takes to start it again after a kill."""

    entry: Service
    port: int
    env: dict[str, str]


@dataclass
class Fault:
    name: str
    at: float  # seconds into the load
    detail: str
    back_at: float = 0.0


class Topology(Runner):
    """tools/run.py's Runner, with the chaos run's own PostgreSQL and NATS cluster and replicas."""

    def __init__(self, data_dir: Path, postgres: Postgres, cluster: NatsCluster, replicas: dict[str, int]) -> None:
        full = load_config(PLATFORM_TOML)
        config = Platform(full.nats_port, full.common_env, [e for e in full.entries if e.name in NEEDED])
        super().__init__(config, data_dir, any_port=True, ready_timeout=90.0)
        self.all_names = [entry.name for entry in full.entries]
        self.postgres = postgres
        self.cluster = cluster
        self.replica_counts = replicas
        self.replicas: dict[str, list[Replica]] = {}
        self.gateway = ""

    def start_nats(self) -> None:
        self.nats_url = self.cluster.url
        self.rows.append(("nats", self.nats_url, "-", "-", "cluster of 3"))

    def overrides(self, entry: Service) -> dict[str, str]:
        """What differs from ``make run``: PostgreSQL, the cluster's replicas, a quick sandbox, no throttling."""
        prefix = entry.env_prefix
        env: dict[str, str] = {}
        if entry.migrate:
            env[prefix + "DATABASE_URL"] = self.postgres.url(entry.name)
        if entry.common_env:
            env[prefix + "NATS_STREAM_REPLICAS"] = "3"
        if entry.name == "ems-sandbox":  # every parcel delivered, quickly; duplicated pushes stay on
            env.update({prefix + "STEP_SECONDS": "1", prefix + "REFUSAL_RATE": "0", prefix + "FAILURE_RATE": "0",
                        prefix + "RETURN_RATE": "0", prefix + "SEED": "20261201"})  # fmt: skip
        if entry.name == "identity":  # new people's codes one after another, not a minute apart
            env[prefix + "SMS_RESEND_INTERVAL_SECONDS"] = "0"
        if entry.name == "exchange":
            env[prefix + "RETRY_SCHEDULE_SECONDS"] = "[1, 1, 2, 2, 60]"
        if entry.is_gateway:  # one client address and one officer: the load is not an abuser
            env.update({prefix + "RATE_LIMIT_IP_PER_SECOND": "100000", prefix + "RATE_LIMIT_IP_BURST": "100000",
                        prefix + "RATE_LIMIT_SUBJECT_PER_SECOND": "100000",
                        prefix + "RATE_LIMIT_SUBJECT_BURST": "100000"})  # fmt: skip
        return env

    def start_all(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.start_nats()
        planned = self.plan()
        ports: dict[str, list[int]] = {}
        for entry, port in planned:
            count = 1 if entry.name in SINGLE else self.replica_counts.get(entry.name, 1)
            ports[entry.name] = [port] + [self.free() for _ in range(count - 1)]
        # Parties not started (the department's sandbox system) get an address where nothing listens.
        urls = {name: f"http://{HOST}:{NOWHERE}" for name in self.all_names}
        urls.update({name: f"http://{HOST}:{found[0]}" for name, found in ports.items()})
        routes: dict[str, str | list[str]] = {}
        for entry, _ in planned:
            for area, suffix in entry.area_routes().items():
                targets = [f"http://{HOST}:{port}{suffix}" for port in ports[entry.name]]
                routes[area] = targets if len(targets) > 1 else targets[0]
        upstreams = json.dumps(routes, separators=(",", ":"))
        for entry, port in planned:
            # One environment for all of a service's replicas (no service here refers to its own
            # {port} or {url}; only the payment sandbox does, and it does not run).
            env = {**self.env_for(entry, port, urls, upstreams), **self.overrides(entry)}
            if entry.migrate:
                self.run_step(entry, "migrate", [sys.executable, "-m", "kit.migrate", entry.package], env)
            if entry.seed:
                self.run_step(entry, "seed", [sys.executable, "-m", *entry.seed.split()], env)
            group = []
            for n, replica_port in enumerate(ports[entry.name]):
                named = replace(entry, name=f"{entry.name}-{n + 1}") if len(ports[entry.name]) > 1 else entry
                replica = Replica(named, replica_port, env)
                self.start_service(named, replica_port, env)
                group.append(replica)
            self.replicas[entry.name] = group
        self.gateway = urls["gateway"]

    def free(self) -> int:
        port = free_port()
        while port in self.taken:
            port = free_port()
        self.taken.add(port)
        return port

    def kill(self, replica: Replica) -> None:
        """SIGKILL, as a crash would: no shutdown, requests in flight cut off."""
        for entry, process in list(self.children):
            if entry.name == replica.entry.name:
                self.signal(process, signal.SIGKILL)
                process.wait()
                self.children.remove((entry, process))

    def restart(self, replica: Replica) -> None:
        self.start_service(replica.entry, replica.port, replica.env)


class Chaos:
    """The load and the fault schedule, side by side; what happened, kept for the table."""

    def __init__(self, topology: Topology, load: Load, duration: float) -> None:
        self.topology = topology
        self.load = load
        self.duration = duration
        self.faults: list[Fault] = []
        self.started = 0.0

    def now(self) -> float:
        return time.monotonic() - self.started

    async def run(self) -> None:
        self.started = time.monotonic()
        await asyncio.gather(self.load.run_for(self.duration), self.schedule())

    async def schedule(self) -> None:
        actions = {
            "nats-node": self.kill_nats_node,
            "caseflow-replica": self.kill_caseflow_replica,
            "nats-cluster": self.restart_nats_cluster,
            "postgres": self.restart_postgres,
        }
        for fraction, name in SCHEDULE:
            await asyncio.sleep(max(0.0, fraction * self.duration - self.now()))
            fault = Fault(name, self.now(), "")
            self.faults.append(fault)
            fault.detail = await actions[name]()
            fault.back_at = self.now()
            print(f"  chaos: {fault.at:6.1f}s {name}: {fault.detail} (back at {fault.back_at:.1f}s)", flush=True)
        # The load goes on a little after the last part came back, however long the faults took.
        self.load.stop_at = max(self.load.stop_at, time.monotonic() + AFTER_LAST_FAULT)

    async def kill_nats_node(self) -> str:
        node = self.topology.cluster.nodes[1]
        node.kill()
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(node.start)
        await self.topology.cluster.jetstream_ready(60)
        return f"SIGKILL nats node n2 (:{node.port}), started again after {DOWN_SECONDS:.0f}s"

    async def kill_caseflow_replica(self) -> str:
        """Kills caseflow replica 1 the moment caseflow has requests in flight (from inside the
        load's request path, so no await lets them finish first)."""
        replica = self.topology.replicas["caseflow"][0]
        killed = asyncio.Event()
        in_flight: list[int] = []

        def kill_now() -> None:
            in_flight.append(self.load.in_flight["caseflow"] - 1)  # not the one about to be sent
            self.topology.kill(replica)
            killed.set()

        failed_before = self.load.failed["caseflow"]
        self.load.on_caseflow_busy = kill_now
        try:
            await asyncio.wait_for(killed.wait(), 30)
        except TimeoutError:  # the load never got that busy: killed all the same
            self.load.on_caseflow_busy = None
            in_flight.append(self.load.in_flight["caseflow"])
            self.topology.kill(replica)
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(self.topology.restart, replica)
        failed = self.load.failed["caseflow"] - failed_before
        return (f"SIGKILL {replica.entry.name} (:{replica.port}) with {in_flight[0]} caseflow request(s) in flight "
                f"({failed} caseflow request(s) failed until it was back), restarted after {DOWN_SECONDS:.0f}s")  # fmt: skip

    async def restart_nats_cluster(self) -> str:
        for node in self.topology.cluster.nodes:
            node.kill()
        await asyncio.sleep(DOWN_SECONDS)
        for node in self.topology.cluster.nodes:
            await asyncio.to_thread(node.start)
        await self.topology.cluster.jetstream_ready(60)
        return f"SIGKILL all 3 nats nodes, all started again after {DOWN_SECONDS:.0f}s"

    async def restart_postgres(self) -> str:
        await asyncio.to_thread(self.topology.postgres.restart)
        return "pg_ctl restart -m immediate (every backend killed, crash recovery)"


# -- the table ----------------------------------------------------------------------------------


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def report(chaos: Chaos, checks: list[Check], drained: str) -> str:
    load = chaos.load
    lines = [f"\nrequests ({load.workers} workers, {chaos.duration:.0f} s):"]
    rows: list[tuple[str, ...]] = [("kind", "sent", "2xx", "other answers / no answer")]
    total = {"sent": 0, "2xx": 0}
    for kind in sorted(load.tally):
        counts = load.tally[kind]
        other = ", ".join(f"{key} {value}" for key, value in sorted(counts.items()) if key not in ("sent", "2xx"))
        rows.append((kind, str(counts["sent"]), str(counts["2xx"]), other or "-"))
        total["sent"] += counts["sent"]
        total["2xx"] += counts["2xx"]
    rows.append(("all", str(total["sent"]), str(total["2xx"]), ""))
    lines.append(table(rows))
    lines.append("\nfaults:")
    fault_rows: list[tuple[str, ...]] = [("at", "fault", "back at", "what")]
    fault_rows += [(f"{f.at:.1f}s", f.name, f"{f.back_at:.1f}s", f.detail) for f in chaos.faults]
    lines.append(table(fault_rows))
    lines.append(f"\nreconciliation ({drained}):")
    check_rows: list[tuple[str, ...]] = [("check", "counted", "lost", "doubled", "note")]
    check_rows += [(c.name, str(c.counted), str(c.lost), str(c.doubled), c.note) for c in checks]
    lines.append(table(check_rows))
    lost = sum(c.lost for c in checks)
    doubled = sum(c.doubled for c in checks)
    lines.append(f"\nrequests sent {total['sent']}, accepted (2xx) {total['2xx']}, faults {len(chaos.faults)}, "
                 f"lost {lost}, doubled {doubled}")  # fmt: skip
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


@dataclass
class Result:
    """What one run did and counted (the test reads it)."""

    checks: list[Check] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    sent: int = 0
    accepted: int = 0
    text: str = ""

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.lost or check.doubled]


def run_chaos(
    data_dir: Path, *, duration: float, replicas: int, caseflow_replicas: int, workers: int, seed: str
) -> Result:
    """Start the topology, load it while faults come, reconcile; everything stopped at the end."""
    postgres = Postgres(postgres_bin_dir())
    cluster = NatsCluster(data_dir / "nats", log_dir=data_dir)
    counts = {name: replicas for name in NEEDED} | {"caseflow": caseflow_replicas}
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    topology = Topology(data_dir, postgres, cluster, counts)
    try:
        started = time.monotonic()
        postgres.start()
        asyncio.run(create_databases(postgres, [e.name for e in topology.config.entries if e.migrate]))
        cluster.start()
        topology.start_all()
        print(f"chaos: topology ready in {time.monotonic() - started:.0f} s (data and logs in {data_dir})", flush=True)
        print(topology.table(), flush=True)
        load = Load(topology.gateway, workers=workers, seed=seed)
        chaos = Chaos(topology, load, duration)
        asyncio.run(chaos.run())
        databases = {e.name: postgres.url(e.name) for e in topology.config.entries if e.migrate}
        checks, drained = asyncio.run(reconcile(databases, cluster.url, load.promises, timeout=max(90.0, duration)))
        result = Result(checks=checks, faults=chaos.faults)
        result.sent = sum(c["sent"] for c in load.tally.values())
        result.accepted = sum(c["2xx"] for c in load.tally.values())
        result.text = report(chaos, checks, drained)
        return result
    finally:
        topology.stop_all()
        cluster.stop()
        postgres.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    parser.add_argument("--replicas", type=int, default=2, help="replicas of each service (default 2)")
    parser.add_argument("--caseflow-replicas", type=int, help="replicas of caseflow (default: --replicas)")
    parser.add_argument("--workers", type=int, default=32, help="concurrent load workers (default 32)")
    parser.add_argument("--seed", default="chaos", help="seed of the load's people and choices")
    parser.add_argument(
        "--data-dir", type=Path, help="keep data and logs here (default: a temporary directory, kept only on failure)"
    )
    args = parser.parse_args(argv)
    data_dir = (args.data_dir or Path(tempfile.mkdtemp(prefix="yiwang-chaos-"))).resolve()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = run_chaos(data_dir, duration=args.duration, replicas=args.replicas,
                           caseflow_replicas=args.caseflow_replicas or args.replicas, workers=args.workers,
                           seed=args.seed)  # fmt: skip
    except MissingPostgres as exc:
        print(f"chaos: cannot run: {exc}", file=sys.stderr)
        return 2
    except (Failure, RuntimeError, OSError) as exc:
        print(f"chaos: the topology failed: {exc}", file=sys.stderr)
        return 2
    print(result.text, flush=True)
    for check in result.failures:
        print(f"FAILED: {check.name}: lost {check.lost}, doubled {check.doubled} {check.note}", flush=True)
    if result.failures or args.data_dir:
        print(f"data and logs kept in {data_dir}", flush=True)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 1 if result.failures else 0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
