"""Caseflow on PostgreSQL, load generator (wrk) beside the service on this 2-core machine.

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.caseflow_bench [--duration 10] [--rounds 3] [--cases 1000000]

Measures, in one run, against two ceilings (issue 15):
- ``asyncpg``: FastAPI + asyncpg, no ORM, inserting one case row and one outbox row in one
  transaction (bench/asyncpg_ceiling.py) — what this machine's plain stack can do;
- ``bare``: the same write through the kit's SQLAlchemy session (bench/caseflow_bare.py) — what
  the kit's plumbing leaves before any caseflow rule runs;
- real submissions (validation, idempotency key, case numbering, clocks, the event) — each
  request with its own Idempotency-Key — wrk with 16 connections; ratio to both ceilings, p50;
- officer transitions (accept with If-Match) on the cases just submitted; ratio to both ceilings;
- worklist and my-cases p95 after bulk-loading ``--cases`` cases (SQL, not through the API).
The bench matter has no e-licence material (that would need a running licence service).
Each run also records the server's own CPU per request (from /proc: steadier than req/s on a
shared machine) and how busy the whole machine was while wrk ran. ``BENCH_PYSPY=<dir>`` records
py-spy's collapsed stacks of caseflow during each of its runs.
Targets (issue 15): submissions and transitions ≥ 0.5 of the asyncpg ceiling; (issue 5) p50 ≤
15 ms; worklist and my-cases p95 ≤ 20 ms with 1 million cases.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import re
import shutil
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

from bench.asyncpg_ceiling import start_ceiling
from bench.gateway_bench import _UNITS, Processes, start_trivial, uvicorn_args, wait_http
from kit.natsd import NatsServer, free_port

PERSON = "11010519491231002X"
ROWS = ("asyncpg", "bare", "submit", "transition", "asyncpg_c1", "bare_c1", "submit_c1")
MATTER = "SCJG-BENCH-001"
PYSPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))  # pip-installed beside Python


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


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core (Linux /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def matter_without_licence() -> dict:
    """The caseflow bench's matter without the e-licence material (that would need a licence service)."""
    matter = copy.deepcopy(matter_definition())
    matter["materials"] = [m for m in matter["materials"] if not m.get("licence_type")]
    return matter


