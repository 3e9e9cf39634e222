"""``make run``: NATS, every service on SQLite, the gateway — from ``platform.toml``.

    python -m tools.run [--check] [--data-dir DIR] [--free-ports] [--config FILE]

Order: nats, then the services in file order (migrate, seed, start, wait for /readyz), gateway
last. Ports in the config are preferences: a busy port is replaced by a free one and every URL
that points at it follows, because the development machines already run NATS on 4222 and
PostgreSQL on 5432 and `make run` must never fail on a busy port. ``YIWANG_NATS_URL`` reuses a
running NATS instead of starting one. Ctrl-C / SIGTERM stops the children in reverse order
(SIGTERM, wait, SIGKILL), NATS last. A service runs ``workers`` uvicorn processes (platform.toml,
default 1; ``YIWANG_WORKERS=caseflow=2,catalog=2`` overrides, ADR 0035). ``--check`` (or ``YIWANG_RUN_CHECK=1``) stops everything
once all are ready and exits 0: the proof that `make run` works, used by tests/deploy/test_run.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from kit.natsd import NatsServer, free_port, port_open
from tools.platform import Platform, Service, load

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0


def load_config(path: Path) -> Platform:
    try:
        return load(path)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def module_available(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def port_busy(port: int) -> bool:
    """Something listens, or we could not bind it ourselves (e.g. held on 0.0.0.0)."""
    if port_open(port, HOST):
        return True
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and nats do
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def pick_port(preferred: int, taken: set[int], any_port: bool) -> int:
    port = preferred
    while any_port or port in taken or port_busy(port):
        any_port = False
        port = free_port()
    taken.add(port)
    return port


class Failure(Exception):
    """A step failed; the message says which and where its log is."""


def worker_counts(config: Platform, override: str) -> dict[str, int]:
    """uvicorn workers per service: platform.toml's ``workers``, then ``override``
    (``YIWANG_WORKERS``: ``name=count`` pairs separated by commas). ``Failure`` names a bad entry.

    The gateway keeps one worker: its signed-request nonces and rate-limit buckets live in its
    process (ADR 0003), so a second worker would accept a nonce the first one has already seen."""
    counts = {entry.name: entry.workers for entry in config.entries}
    for item in filter(None, (part.strip() for part in override.split(","))):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in counts:
            raise Failure(f"YIWANG_WORKERS: no service named {name!r} (known: {', '.join(counts)})")
        if not value.strip().isdigit() or int(value) < 1:
            raise Failure(f"YIWANG_WORKERS: {item!r} needs a whole number of workers, at least 1")
        counts[name] = int(value)
    for entry in config.entries:
        if entry.is_gateway and counts[entry.name] > 1:
            raise Failure(
                f"{entry.name}: one worker only — signed requests' nonces are remembered per process, "
                "so a replay sent to another worker would pass (ADR 0003, ADR 0035)"
            )
    return counts


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Runner:
    def __init__(self, config: Platform, data_dir: Path, any_port: bool, ready_timeout: float) -> None:
        self.config = config
        self.data_dir = data_dir
        self.logs = data_dir / "logs"
        self.any_port = any_port
        self.ready_timeout = ready_timeout
        self.nats: NatsServer | None = None
        self.nats_url = ""
        self.children: list[tuple[Service, subprocess.Popen]] = []
        self.rows: list[tuple[str, str, str, str, str]] = []  # name, url, pid, log, note
        self.taken: set[int] = set()
        self.workers = worker_counts(config, os.environ.get("YIWANG_WORKERS", ""))

    # -- nats ---------------------------------------------------------------------------------
    def start_nats(self) -> None:
        reuse = os.environ.get("YIWANG_NATS_URL", "").strip()
        if reuse:
            self.nats_url = reuse
            shown = re.sub(r"//[^@/]*@", "//***@", reuse)  # never print credentials
            self.rows.append(("nats", shown, "-", "-", "reused (YIWANG_NATS_URL)"))
            return
        preferred = self.config.nats_port
        port = pick_port(preferred, self.taken, self.any_port)
        log = self.logs / "nats.log"
        self.nats = NatsServer(self.data_dir / "nats", port=port, log_file=log)  # set first: stop_all cleans up
        try:
            self.nats.start()
        except (OSError, RuntimeError) as exc:  # TimeoutError is an OSError
            raise Failure(f"nats-server: {exc}; log {self.rel(log)}:\n{tail(log)}") from None
        self.nats_url = self.nats.url
        note = "" if port == preferred else f"{preferred} busy" if not self.any_port else "free port"
        self.rows.append(("nats", self.nats_url, str(self.nats.process.pid), self.rel(log), note))

    # -- services -----------------------------------------------------------------------------
    def plan(self) -> list[tuple[Service, int]]:
        """Which entries run and on which port; skipped ones are reported, not fatal."""
        planned = []
        for entry in self.config.entries:
            if not module_available(entry.module):
                print(f"  skip {entry.name}: module {entry.module} not found (not written yet?)", flush=True)
                self.rows.append((entry.name, "-", "-", "-", f"skipped: no {entry.module}"))
                continue
            planned.append((entry, pick_port(entry.port, self.taken, self.any_port)))
        return planned

    def env_for(self, entry: Service, port: int, urls: dict[str, str], upstreams: str) -> dict[str, str]:
        values = {
            "nats_url": self.nats_url,
            "data_dir": str(self.data_dir),
            "name": entry.name,
            "port": port,
            "url": urls[entry.name],
            "urls": urls,
            "upstreams": upstreams,
        }
        templates = {**(self.config.common_env if entry.common_env else {}), **entry.env}
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for key, template in templates.items():
            if entry.env_prefix + key in os.environ:
                continue  # set in the environment: it wins over platform.toml (a test, an operator)
            try:
                env[entry.env_prefix + key] = str(template).format_map(values)
            except (KeyError, IndexError) as exc:
                raise Failure(f"{entry.name}: env {key} refers to unknown {exc}") from None
        return env

    def run_step(self, entry: Service, what: str, args: list[str], env: dict[str, str]) -> None:
        log = self.logs / f"{entry.name}.log"
        with open(log, "ab") as out:
            out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {what} ====\n".encode())
            out.flush()
            result = subprocess.run(args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise Failure(f"{entry.name}: {what} failed (exit {result.returncode}); log {self.rel(log)}:\n{tail(log)}")
        print(f"  {entry.name}: {what} ok", flush=True)

    def start_service(self, entry: Service, port: int, env: dict[str, str]) -> None:
        log = self.logs / f"{entry.name}.log"
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            entry.app,
            "--factory",
            "--host",
            HOST,
            "--port",
            str(port),
            "--no-proxy-headers",
        ]
        # tools.chaos renames replicas (caseflow-1): they run their block's count.
        workers = self.workers.get(entry.name, entry.workers)
        if workers > 1:
            args += ["--workers", str(workers)]
            if env.get(entry.env_prefix + "DATABASE_URL", "").startswith("sqlite"):
                # Safe (WAL, busy_timeout; every background activity holds on SQLite, ADR 0030), but
                # the workers' writes take turns on the file's single writer lock.
                print(f"  {entry.name}: {workers} workers share one SQLite file: reads run in parallel, "
                      "writes one at a time (use PostgreSQL for write throughput)", flush=True)  # fmt: skip
        with open(log, "ab") as out:
            out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} start on {HOST}:{port} ====\n".encode())
            out.flush()
            # Own session: a Ctrl-C in the terminal reaches only us, and we stop children in order.
            process = subprocess.Popen(
                args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.children.append((entry, process))
        url = f"http://{HOST}:{port}"
        self.wait_ready(entry, process, url + entry.ready_path, log)
        note = "" if port == entry.port else f"{entry.port} busy" if not self.any_port else "free port"
        if workers > 1:
            note = ", ".join(filter(None, [note, f"{workers} workers"]))
        self.rows.append((entry.name, url, str(process.pid), self.rel(log), note))

    def wait_ready(self, entry: Service, process: subprocess.Popen, url: str, log: Path) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise Failure(f"{entry.name} exited with {process.returncode}; log {self.rel(log)}:\n{tail(log)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    ready = response.status == 200
            except urllib.error.HTTPError as exc:
                ready, last = False, f"HTTP {exc.code}"
            except OSError:  # not listening yet
                ready = False
            if ready:
                print(f"  {entry.name}: ready", flush=True)
                return
            time.sleep(0.2)
        raise Failure(f"{entry.name}: {url} not ready after {self.ready_timeout:.0f}s ({last}); log {self.rel(log)}")

    def start_all(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        print(f"yiwang: starting (data in {self.data_dir})", flush=True)
        self.start_nats()
        planned = self.plan()
        # Every configured service has a URL (skipped ones keep their preferred port) so templates resolve.
        urls = {entry.name: f"http://{HOST}:{entry.port}" for entry in self.config.entries}
        urls.update({entry.name: f"http://{HOST}:{port}" for entry, port in planned})
        routes = {}
        for entry, _ in planned:
            routes.update({area: urls[entry.name] + suffix for area, suffix in entry.area_routes().items()})
        upstreams = json.dumps(routes, separators=(",", ":"))
        for entry, port in planned:
            env = self.env_for(entry, port, urls, upstreams)
            if entry.migrate:
                self.run_step(entry, "migrate", [sys.executable, "-m", "kit.migrate", entry.package], env)
            if entry.seed:
                seed_module = entry.seed.split()[0]
                if module_available(seed_module):
                    self.run_step(entry, "seed", [sys.executable, "-m", *entry.seed.split()], env)
                else:
                    print(f"  {entry.name}: no {seed_module} yet, seeding skipped", flush=True)
            self.start_service(entry, port, env)

    # -- stop ---------------------------------------------------------------------------------
    def stop_all(self) -> None:
        """Services in reverse start order (SIGTERM, wait, SIGKILL), NATS last."""
        for _, process in reversed(self.children):
            if process.poll() is None:
                self.signal(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for entry, process in reversed(self.children):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"  {entry.name}: did not stop in {STOP_TIMEOUT:.0f}s, killing", flush=True)
                self.signal(process, signal.SIGKILL)
                process.wait()
        self.children.clear()
        if self.nats is not None:
            self.nats.stop()
            self.nats = None

    @staticmethod
    def signal(process: subprocess.Popen, signum: int) -> None:
        try:
            os.killpg(process.pid, signum)  # the child leads its own session; take its helpers too
        except ProcessLookupError:
            pass

    def watch(self) -> None:
        """Until Ctrl-C: a child that dies takes the whole platform down, loudly."""
        while True:
            for entry, process in self.children:
                if process.poll() is not None:
                    log = self.logs / f"{entry.name}.log"
                    raise Failure(f"{entry.name} exited with {process.returncode}; log {self.rel(log)}:\n{tail(log)}")
            time.sleep(0.5)

    # -- output -------------------------------------------------------------------------------
    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def table(self) -> str:
        header = ("name", "url", "pid", "log", "note")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in [header, *self.rows]
        ]
        return "\n".join(lines)


def _terminate(signum, frame):  # SIGTERM takes the same path as Ctrl-C
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.run", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "platform.toml")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("YIWANG_DATA_DIR") or REPO / ".data"))
    parser.add_argument(
        "--check",
        action="store_true",
        default=os.environ.get("YIWANG_RUN_CHECK") == "1",
        help="start, wait until ready, print the table, stop, exit 0",
    )
    parser.add_argument(
        "--free-ports", action="store_true", help="ignore preferred ports and take free ones (tests, parallel runs)"
    )
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    try:
        runner = Runner(load_config(args.config), args.data_dir.resolve(), args.free_ports, args.ready_timeout)
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    signal.signal(signal.SIGTERM, _terminate)
    code = 0
    try:
        runner.start_all()
        print("\n" + runner.table(), flush=True)
        if args.check:
            print("\ncheck: everything ready; stopping", flush=True)
        else:
            print("\nCtrl-C stops everything.", flush=True)
            runner.watch()
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        code = 130 if args.check else 0  # an interrupted check proved nothing
    except Failure as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        # A second Ctrl-C must not leave half the children running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        runner.stop_all()
        print("stopped.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
