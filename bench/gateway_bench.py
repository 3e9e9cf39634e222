"""Gateway overhead: authenticated GET /me directly, through the gateway, and through nginx.

    .venv/bin/python -m bench.gateway_bench [--duration 10] [--rounds 2] [--backend identity|trivial]
                                            [--baseline REV] [--no-nginx]

Starts (free ports, one uvicorn worker each) the backend — the real identity service on a fresh
SQLite database (migrated, one person registered and logged in), or a trivial FastAPI app that
verifies the token with kit.auth — then the gateway in front of it (token check on, rate limits
raised so they never refuse) and nginx (Debian package) as a plain keep-alive proxy. Each target
is measured in the same run with wrk: throughput at 32 connections, p50 at 1 connection.
Targets are interleaved per round and the median of the rounds is reported, with the CPU time
each server process spent per request (from /proc; steadier than req/s on a shared machine).
``--baseline REV`` also runs the gateway of git revision REV (extracted with ``git archive``) as
one more target, so before and after are measured side by side. Needs ``wrk`` and ``nginx`` on
PATH (apt-get install -y wrk nginx).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from kit.natsd import free_port, port_open

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ID_NUMBER = "11010519491231002X"
MOBILE = "13800138000"
PASSWORD = "Bench-Passw0rd!"


class Processes:
    """Everything this bench started, stopped by pid at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=log, start_new_session=True
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


def uvicorn_args(target: str, port: int, *extra: str, app_dir: Path = ROOT, workers: int = 1) -> list[str]:
    return [
        PYTHON, "-m", "uvicorn", target, "--factory", "--app-dir", str(app_dir), "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        *extra,
    ]  # fmt: skip


def identity_env(work: Path) -> dict[str, str]:
    """Identity on SQLite under ``work``, without NATS, with long-lived tokens."""
    return {
        "IDENTITY_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'identity.db'}",
        "IDENTITY_NATS_ENABLED": "false",
        "IDENTITY_ACCESS_TOKEN_TTL_SECONDS": "7200",
        "IDENTITY_LOG_LEVEL": "WARNING",
        "IDENTITY_SANDBOX_DELAY_MS": "0",
        "IDENTITY_SANDBOX": "true",  # the SMS sandbox page the bench reads the registration code from
    }


