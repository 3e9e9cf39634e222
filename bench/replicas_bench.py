"""Caseflow submissions with two replicas against one, in the same run, on this 2-core machine.

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.replicas_bench [--duration 10] [--rounds 3] [--connections 16]

Issue 13: the design must not cap throughput below the cores. One database, one nats-server,
one JWKS; replica A (a uvicorn process) runs throughout. A "1 replica" round drives A alone with
wrk (``--connections``); a "2 replicas" round starts replica B on a second port against the same
database and NATS, drives both at once with one wrk each holding half the connections, sums
their requests, and stops B again — so a 1-replica round has exactly one caseflow process alive
(B's outbox relay would otherwise take a share of A's publishing). Rounds alternate 1, 2, 1, 2…
so a slow moment of the machine hits both; each figure is the median over the rounds.

Besides req/s it reports the replicas' own CPU per request (from /proc, steadier than req/s),
how busy the whole machine was (from /proc/stat) and the share of the database's busy
connections that wait on a lock (pg_stat_activity, sampled every 0.1 s): if two replicas leave
no idle CPU and few statements wait on locks, the cap is the cores, not the design.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import psycopg2
from sqlalchemy.engine import make_url

from bench.caseflow_bench import (
    LUA_POST,
    PERSON,
    cpu_seconds,
    create_database,
    drop_database,
    machine_busy,
    matter_without_licence,
    mint,
    run_wrk,
    seed_matter,
    submission_body,
)
from bench.gateway_bench import Processes, start_trivial, uvicorn_args, wait_http
from kit.natsd import NatsServer, free_port


async def count_cases(dsn: str) -> int:
    """Cases in the bench database: every request should have made one (no retry, no lost submission)."""
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval("SELECT count(*) FROM cases")
    finally:
        await connection.close()


class LockWaits:
    """Samples pg_stat_activity of the bench database while wrk runs: of the connections busy in a
    statement, how many wait for a lock. A row every submission locks (the cap issue 13 warns of)
    shows as most of them waiting, whatever the number of replicas."""

    def __init__(self, dsn: str, database: str) -> None:
        self.dsn, self.database = dsn, database
        self.active = self.waiting = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        connection = psycopg2.connect(self.dsn)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                while not self._stop.wait(0.1):
                    cursor.execute(
                        "SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity "
                        "WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid()",
                        (self.database,),
                    )
                    active, waiting = cursor.fetchone()
                    self.active += active
                    self.waiting += waiting
        finally:
            connection.close()

    def __enter__(self) -> LockWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def share(self) -> float:
        return self.waiting / self.active if self.active else 0.0


def measure(
    targets: list[tuple[str, Path]], pids: list[int], connections: int, seconds: int, database: tuple[str, str]
) -> dict:
    """wrk against every target at once, each with its share of the connections; summed figures."""
    share = connections // len(targets)
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    busy_before, total_before = machine_busy()
    with LockWaits(*database) as locks, ThreadPoolExecutor(len(targets)) as pool:
        runs = list(pool.map(lambda target: run_wrk(target[0], target[1], share, seconds), targets))
    busy_after, total_after = machine_busy()
    requests = sum(run["requests"] for run in runs)
    return {
        "rps": sum(run["rps"] for run in runs),
        "requests": requests,
        "non2xx": sum(run["non2xx"] for run in runs),
        "p50_ms": statistics.median(run["p50_ms"] for run in runs),
        "cpu_ms_per_request": (sum(cpu_seconds(pid) for pid in pids) - cpu_before) * 1000 / max(requests, 1),
        "machine_busy": (busy_after - busy_before) / max(total_after - total_before, 1e-9),
        # Every process's CPU (PostgreSQL, wrk, NATS, the replicas, anything else running) per request.
        "machine_cpu_ms_per_request": (busy_after - busy_before) * 1000 / max(requests, 1),
        "lock_wait_share": locks.share,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pg = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin_dsn = make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False)
    database = f"yiwang_bench_replicas_{uuid.uuid4().hex[:8]}"
    url = make_url(pg).set(drivername="postgresql+asyncpg", database=database).render_as_string(hide_password=False)

    runs: dict[str, list[dict]] = {"1": [], "2": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs = Processes(work)
        nats = NatsServer(work / "nats").start()
        asyncio.run(create_database(admin_dsn, database))
        try:
            env = {
                "CASEFLOW_DATABASE_URL": url, "CASEFLOW_NATS_URL": nats.url, "CASEFLOW_LOG_LEVEL": "WARNING",
                "CASEFLOW_BLOB_DIR": str(work / "blobs"), "CASEFLOW_SUPERVISION_ENABLED": "false",
            }  # fmt: skip
            subprocess.run([sys.executable, "-m", "kit.migrate", "services.caseflow"], env={**os.environ, **env},
                           check=True, capture_output=True)  # fmt: skip
            asyncio.run(seed_matter(url, matter_without_licence()))
            _, jwks_url, _, _ = start_trivial(procs, work)
            env["CASEFLOW_JWKS_URL"] = jwks_url
            port_a, port_b = free_port(), free_port()
            replica_a = procs.start("caseflow-a", uvicorn_args("services.caseflow.main:create_app", port_a), env)
            base_a, base_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
            wait_http(base_a + "/healthz")
            person = mint(work / "trivial-key.pem", PERSON, kind="person", lvl=2, name="张三")
            # Blobs live in the shared blob directory, so one upload serves both replicas.
            body_json = json.dumps(submission_body(base_a, person), ensure_ascii=False)

            def script(name: str) -> Path:
                """A wrk script whose Idempotency-Keys no other wrk uses (a reused key is a cheaper retry)."""
                path = work / f"{name}.lua"
                path.write_text(LUA_POST.format(token=person, body=body_json, run=name))
                return path

            watch = (admin_dsn, database)
            for round_no in range(args.rounds):
                runs["1"].append(
                    measure(
                        [(base_a, script(f"one-{round_no}"))], [replica_a.pid], args.connections, args.duration, watch
                    )
                )
                replica_b = procs.start(
                    f"caseflow-b-{round_no}", uvicorn_args("services.caseflow.main:create_app", port_b), env
                )
                wait_http(base_b + "/healthz")
                runs["2"].append(
                    measure(
                        [(base_a, script(f"two-a-{round_no}")), (base_b, script(f"two-b-{round_no}"))],
                        [replica_a.pid, replica_b.pid],
                        args.connections,
                        args.duration,
                        watch,
                    )
                )
                replica_b.terminate()
                replica_b.wait(timeout=30)
                print(json.dumps({"round": round_no, "1": runs["1"][-1], "2": runs["2"][-1]}), flush=True)
            cases_created = asyncio.run(count_cases(url.replace("+asyncpg", "")))
        finally:
            procs.stop_all()
            nats.stop()
            asyncio.run(drop_database(admin_dsn, database))

    keys = ("rps", "p50_ms", "cpu_ms_per_request", "machine_cpu_ms_per_request", "machine_busy", "lock_wait_share",
            "non2xx")  # fmt: skip
    medians = {n: {key: statistics.median(run[key] for run in runs[n]) for key in keys} for n in runs}
    ratios = [two["rps"] / one["rps"] for one, two in zip(runs["1"], runs["2"], strict=True)]
    print()
    print(f"Medians of {args.rounds} interleaved rounds of {args.duration} s; {args.connections} connections in all.")
    print("| replicas | req/s | p50 ms | replicas' CPU ms/request | machine CPU ms/request | machine busy "
          "| statements waiting on a lock | non-2xx |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n, row in medians.items():
        print(f"| {n} | {row['rps']:,.0f} | {row['p50_ms']:.1f} | {row['cpu_ms_per_request']:.2f} "
              f"| {row['machine_cpu_ms_per_request']:.2f} | {row['machine_busy']:.0%} | {row['lock_wait_share']:.0%} "
              f"| {row['non2xx']:.0f} |")  # fmt: skip
    requests = sum(run["requests"] for n in runs for run in runs[n])
    print(
        f"cases created {cases_created:,} for {requests:,} counted requests (+1 check; wrk leaves some in flight uncounted)"
    )
    # What the cores allow: every core busy at the CPU per request one replica needed (machine-wide).
    cores = os.cpu_count() or 1
    allowed = cores * 1000 / medians["1"]["machine_cpu_ms_per_request"] / medians["1"]["rps"]
    print(f"the {cores} cores allow at most {allowed:.2f}x one replica's rate at the machine's CPU per request "
          "(only meaningful on a quiet machine: other work's CPU counts too)")  # fmt: skip
    print(f"ratio 2:1 of the medians {medians['2']['rps'] / medians['1']['rps']:.2f}; per round "
          f"{', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