def submission_body(base: str, person: str) -> dict:
    """A valid submission for the bench matter, with a lease uploaded to the replica at ``base``."""
    with httpx.Client(timeout=30) as client:
        blob = client.post(
            base + "/materials", headers={"Authorization": f"Bearer {person}"},
            files={"file": ("lease.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 2048, "image/jpeg")},
        )  # fmt: skip
        blob.raise_for_status()
        body = {
            "matter_code": MATTER, "form": {"business_scope": "餐饮服务"},
            "materials": [{"name": "经营场所租赁合同", "blob_id": blob.json()["id"]}],
            "delivery": {"method": "window"},
        }  # fmt: skip
        check = client.post(
            base + "/cases", json=body,
            headers={"Authorization": f"Bearer {person}", "Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        assert check.status_code == 201, check.text
    return body


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
    real_db, bare_db, ceiling_db = (f"yiwang_bench_{what}_{run_id}" for what in ("caseflow", "bare", "asyncpg"))

    def url(name: str) -> str:
        return make_url(pg).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs = Processes(work)
        nats = NatsServer(work / "nats").start()
        for database in (real_db, bare_db, ceiling_db):
            asyncio.run(create_database(admin_dsn, database))
        try:
            env = {
                "CASEFLOW_DATABASE_URL": url(real_db), "CASEFLOW_NATS_URL": nats.url, "CASEFLOW_LOG_LEVEL": "WARNING",
                "CASEFLOW_BLOB_DIR": str(work / "blobs"), "CASEFLOW_SUPERVISION_ENABLED": "false",
            }  # fmt: skip
            subprocess.run([sys.executable, "-m", "kit.migrate", "services.caseflow"], env={**os.environ, **env},
                           check=True, capture_output=True)  # fmt: skip
            asyncio.run(seed_matter(url(real_db), matter_without_licence()))
            _, jwks_url, _, _ = start_trivial(procs, work)
            key_file = work / "trivial-key.pem"
            env["CASEFLOW_JWKS_URL"] = jwks_url
            real_port, bare_port = free_port(), free_port()
            real_process = procs.start("caseflow", uvicorn_args("services.caseflow.main:create_app", real_port), env)
            bare_process = procs.start(
                "bare", uvicorn_args("bench.caseflow_bare:create_app", bare_port), {"BARE_DATABASE_URL": url(bare_db)}
            )
            real, bare = f"http://127.0.0.1:{real_port}", f"http://127.0.0.1:{bare_port}"
            ceiling, ceiling_process = start_ceiling(procs, url(ceiling_db))
            wait_http(real + "/healthz")
            wait_http(bare + "/openapi.json")

            person = mint(key_file, PERSON, kind="person", lvl=2, name="张三")
            officer = mint(key_file, "officer:scjgj.officer", kind="officer", lvl=4, roles=["acceptor"], dept="SCJGJ")
            body_json = json.dumps(submission_body(real, person), ensure_ascii=False)

            def post_script(name: str) -> Path:
                """A wrk script whose Idempotency-Keys no other run uses (a reused key is a retry: 200)."""
                script = work / f"{name}.lua"
                script.write_text(LUA_POST.format(token=person, body=body_json, run=name))
                return script

            servers = {"asyncpg": (ceiling, ceiling_process.pid), "bare": (bare, bare_process.pid),
                       "real": (real, real_process.pid)}  # fmt: skip
            runs: dict[str, list[dict]] = {}

            def measure(name: str, server: str, script: Path, connections: int, seconds: int) -> None:
                """One wrk run, with the server's own CPU time per request (stable where req/s wanders)
                and the share of the whole machine's CPU that was busy meanwhile."""
                target, pid = servers[server]
                before, (busy_before, total_before) = cpu_seconds(pid), machine_busy()
                spy = None
                if os.environ.get("BENCH_PYSPY") and server == "real":
                    spy = subprocess.Popen([PYSPY, "record", "-p", str(pid), "-d", str(seconds), "-f", "raw",
                                            "-o", f"{os.environ['BENCH_PYSPY']}/{name}-{len(runs.get(name, []))}.txt"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                run = run_wrk(target, script, connections, seconds)
                if spy is not None:
                    spy.wait()
                busy_after, total_after = machine_busy()
                run["cpu_ms_per_request"] = (cpu_seconds(pid) - before) * 1000 / max(run["requests"], 1)
                run["machine_busy"] = (busy_after - busy_before) / max(total_after - total_before, 1e-9)
                runs.setdefault(name, []).append(run)

            # Rounds interleave the ceilings with what is compared to them, so a slow moment of the
            # machine hits all; each figure is the median over the rounds.
            single = max(2, args.duration // 2)
            for round_no in range(args.rounds):
                measure("asyncpg", "asyncpg", post_script("asyncpg"), args.connections, args.duration)
                measure("bare", "bare", post_script("bare"), args.connections, args.duration)
                measure("submit", "real", post_script(f"submit-{round_no}"), args.connections, args.duration)
                # Latency without queueing: one connection, so p50 is a request's own time, not its wait.
                measure("asyncpg_c1", "asyncpg", post_script("asyncpg"), 1, single)
                measure("bare_c1", "bare", post_script("bare"), 1, single)
                measure("submit_c1", "real", post_script(f"submit-c1-{round_no}"), 1, single)

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
            # and is kept short enough not to run out of them even at twice the submissions' rate.
            share = len(case_numbers) // args.rounds
            seconds = max(2, min(args.duration, int(share / max(2 * median_of(runs["submit"], "rps"), 1))))
            for round_no in range(args.rounds):
                (work / f"cases-{round_no}.txt").write_text(
                    "\n".join(case_numbers[round_no * share : (round_no + 1) * share]) + "\n"
                )
                script = work / f"actions-{round_no}.lua"
                script.write_text(
                    LUA_ACTIONS.format(case_file=work / f"cases-{round_no}.txt", threads=2, token=officer)
                )
                measure("asyncpg", "asyncpg", post_script("asyncpg"), args.connections, seconds)
                measure("bare", "bare", post_script("bare"), args.connections, seconds)
                measure("transition", "real", script, args.connections, seconds)
            keys = ("rps", "p50_ms", "cpu_ms_per_request", "non2xx", "machine_busy")
            for name in ROWS:
                results[name] = {key: median_of(runs[name], key) for key in keys}
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
            for database in (real_db, bare_db, ceiling_db):
                asyncio.run(drop_database(admin_dsn, database))

    report(results, args)
    return 0


def paired_ratios(results: dict, name: str, ceiling: str, rounds: int) -> list[float]:
    """Each run of ``name`` against the ceiling's run just before it (the ceilings run before the
    submissions and again before the transitions: a transition is paired with the second set)."""
    runs = results[name]["rounds"]
    ceilings = results[ceiling + ("_c1" if name.endswith("_c1") else "")]["rounds"]
    ceilings = ceilings[rounds:] if name == "transition" else ceilings[: len(runs)]
    return [run["rps"] / top["rps"] for run, top in zip(runs, ceilings, strict=True)]


def report(results: dict, args: argparse.Namespace) -> None:
    """The medians as a table, with each row's ratio to both ceilings (the median of its per-round
    ratios, each run against the ceiling run just before it), and the per-round ratios."""
    print(json.dumps(results, indent=2))
    print()
    print(f"Medians of {args.rounds} interleaved rounds; c={args.connections} unless the name ends in _c1.")
    print("| what | req/s | ratio to asyncpg | ratio to bare | p50 ms | server CPU ms/request | machine busy "
          "| non-2xx |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ROWS:
        r = results[name]
        ratios = " | ".join(
            f"{statistics.median(paired_ratios(results, name, ceiling, args.rounds)):.2f}"
            for ceiling in ("asyncpg", "bare")
        )
        print(f"| {name} | {r['rps']:,.0f} | {ratios} | {r['p50_ms']:.2f} | {r['cpu_ms_per_request']:.2f} "
              f"| {r['machine_busy']:.0%} | {r['non2xx']:.0f} |")  # fmt: skip
    for ceiling in ("asyncpg", "bare"):
        for name in ("submit", "transition", "submit_c1"):
            ratios = paired_ratios(results, name, ceiling, args.rounds)
            print(f"{name} / {ceiling}: per-round ratios {', '.join(f'{r:.2f}' for r in ratios)}; "
                  f"median {statistics.median(ratios):.2f}")  # fmt: skip
    print(f"\ncases created {results['cases_created']:,} for {results['submit_requests']:,} submit requests "
          "(+1 check; wrk stops counting requests still in flight at its end)")  # fmt: skip
    if "worklist" in results:
        print(f"\nbulk load {args.cases:,} cases: {results['bulk_load_seconds']:.0f} s")
        print(f"| worklist | p50 {results['worklist']['p50_ms']:.1f} ms | p95 {results['worklist']['p95_ms']:.1f} ms |")
        print(f"| my cases | p50 {results['my_cases']['p50_ms']:.1f} ms | p95 {results['my_cases']['p95_ms']:.1f} ms |")


if __name__ == "__main__":
    sys.exit(main())
