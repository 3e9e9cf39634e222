"""Caseflow on PostgreSQL, load generator (wrk) beside the service on this 2-core machine.

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.caseflow_bench [--duration 10] [--cases 1000000]

Measures, in one run:
- the ceiling: a bare FastAPI endpoint inserting one case row and one outbox row
  (bench/caseflow_bare.py), wrk with 16 connections;
- real submissions (validation, idempotency key, case numbering, clocks, the event) — each
  request with its own Idempotency-Key — same wrk settings; ratio to the ceiling and p50;
- officer transitions (accept with If-Match) on the cases just submitted; ratio to the ceiling;
- worklist and my-cases p95 after bulk-loading ``--cases`` cases (SQL, not through the API).
Targets (issue 5): submissions ≥ 0.5 of the ceiling and p50 ≤ 15 ms; transitions ≥ 0.5;
worklist and my-cases p95 ≤ 20 ms with 1 million cases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy.engine import make_url

from bench.gateway_bench import _UNITS, Processes, start_trivial, uvicorn_args, wait_http
from kit.natsd import NatsServer, free_port

PERSON = "11010519491231002X"
ROWS = ("bare", "submit", "transition", "bare_c1", "submit_c1")
MATTER = "SCJG-BENCH-001"


def matter_definition() -> dict:
    """A promised licensing matter like 个体工商户设立登记 (as catalog publishes it)."""
    return {
        "code": MATTER, "version": 1, "effective_from": "2026-01-01", "published_at": "2026-01-01T00:00:00Z",
        "published_by": "officer:scjgj.admin", "name": "个体工商户设立登记", "aliases": [], "keywords": [],
        "matter_type": "行政许可", "department": "SCJGJ", "level": "city", "division_code": "371400",
        "legal_basis": [], "conditions": [], "audience": ["person"], "themes": [],
        "materials": [
            {"name": "居民身份证", "required": True, "forms": ["electronic"], "count": 1,
             "licence_type": "resident_id_card"},
            {"name": "经营场所租赁合同", "required": True, "forms": ["copy"], "count": 1},
        ],
        "statutory_limit_days": 20, "promised_limit_days": 3, "kind": "promised", "fees": [],
        "result": {"name": "营业执照", "form": "licence", "licence_type": "business_licence",
                   "delivery": ["window", "express"]},
        "depth": 4, "max_visits": 0, "online": True, "express": True, "min_level": 2,
        "steps": [
            {"name": "受理", "roles": ["acceptor"], "limit_days": 1},
            {"name": "审查", "roles": ["reviewer"], "limit_days": 1},
            {"name": "决定", "roles": ["decider"], "limit_days": 1},
        ],
        "form_fields": [{"name": "business_scope", "label": "经营范围", "kind": "text", "required": True}],
        "faq": [], "parallel_departments": [], "consult_phone": None, "window": None,
    }  # fmt: skip


def mint(key_file: Path, subject: str, **claims) -> str:
    key = load_pem_private_key(key_file.read_bytes(), None)
    now = int(time.time())
    body = {"iss": "yiwang-identity", "aud": "yiwang", "sub": subject, "iat": now, "exp": now + 7200,
            "jti": uuid.uuid4().hex, **claims}  # fmt: skip
    return jwt.encode(body, key, algorithm="EdDSA", headers={"kid": "bench-1"})


# Every request its own Idempotency-Key: wrk seeds each thread's math.random alike, so the key
# carries the thread's number (set by setup) and a per-run prefix, never a random number alone.
LUA_POST = """
counter = 0
next_thread = 0
thread_no = 0
setup = function(thread) thread:set("thread_no", next_thread); next_thread = next_thread + 1 end
request = function()
  counter = counter + 1
  local headers = {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {token}"}}
  headers["Idempotency-Key"] = "{run}-" .. thread_no .. "-" .. counter
  return wrk.format("POST", "/cases", headers, [[{body}]])
end
"""

LUA_ACTIONS = """
local cases = {{}}
for line in io.lines("{case_file}") do cases[#cases + 1] = line end
local index = 0
next_offset = 0  -- main state: each thread gets its own offset (a global there, set by setup)
offset = 0
setup = function(thread) thread:set("offset", next_offset); next_offset = next_offset + 1 end
request = function()
  index = index + 1
  local case_no = cases[((index - 1) * {threads} + offset) % #cases + 1]
  local headers = {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {token}",
                   ["If-Match"] = '"1"'}}
  return wrk.format("POST", "/cases/" .. case_no .. "/actions", headers, [[{{"action": "accept"}}]])
end
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def run_wrk(url: str, script: Path, connections: int, duration: int) -> dict:
    threads = 2 if connections > 1 else 1
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50_ms": float(value) * _UNITS[unit], "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "requests": total}  # fmt: skip


async def create_database(admin_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def seed_matter(url: str, definition: dict | None = None) -> None:
    """Store a matter version in caseflow's database as catalog's event would (default: this bench's)."""
    from contracts.events.catalog import MatterPublished
    from kit.db import make_engine, make_sessionmaker
    from services.caseflow import matters

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await matters.store_published(session, MatterPublished.model_validate(definition or matter_definition()))
    finally:
        await engine.dispose()


BULK_SQL = """
INSERT INTO cases (case_no, query_code, matter_code, matter_version, matter_name, department, applicant,
  applicant_kind, applicant_name, state, version, correction_count, extension_days, reviewed, online, delivery,
  form, materials, received_on, deemed_accepted, clock_step, due_on, due_provisional, deadlines,
  request_hash, created_at, updated_at)
SELECT 'B' || lpad(g::text, 20, '0'), 'Q1234567', $1, 1, '个体工商户设立登记',
  (ARRAY['SCJGJ','BDCDJ','SWJ','RSJ','GAJ'])[1 + g % 5],
  '1101051949' || lpad((g % 100000)::text, 8, '0'), 'person', '张三',
  (ARRAY['submitted','resubmitted','accepted','reviewed','approved','delivering'])[1 + (g / 7) % 6], 1, 0, 0, false, true,
  '{"method":"window"}', '{}', '[]', DATE '2026-11-02' - (g % 300)::int, false, 'pre_review',
  DATE '2026-11-05' + (g % 60)::int, false, '{}', md5(g::text), now(), now()
FROM generate_series($2::bigint, $3::bigint) AS g
"""


async def bulk_load(dsn: str, count: int) -> float:
    connection = await asyncpg.connect(dsn)
    started = time.perf_counter()
    try:
        step = 200_000
        for first in range(1, count + 1, step):
            await connection.execute(BULK_SQL, MATTER, first, min(first + step - 1, count))
        await connection.execute("ANALYZE cases")
    finally:
        await connection.close()
    return time.perf_counter() - started


def p95_of(client: httpx.Client, path: str, headers: dict, params_list: list[dict], rounds: int = 200) -> dict:
    timings = []
    for i in range(rounds):
        started = time.perf_counter()
        response = client.get(path, headers=headers, params=params_list[i % len(params_list)])
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    timings.sort()
    return {"p50_ms": statistics.median(timings), "p95_ms": timings[int(len(timings) * 0.95) - 1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", type=int, default=1_000_000)
    args = parser.parse_args()
    pg = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin_dsn = make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False)
    run_id = uuid.uuid4().hex[:8]
    real_db, bare_db = f"yiwang_bench_caseflow_{run_id}", f"yiwang_bench_bare_{run_id}"

    def url(name: str) -> str:
        return make_url(pg).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs = Processes(work)
        nats = NatsServer(work / "nats").start()
        asyncio.run(create_database(admin_dsn, real_db))
        asyncio.run(create_database(admin_dsn, bare_db))
        try:
            env = {
                "CASEFLOW_DATABASE_URL": url(real_db), "CASEFLOW_NATS_URL": nats.url, "CASEFLOW_LOG_LEVEL": "WARNING",
                "CASEFLOW_BLOB_DIR": str(work / "blobs"), "CASEFLOW_SUPERVISION_ENABLED": "false",
            }  # fmt: skip
            subprocess.run([sys.executable, "-m", "kit.migrate", "services.caseflow"], env={**os.environ, **env},
                           check=True, capture_output=True)  # fmt: skip
            asyncio.run(seed_matter(url(real_db)))
            _, jwks_url, _ = start_trivial(procs, work)
            key_file = work / "trivial-key.pem"
            env["CASEFLOW_JWKS_URL"] = jwks_url
            real_port, bare_port = free_port(), free_port()
            real_process = procs.start("caseflow", uvicorn_args("services.caseflow.main:create_app", real_port), env)
            bare_process = procs.start(
                "bare", uvicorn_args("bench.caseflow_bare:create_app", bare_port), {"BARE_DATABASE_URL": url(bare_db)}
            )
            real, bare = f"http://127.0.0.1:{real_port}", f"http://127.0.0.1:{bare_port}"
            wait_http(real + "/healthz")
            wait_http(bare + "/openapi.json")

            person = mint(key_file, PERSON, kind="person", lvl=2)
            officer = mint(key_file, "officer:scjgj.officer", kind="officer", lvl=4, roles=["acceptor"], dept="SCJGJ")
            with httpx.Client(timeout=30) as client:
                blob = client.post(
                    real + "/materials", headers={"Authorization": f"Bearer {person}"},
                    files={"file": ("lease.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 2048, "image/jpeg")},
                )  # fmt: skip
                blob.raise_for_status()
                body = {
                    "matter_code": MATTER, "applicant_name": "张三", "form": {"business_scope": "餐饮服务"},
                    "materials": [
                        {"name": "居民身份证", "licence_id": "LIC-ID-1", "licence_version": 1},
                        {"name": "经营场所租赁合同", "blob_id": blob.json()["id"]},
                    ],
                    "delivery": {"method": "window"},
                }  # fmt: skip
                check = client.post(real + "/cases", json=body, headers={"Authorization": f"Bearer {person}"})
                assert check.status_code == 201, check.text
            body_json = json.dumps(body, ensure_ascii=False)

            def post_script(name: str) -> Path:
                """A wrk script whose Idempotency-Keys no other run uses (a reused key is a retry: 200)."""
                script = work / f"{name}.lua"
                script.write_text(LUA_POST.format(token=person, body=body_json, run=name))
                return script

            pids = {"bare": bare_process.pid, "real": real_process.pid}

            def measure(name: str, target: str, server: str, script: Path, connections: int, seconds: int) -> None:
                """One wrk run, with the server's own CPU time per request (stable where req/s wanders)."""
                before = cpu_seconds(pids[server])
                run = run_wrk(target, script, connections, seconds)
                run["cpu_ms_per_request"] = (cpu_seconds(pids[server]) - before) * 1000 / max(run["requests"], 1)
                runs.setdefault(name, []).append(run)

            # Rounds interleave the ceiling with what is compared to it, so a slow moment of the
            # machine hits both; each figure is the median over the rounds.
            runs: dict[str, list[dict]] = {}
            single = max(2, args.duration // 2)
            for round_no in range(args.rounds):
                measure("bare", bare, "bare", post_script("bare"), args.connections, args.duration)
                measure("submit", real, "real", post_script(f"submit-{round_no}"), args.connections, args.duration)
                # Latency without queueing: one connection, so p50 is a request's own time, not its wait.
                measure("bare_c1", bare, "bare", post_script("bare"), 1, single)
                measure("submit_c1", real, "real", post_script(f"submit-c1-{round_no}"), 1, single)

            async def submitted() -> list[str]:
                connection = await asyncpg.connect(url(real_db).replace("+asyncpg", ""))
                try:
                    rows = await connection.fetch("SELECT case_no FROM cases WHERE state = 'submitted' ORDER BY id")
                finally:
                    await connection.close()
                return [r["case_no"] for r in rows]

            case_numbers = asyncio.run(submitted())
            # Every submission a new case (a reused Idempotency-Key would be a cheaper retry, 200).
            results["cases_created"] = len(case_numbers)
            results["submit_requests"] = sum(r["requests"] for name in ("submit", "submit_c1") for r in runs[name])
            # Each case can be accepted once: every round acts on its own slice of the submitted cases,
            # and is kept short enough not to run out of them.
            share = len(case_numbers) // args.rounds
            seconds = max(2, min(args.duration, int(share / max(median_of(runs["bare"], "rps"), 1))))
            for round_no in range(args.rounds):
                (work / f"cases-{round_no}.txt").write_text(
                    "\n".join(case_numbers[round_no * share : (round_no + 1) * share]) + "\n"
                )
                script = work / f"actions-{round_no}.lua"
                script.write_text(
                    LUA_ACTIONS.format(case_file=work / f"cases-{round_no}.txt", threads=2, token=officer)
                )
                measure("bare", bare, "bare", post_script("bare"), args.connections, seconds)
                measure("transition", real, "real", script, args.connections, seconds)
            for name in ROWS:
                results[name] = {
                    key: median_of(runs[name], key) for key in ("rps", "p50_ms", "cpu_ms_per_request", "non2xx")
                }
                results[name]["rounds"] = runs[name]
            print(json.dumps({k: {x: y for x, y in results[k].items() if x != "rounds"} for k in ROWS}), flush=True)
            if args.cases:
                results["bulk_load_seconds"] = asyncio.run(bulk_load(url(real_db).replace("+asyncpg", ""), args.cases))
                with httpx.Client(timeout=30) as client:
                    officer_headers = {"Authorization": f"Bearer {officer}"}
                    results["worklist"] = p95_of(
                        client, real + "/worklist", officer_headers, [{}, {"page": 2}, {"state": "accepted"}]
                    )
                    applicants = [f"1101051949{n:08d}" for n in range(1, 2000, 97)]
                    timings = []
                    for i in range(200):
                        token = mint(key_file, applicants[i % len(applicants)], kind="person", lvl=2)
                        started = time.perf_counter()
                        response = client.get(real + "/cases", headers={"Authorization": f"Bearer {token}"})
                        timings.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200, response.text
                    timings.sort()
                    results["my_cases"] = {"p50_ms": statistics.median(timings), "p95_ms": timings[189]}
        finally:
            procs.stop_all()
            nats.stop()
            asyncio.run(drop_database(admin_dsn, real_db))
            asyncio.run(drop_database(admin_dsn, bare_db))

    print(json.dumps(results, indent=2))
    print()
    print(f"Medians of {args.rounds} interleaved rounds; c={args.connections} unless the name ends in _c1.")
    print("| what | req/s | ratio to bare | p50 ms | server CPU ms/request | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ROWS:
        r = results[name]
        ceiling = results["bare_c1" if name.endswith("_c1") else "bare"]["rps"]
        print(f"| {name} | {r['rps']:,.0f} | {r['rps'] / ceiling:.2f} | {r['p50_ms']:.2f} "
              f"| {r['cpu_ms_per_request']:.2f} | {r['non2xx']:.0f} |")  # fmt: skip
    # The same comparison round by round: each run against the ceiling run just before it.
    bare_runs = results["bare"]["rounds"]
    for name, ceilings in (("submit", bare_runs[: args.rounds]), ("transition", bare_runs[args.rounds :]),
                           ("submit_c1", results["bare_c1"]["rounds"])):  # fmt: skip
        ratios = [run["rps"] / ceiling["rps"] for run, ceiling in zip(results[name]["rounds"], ceilings, strict=True)]
        print(
            f"{name}: per-round ratios {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}"
        )
    print(f"\ncases created {results['cases_created']:,} for {results['submit_requests']:,} submit requests "
          "(+1 check; wrk stops counting requests still in flight at its end)")  # fmt: skip
    if "worklist" in results:
        print(f"\nbulk load {args.cases:,} cases: {results['bulk_load_seconds']:.0f} s")
        print(f"| worklist | p50 {results['worklist']['p50_ms']:.1f} ms | p95 {results['worklist']['p95_ms']:.1f} ms |")
        print(f"| my cases | p50 {results['my_cases']['p50_ms']:.1f} ms | p95 {results['my_cases']['p95_ms']:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
