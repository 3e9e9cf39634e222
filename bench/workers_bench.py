"""One service with 2 uvicorn workers against 1 (ADR 0035): identity's authenticated ``GET /me``.

    .venv/bin/python -m bench.workers_bench [--duration 8] [--rounds 3] [--connections 32]

Identity on one fresh SQLite database (migrated, one person registered and logged in, as
bench/gateway_bench.py does), started twice on free ports: once with ``--workers 1``, once with
``--workers 2`` (uvloop, httptools, no access log). wrk 4.1 asks ``/me`` with the same bearer token
(token check, login session, person lookup: reads only, so SQLite's single writer is not what is
measured). The two are interleaved round by round; the medians of the rounds are reported with
the CPU the server's processes (parent and workers) spent per request, and the machine's load.
Needs ``wrk`` on PATH.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.gateway_bench import (
    Processes,
    cpu_seconds,
    identity_env,
    record_results,
    start_identity,
    uvicorn_args,
    wait_http,
    wrk,
)
from kit.natsd import free_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="workers-bench-"))
    procs = Processes(work)
    try:
        one, _, token, one_pid = start_identity(procs, work)
        port = free_port()
        two_process = procs.start(
            "identity-2-workers",
            uvicorn_args("services.identity.main:create_app", port, workers=2),
            identity_env(work),
        )
        two = f"http://127.0.0.1:{port}"
        wait_http(two + "/healthz")
        targets = {"1 worker": (one + "/me", one_pid), "2 workers": (two + "/me", two_process.pid)}
        for url, _ in targets.values():
            wrk(url, token, args.connections, 2)  # warm up: connections, caches, both workers

        keys = ("rps", "p50_ms", "cpu_ms")
        results: dict[str, dict[str, list[float]]] = {name: {k: [] for k in keys} for name in targets}
        loads: list[float] = []
        problems: list[str] = []
        for round_no in range(args.rounds):
            for name, (url, pid) in targets.items():
                loads.append(os.getloadavg()[0])
                before = cpu_seconds(pid)
                run = wrk(url, token, args.connections, args.duration)
                spent = cpu_seconds(pid) - before
                results[name]["rps"].append(run["rps"])
                results[name]["p50_ms"].append(run["p50_ms"])
                results[name]["cpu_ms"].append(1000 * spent / max(1, run["requests"]))
                if run["non2xx"] or run["socket_errors"]:
                    problems.append(f"{name}: non-2xx {run['non2xx']} {run['socket_errors']}")
                print(
                    f"round {round_no + 1} {name:10} {run['rps']:8.0f} req/s  p50 {run['p50_ms']:7.2f} ms  "
                    f"CPU {results[name]['cpu_ms'][-1]:.3f} ms/req",
                    flush=True,
                )
        summary = {name: {k: statistics.median(v) for k, v in r.items()} for name, r in results.items()}
        ratios = [b / a for a, b in zip(results["1 worker"]["rps"], results["2 workers"]["rps"], strict=True)]
        print(f"\nload average (1 min) during the runs: {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores")
        print(f"| identity GET /me, c={args.connections} | req/s | p50 ms | CPU ms/req |")
        print("|---|---:|---:|---:|")
        for name, values in summary.items():
            print(f"| {name} | {values['rps']:.0f} | {values['p50_ms']:.2f} | {values['cpu_ms']:.3f} |")
        print(f"2 workers / 1 worker, round by round: {', '.join(f'{r:.2f}' for r in ratios)}")
        if problems:
            print("\nerrors seen:", *problems, sep="\n  ")
        record = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "load_average": [min(loads), max(loads)],
            "python": platform.python_version(),
            "duration_s": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            "raw": results,
            "median": summary,
            "ratios": ratios,
            "errors": problems,
        }
        record_results("workers", record)
        return 0
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