def start_identity(procs: Processes, work: Path) -> tuple[str, str, str, int]:
    """Identity on a fresh database; returns (base URL, JWKS URL, access token, pid)."""
    port = free_port()
    env = identity_env(work)
    subprocess.run(
        [PYTHON, "-m", "kit.migrate", "services.identity"], cwd=ROOT, env={**os.environ, **env}, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    process = procs.start("identity", uvicorn_args("services.identity.main:create_app", port), env)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz")
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post("/sms-codes", json={"mobile": MOBILE, "purpose": "register"}).raise_for_status()
        sent = client.get("/sandbox/sms", params={"mobile": MOBILE}).json()
        code = re.search(r"(?<!\d)\d{6}(?!\d)", sent[0]["text"]).group(0)
        client.post(
            "/register",
            json={"id_number": ID_NUMBER, "name": "张三", "mobile": MOBILE, "password": PASSWORD, "sms_code": code},
        ).raise_for_status()
        tokens = client.post("/sessions", json={"method": "password", "login": ID_NUMBER, "password": PASSWORD})
        tokens.raise_for_status()
        token = tokens.json()["access_token"]
        client.get("/me", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
    return base, base + "/.well-known/jwks.json", token, process.pid


def start_trivial(procs: Processes, work: Path) -> tuple[str, str, str, int]:
    """The trivial backend (bench/gateway_backend.py); returns (base URL, JWKS URL, access token, pid)."""
    port = free_port()
    key_file = work / "trivial-key.pem"
    env = {"BENCH_KEY_FILE": str(key_file)}
    process = procs.start("trivial", uvicorn_args("bench.gateway_backend:create_app", port), env)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz")
    token = httpx.post(base + "/token").json()["access_token"]
    return base, base + "/.well-known/jwks.json", token, process.pid


def start_gateway(
    procs: Processes, name: str, backend: str, jwks_url: str, app_dir: Path = ROOT, **extra_env: str
) -> tuple[str, int]:
    """A gateway in front of ``backend`` (from the tree at ``app_dir``); returns (base URL, pid)."""
    port = free_port()
    env = {
        "GATEWAY_UPSTREAMS": json.dumps({"identity": backend}),
        "GATEWAY_JWKS_URL": jwks_url,
        "GATEWAY_RATE_LIMIT_IP_PER_SECOND": "1000000",
        "GATEWAY_RATE_LIMIT_IP_BURST": "1000000",
        "GATEWAY_RATE_LIMIT_SUBJECT_PER_SECOND": "1000000",
        "GATEWAY_RATE_LIMIT_SUBJECT_BURST": "1000000",
        "GATEWAY_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    process = procs.start(
        name, uvicorn_args("gateway.main:create_app", port, "--no-proxy-headers", app_dir=app_dir), env
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz")
    return base, process.pid


NGINX_CONF = """
worker_processes 1;
daemon off;
user root;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    upstream backend {{ server 127.0.0.1:{backend_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location /api/v1/identity/ {{
            proxy_pass http://backend/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"""


def start_nginx(procs: Processes, work: Path, backend: str) -> tuple[str, int]:
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port, backend_port=backend.rsplit(":", 1)[1]))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = procs.start("nginx", [nginx, "-c", str(conf), "-e", str(work / "nginx-error.log")])
    deadline = time.monotonic() + 10
    while not port_open(port):
        if time.monotonic() > deadline:
            raise TimeoutError("nginx did not listen")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", process.pid


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (nginx's worker), from /proc."""
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for each in [pid, *(int(c) for c in children.read_text().split())] if children.exists() else [pid]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def wrk(url: str, token: str, connections: int, duration: int) -> dict[str, float]:
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
         "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50_value, p50_unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "requests": requests,
        "p50_ms": float(p50_value) * _UNITS[p50_unit],
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def baseline_tree(work: Path, revision: str) -> Path:
    """The repository at ``revision``, extracted to run its gateway beside this one."""
    tree = work / f"baseline-{revision}"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def record_results(stem: str, record: dict) -> Path:
    """The run's raw figures as bench/results/<stem>-<UTC time>.json (not committed)."""
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{stem}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    print(f"\nrecorded in {out.relative_to(ROOT)}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backend", choices=("identity", "trivial"), default="identity")
    parser.add_argument("--baseline", metavar="REV", help="also run the gateway of this git revision")
    parser.add_argument("--no-cache-target", action="store_true", help="skip the gateway without its token cache")
    parser.add_argument("--no-nginx", action="store_true")
    args = parser.parse_args()
    for tool in ("wrk",) + (() if args.no_nginx else ("nginx",)):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            print(f"{tool} not found: apt-get install -y wrk nginx", file=sys.stderr)
            return 2

    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    procs = Processes(work)
    try:
        starter = start_identity if args.backend == "identity" else start_trivial
        backend, jwks_url, token, backend_pid = starter(procs, work)
        gateway_path = "/api/v1/identity/me"
        # name → (URL, the proxy's pid or None for the backend alone)
        targets: dict[str, tuple[str, int | None]] = {"direct": (backend + "/me", None)}
        base, pid = start_gateway(procs, "gateway", backend, jwks_url)
        targets["gateway"] = (base + gateway_path, pid)
        if args.baseline:
            tree = baseline_tree(work, args.baseline)
            base, pid = start_gateway(procs, "gateway-baseline", backend, jwks_url, app_dir=tree)
            targets[f"gateway @ {args.baseline}"] = (base + gateway_path, pid)
        if not args.no_cache_target:
            base, pid = start_gateway(
                procs, "gateway-nocache", backend, jwks_url, GATEWAY_VERIFIED_TOKEN_CACHE_SIZE="0"
            )
            targets["gateway, no token cache"] = (base + gateway_path, pid)
        if not args.no_nginx:
            base, pid = start_nginx(procs, work, backend)
            targets["nginx"] = (base + gateway_path, pid)
        for name, (url, _) in targets.items():
            response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 200:
                raise RuntimeError(f"{name}: {url} answered {response.status_code} {response.text[:200]}")
            wrk(url, token, 32, 2)  # warm up pools and caches

        keys = ("rps", "p50_ms", "proxy_cpu_ms", "backend_cpu_ms")
        results: dict[str, dict[str, list[float]]] = {n: {k: [] for k in keys} for n in targets}
        problems: list[str] = []
        loads: list[float] = []
        for round_no in range(args.rounds):
            for name, (url, proxy_pid) in targets.items():
                loads.append(os.getloadavg()[0])
                before = cpu_seconds(backend_pid), cpu_seconds(proxy_pid) if proxy_pid else 0.0
                loaded = wrk(url, token, 32, args.duration)
                after = cpu_seconds(backend_pid), cpu_seconds(proxy_pid) if proxy_pid else 0.0
                single = wrk(url, token, 1, args.duration)
                count = max(1, loaded["requests"])
                results[name]["rps"].append(loaded["rps"])
                results[name]["p50_ms"].append(single["p50_ms"])
                results[name]["backend_cpu_ms"].append(1000 * (after[0] - before[0]) / count)
                results[name]["proxy_cpu_ms"].append(1000 * (after[1] - before[1]) / count)
                for run in (loaded, single):
                    if run["non2xx"] or run["socket_errors"]:
                        problems.append(f"{name}: non-2xx {run['non2xx']} {run['socket_errors']}")
                print(
                    f"round {round_no + 1} {name:26} {loaded['rps']:9.0f} req/s (c=32)  "
                    f"p50 {single['p50_ms']:.3f} ms (c=1)  proxy CPU {results[name]['proxy_cpu_ms'][-1]:.3f} ms/req  "
                    f"backend CPU {results[name]['backend_cpu_ms'][-1]:.3f} ms/req",
                    flush=True,
                )

        summary = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
        direct = summary["direct"]
        print()
        print(f"load average (1 min) during the runs: {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores")
        print("| target | req/s, c=32 | ratio to direct | p50 ms, c=1 | added p50 ms | proxy CPU ms/req |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, values in summary.items():
            proxy_cpu = f"{values['proxy_cpu_ms']:.3f}" if targets[name][1] else "—"
            print(
                f"| {name} | {values['rps']:.0f} | {values['rps'] / direct['rps']:.2f} | "
                f"{values['p50_ms']:.3f} | {values['p50_ms'] - direct['p50_ms']:+.3f} | {proxy_cpu} |"
            )
        if problems:
            print("\nerrors seen:", *problems, sep="\n  ")
        record = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "backend": args.backend,
            "baseline": args.baseline,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "load_average": [min(loads), max(loads)],
            "python": platform.python_version(),
            "duration_s": args.duration,
            "rounds": args.rounds,
            "raw": results,
            "median": summary,
            "errors": problems,
        }
        record_results(f"gateway-{args.backend}", record)
        return 0
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
