"""Signed department pushes into exchange on PostgreSQL, against the bare insert + outbox ceiling
(bench/caseflow_bare.py), side by side in one run; wrk beside the services on this 2-core machine.

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.exchange_pushes [--duration 10] [--rounds 3] [--connections 16]

Every push is a new event (its own event id) signed as a department system signs it (ADR 0003:
HMAC over the gateway's path, a fresh nonce). wrk cannot compute HMACs, so the signed requests are
made beforehand, one file per run, and each wrk thread walks its own share of them. A push does
what the service does for real: re-verify the signature against the partner's sealed keys,
parse and judge the body, store it once, publish its event through the outbox, sign the receipt
(Ed25519 JWS). Target (ADR 0019): ≥ 0.5 of the ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.caseflow_bench import cpu_seconds, create_database, drop_database, median_of, run_wrk
from bench.gateway_bench import Processes, uvicorn_args, wait_http
from kit.natsd import NatsServer, free_port
from kit.signing import new_nonce, sign

SECRET = "bench-only-bdcdj-partner-secret"
PATH = "/api/v1/departments/BDCDJ/events"
BODY = {
    "event_id": "@@", "type": "case.progress", "occurred_at": "2026-12-01T10:00:00+08:00",
    "data": {"department_case_id": "BDC-2026-000001", "matter_code": "BDCDJ-QR-0001",
             "applicant": "11010519491231002X", "applicant_kind": "person", "step": "accepted"},
}  # fmt: skip
ROWS = ("bare", "push")

LUA_SIGNED = """
local lines = {{}}
for line in io.lines("{file}") do lines[#lines + 1] = line end
local threads, index, offset = {threads}, 0, 0
local template = [[{body}]]
next_offset = 0
setup = function(thread) thread:set("offset", next_offset); next_offset = next_offset + 1 end
request = function()
  index = index + 1
  local line = lines[((index - 1) * threads + offset) % #lines + 1]
  local event_id, timestamp, nonce, signature = line:match("(%S+) (%S+) (%S+) (%S+)")
  local body = template:gsub("@@", event_id)
  local headers = {{["Content-Type"] = "application/json", ["X-Partner-Id"] = "dept-bdcdj",
                   ["X-Timestamp"] = timestamp, ["X-Nonce"] = nonce, ["X-Signature"] = signature}}
  return wrk.format("POST", "/departments/BDCDJ/events", headers, body)
end
"""

LUA_BARE = """
request = function()
  return wrk.format("POST", "/cases", {{["Content-Type"] = "application/json"}}, [[{body}]])
end
"""


def signed_requests(path: Path, run: str, count: int) -> None:
    """``count`` signed pushes with event ids no other run uses: ``event_id timestamp nonce signature``."""
    timestamp = str(int(time.time()))
    lines = []
    for n in range(count):
        event_id = f"{run}-{n}"
        body = json.dumps({**BODY, "event_id": event_id}, ensure_ascii=False, separators=(", ", ": ")).encode()
        nonce = new_nonce()
        lines.append(f"{event_id} {timestamp} {nonce} {sign(SECRET, 'POST', PATH, timestamp, nonce, body)}")
    path.write_text("\n".join(lines) + "\n")


async def seed_partner(env: dict[str, str]) -> None:
    from services.exchange.cli import seed_demo
    from services.exchange.settings import Settings

    os.environ.update(env)
    try:
        print("seed:", await seed_demo(Settings()), flush=True)
    finally:
        for key in env:
            os.environ.pop(key, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-run", type=int, default=40_000, help="signed pushes made for each run")
    args = parser.parse_args()
    pg = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin_dsn = make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False)
    run_id = uuid.uuid4().hex[:8]
    real_db, bare_db = f"yiwang_bench_exchange_{run_id}", f"yiwang_bench_bare_{run_id}"

    def url(name: str) -> str:
        return make_url(pg).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)

    body_json = json.dumps(BODY, ensure_ascii=False, separators=(", ", ": "))
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs = Processes(work)
        nats = NatsServer(work / "nats").start()
        asyncio.run(create_database(admin_dsn, real_db))
        asyncio.run(create_database(admin_dsn, bare_db))
        try:
            env = {
                "EXCHANGE_DATABASE_URL": url(real_db), "EXCHANGE_NATS_URL": nats.url, "EXCHANGE_LOG_LEVEL": "WARNING",
                "EXCHANGE_SECRETS_KEY": base64.b64encode(os.urandom(32)).decode(),
                "EXCHANGE_RECEIPT_KEY_FILE": str(work / "receipt-key.json"),
                "EXCHANGE_DEMO_PARTNER_SECRET": SECRET, "EXCHANGE_CONSUME_SETTLED_EVENTS": "false",
                "EXCHANGE_CONSUME_CASE_EVENTS": "false", "EXCHANGE_DELIVERIES_ENABLED": "false",
                # The signed requests are made before the runs: a window wide enough for all of them.
                "EXCHANGE_SIGNATURE_MAX_AGE_SECONDS": "3600",
            }  # fmt: skip
            subprocess.run([sys.executable, "-m", "kit.migrate", "services.exchange"], env={**os.environ, **env},
                           check=True, capture_output=True)  # fmt: skip
            asyncio.run(seed_partner(env))
            real_port, bare_port = free_port(), free_port()
            real_process = procs.start("exchange", uvicorn_args("services.exchange.main:create_app", real_port), env)
            bare_process = procs.start(
                "bare", uvicorn_args("bench.caseflow_bare:create_app", bare_port), {"BARE_DATABASE_URL": url(bare_db)}
            )
            real, bare = f"http://127.0.0.1:{real_port}", f"http://127.0.0.1:{bare_port}"
            wait_http(real + "/healthz")
            wait_http(bare + "/openapi.json")
            bare_script = work / "bare.lua"
            bare_script.write_text(LUA_BARE.format(body=body_json))
            pids = {"bare": bare_process.pid, "real": real_process.pid}
            runs: dict[str, list[dict]] = {}

            def push_script(name: str) -> Path:
                signed_requests(work / f"{name}.txt", name, args.per_run)
                script = work / f"{name}.lua"
                script.write_text(LUA_SIGNED.format(file=work / f"{name}.txt", threads=2, body=body_json))
                return script

            def measure(name: str, target: str, server: str, script: Path) -> None:
                before = cpu_seconds(pids[server])
                run = run_wrk(target, script, args.connections, args.duration)
                run["cpu_ms_per_request"] = (cpu_seconds(pids[server]) - before) * 1000 / max(run["requests"], 1)
                runs.setdefault(name, []).append(run)

            # A check that a signed push is accepted at all, before anything is measured.
            check = work / "check.txt"
            signed_requests(check, "check", 1)
            event_id, timestamp, nonce, signature = check.read_text().split()
            import httpx

            answer = httpx.post(
                real + "/departments/BDCDJ/events",
                content=json.dumps({**BODY, "event_id": event_id}, ensure_ascii=False, separators=(", ", ": ")),
                headers={"Content-Type": "application/json", "X-Partner-Id": "dept-bdcdj", "X-Timestamp": timestamp,
                         "X-Nonce": nonce, "X-Signature": signature},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            for round_no in range(args.rounds):
                measure("bare", bare, "bare", bare_script)
                measure("push", real, "real", push_script(f"push{round_no}"))
            for name in ROWS:
                results[name] = {
                    key: median_of(runs[name], key) for key in ("rps", "p50_ms", "cpu_ms_per_request", "non2xx")
                }
                results[name]["rounds"] = runs[name]
        finally:
            procs.stop_all()
            nats.stop()
            asyncio.run(drop_database(admin_dsn, real_db))
            asyncio.run(drop_database(admin_dsn, bare_db))

    print(json.dumps(results, indent=2))
    print()
    print(f"Medians of {args.rounds} interleaved rounds; c={args.connections}, {args.duration} s each.")
    print("| what | req/s | ratio to bare | p50 ms | server CPU ms/request | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ROWS:
        r = results[name]
        print(f"| {name} | {r['rps']:,.0f} | {r['rps'] / results['bare']['rps']:.2f} | {r['p50_ms']:.2f} "
              f"| {r['cpu_ms_per_request']:.2f} | {r['non2xx']:.0f} |")  # fmt: skip
    ratios = [p["rps"] / b["rps"] for p, b in zip(results["push"]["rounds"], results["bare"]["rounds"], strict=True)]
    print(f"push: per-round ratios {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
