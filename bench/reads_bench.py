"""The hot reads of issue 15 against the plain-stack ceiling, before and after, in one run.

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.reads_bench [--duration 5] [--rounds 3] [--baseline-ref df407b6]

The reads: identity's ``GET /me``; caseflow's public progress (``GET /progress/{case_no}?code=``),
case detail (``GET /cases/{case_no}``, the applicant) and worklist (``GET /worklist``, an
acceptor); catalog's matter detail (``GET /matters/{code}``, 2,000 synthetic matters); licence's
wallet lookup (``GET /licences``, the holder) and online verification (``POST /licences/verify``
by identifier and number). Each service runs twice, one uvicorn worker each (the bench's usual
flags): this tree ("after") and ``--baseline-ref`` exported with ``git archive`` ("before"), one
version's four services at a time on the same databases, NATS off (no read touches it).

- PostgreSQL: wrk with ``--connections`` (16) beside the ceiling ``bench/asyncpg_ceiling.py``'s
  ``GET /cases/{id}`` (FastAPI + asyncpg, no ORM, one row by primary key as JSON), and the same
  app's ``/healthz`` (a bare FastAPI endpoint, no database: issue 15's first comparison). Rounds
  interleave the ceiling with every read of the version running; each figure is the median over
  the rounds; the ratio is the read's req/s over the ceiling's in the same phase. Target: ≥ 0.5.
- SQLite (``make run``'s default): wrk with one connection, p50. Target: ≤ 2 ms for every read.
- Both: the server's own CPU per request (/proc, steadier than req/s on a shared machine) and how
  busy the whole machine was (every process, other people's too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from bench.asyncpg_ceiling import start_ceiling
from bench.caseflow_bench import (
    PERSON,
    PYSPY,
    cpu_seconds,
    create_database,
    drop_database,
    machine_busy,
    matter_without_licence,
    mint,
    run_wrk,
    seed_matter,
)
from bench.gateway_bench import ROOT, Processes, start_trivial, uvicorn_args, wait_http
from kit.natsd import free_port

COMPANY = "91350100M000100Y43"
SERVICES = ("identity", "caseflow", "catalog", "licence")
READS = {  # name → (service, label)
    "me": ("identity", "identity GET /me"),
    "progress": ("caseflow", "caseflow public progress"),
    "case": ("caseflow", "caseflow case detail"),
    "worklist": ("caseflow", "caseflow worklist"),
    "matter": ("catalog", "catalog matter detail"),
    "wallet": ("licence", "licence wallet lookup"),
    "verify": ("licence", "licence online verification"),
}
LUA = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
{auth}
wrk.body = [[{body}]]
"""


def script(work: Path, name: str, *, token: str | None = None, method: str = "GET", body: str = "") -> Path:
    """A wrk script: the method, a bearer token, a JSON body."""
    path = work / f"{name}.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    path.write_text(LUA.format(method=method, auth=auth, body=body))
    return path


def export_tree(ref: str, into: Path) -> Path:
    """The code at ``ref`` (git archive), to run the "before" services from."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def start_from(
    procs: Processes, tree: Path, name: str, target: str, env: dict[str, str]
) -> tuple[str, subprocess.Popen]:
    """A service under uvicorn from ``tree`` (its own imports: the working directory and uvicorn's
    ``--app-dir``, which goes first on sys.path — left at its default, "before" ran this tree)."""
    port = free_port()
    log = open(procs.log_dir / f"{name}.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(uvicorn_args(target, port, app_dir=tree), cwd=tree, env={**os.environ, **env}, stdout=log,
                               stderr=log, start_new_session=True)  # fmt: skip
    procs.started.append(process)
    return f"http://127.0.0.1:{port}", process


def service_env(service: str, url: str, work: Path, jwks_url: str) -> dict[str, str]:
    prefix = service.upper() + "_"
    env = {"DATABASE_URL": url, "NATS_ENABLED": "false", "LOG_LEVEL": "WARNING", "JWKS_URL": jwks_url}
    if service == "identity":
        env.update(SANDBOX="true", SANDBOX_DELAY_MS="0", SMS_RESEND_INTERVAL_SECONDS="0",
                   ACCESS_TOKEN_TTL_SECONDS="7200", PASSWORD_TIME_COST="1", PASSWORD_MEMORY_KIB="64")  # fmt: skip
    if service == "caseflow":
        env.update(BLOB_DIR=str(work / "blobs"), SUPERVISION_ENABLED="false", SANDBOX="true")
    if service == "licence":
        from services.licence.domain.signing import Ed25519Signer

        env.update(EXPIRY_ENABLED="false", CONSUME_CASE_EVENTS="false", VERIFY_PER_MINUTE="1000000000",
                   SIGNING_KEY=json.dumps(Ed25519Signer.generate(kid="bench").private_jwk()))  # fmt: skip
    return {prefix + key: value for key, value in env.items()}


def prepare(service: str, url: str, env: dict[str, str]) -> None:
    """Migrate, and the reference data the reads need (the bench matter, 2,000 matters, licence types)."""
    subprocess.run([sys.executable, "-m", "kit.migrate", f"services.{service}"], cwd=ROOT, env={**os.environ, **env},
                   check=True, capture_output=True)  # fmt: skip
    if service == "caseflow":
        asyncio.run(seed_matter(url, matter_without_licence()))
    if service == "catalog":
        from services.catalog.synthetic import load

        asyncio.run(load(url, 2000))
    if service == "licence":
        from services.licence.cli import seed_demo

        asyncio.run(seed_demo(url))


def requests_for(bases: dict[str, str], key_file: Path, work: Path) -> dict[str, tuple[str, Path]]:
    """Data through the APIs (this tree's services), and each read as (path, wrk script)."""
    person = mint(key_file, PERSON, kind="person", lvl=2, name="张三")
    officer = mint(key_file, "officer:scjgj.acceptor", kind="officer", lvl=4, roles=["acceptor"], dept="SCJGJ")
    company = mint(key_file, COMPANY, kind="enterprise", lvl=3, name="德州某某餐饮有限公司")
    issuer = mint(key_file, "officer:scjgj.decider", kind="officer", lvl=4, roles=["decider"], dept="SCJGJ")
    with httpx.Client(timeout=60) as http:
        identity = bases["identity"]
        http.post(identity + "/sms-codes", json={"mobile": "13800138000", "purpose": "register"}).raise_for_status()
        text = http.get(identity + "/sandbox/sms", params={"mobile": "13800138000"}).json()[0]["text"]
        code = re.search(r"\d{6}", text).group(0)
        registered = http.post(identity + "/register", json={"id_number": PERSON, "name": "张三", "mobile": "13800138000",
                                                             "password": "secret123", "sms_code": code})  # fmt: skip
        assert registered.status_code == 201, registered.text
        login = http.post(identity + "/sessions", json={"method": "password", "login": PERSON, "password": "secret123"})
        own = login.json()["access_token"]
        caseflow = bases["caseflow"]
        blob = http.post(caseflow + "/materials", headers={"Authorization": f"Bearer {person}"},
                         files={"file": ("lease.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 2048, "image/jpeg")})  # fmt: skip
        body = {"matter_code": "SCJG-BENCH-001", "form": {"business_scope": "餐饮服务"},
                "materials": [{"name": "经营场所租赁合同", "blob_id": blob.json()["id"]}], "delivery": {"method": "window"}}  # fmt: skip
        cases = []
        for _ in range(30):  # a worklist page of 20 and more
            submitted = http.post(caseflow + "/cases", json=body, headers={"Authorization": f"Bearer {person}",
                                                                           "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
            assert submitted.status_code == 201, submitted.text
            cases.append(submitted.json())
        case, other = cases[0], cases[1]
        issued = http.post(bases["licence"] + "/licences", headers={"Authorization": f"Bearer {issuer}"}, json={
            "licence_type": "food_business_licence", "holder": COMPANY, "holder_name": "德州某某餐饮有限公司",
            "data": {"enterprise_name": "德州某某餐饮有限公司", "address": "德州市德城区新华路1号",
                     "business_items": "热食类食品制售"}})  # fmt: skip
        assert issued.status_code == 201, issued.text
    licence = issued.json()
    verify = json.dumps({"identifier": licence["identifier"], "number": licence["number"]})
    return {
        "me": ("/me", script(work, "me", token=own)),
        "progress": (f"/progress/{case['case_no']}?code={case['query_code']}", script(work, "progress")),
        "progress@before": (f"/progress/{other['case_no']}?code={other['query_code']}", script(work, "progress")),
        "case": (f"/cases/{case['case_no']}", script(work, "case", token=person)),
        "worklist": ("/worklist", script(work, "worklist", token=officer)),
        "matter": ("/matters/SYN-SCJGJ-0000008", script(work, "matter")),
        "wallet": ("/licences", script(work, "wallet", token=company)),
        "verify": ("/licences/verify", script(work, "verify", method="POST", body=verify)),
    }


def measure(target: str, pid: int, wrk_script: Path, connections: int, seconds: int) -> dict:
    """One wrk run, with the server's own CPU per request and how busy the machine was.
    ``BENCH_PYSPY=<dir>`` records the server's stacks (py-spy, collapsed) during the run."""
    spy = None
    if os.environ.get("BENCH_PYSPY"):
        out = Path(os.environ["BENCH_PYSPY"]) / f"{wrk_script.stem}-{pid}-{time.monotonic_ns()}.txt"
        spy = subprocess.Popen([PYSPY, "record", "-p", str(pid), "-d", str(seconds), "-f", "raw", "-o", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    before, (busy_before, total_before) = cpu_seconds(pid), machine_busy()
    run = run_wrk(target, wrk_script, connections, seconds)
    if spy is not None:
        spy.wait()
    busy_after, total_after = machine_busy()
    run["cpu_ms_per_request"] = (cpu_seconds(pid) - before) * 1000 / max(run["requests"], 1)
    run["machine_busy"] = (busy_after - busy_before) / max(total_after - total_before, 1e-9)
    return run


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop what was started, drop the databases
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-ref", default="df407b6", help="the code before (git ref; '' = after only)")
    parser.add_argument("--only", default="postgresql,sqlite")
    parser.add_argument("--json", type=Path, help="write the raw runs here")
    args = parser.parse_args()
    pg = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False)
    run_id = uuid.uuid4().hex[:8]
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "args": vars(args) | {"json": None}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs = Processes(work)
        trees = {"after": ROOT}
        if args.baseline_ref:
            trees["before"] = export_tree(args.baseline_ref, work / "before")
        created: list[str] = []
        try:
            _, jwks_url, _, _ = start_trivial(procs, work)
            key_file = work / "trivial-key.pem"
            for backend in [b.strip() for b in args.only.split(",") if b.strip()]:
                urls = {}
                for service in SERVICES:
                    if backend == "postgresql":
                        name = f"yiwang_bench_reads_{service}_{run_id}"
                        asyncio.run(create_database(admin, name))
                        created.append(name)
                        urls[service] = make_url(pg).set(drivername="postgresql+asyncpg", database=name)\
                            .render_as_string(hide_password=False)  # fmt: skip
                    else:
                        urls[service] = f"sqlite+aiosqlite:///{work / (service + '.db')}"
                    prepare(service, urls[service], service_env(service, urls[service], work, jwks_url))
                runs: dict[str, list[dict]] = {}
                ceiling = None
                if backend == "postgresql":
                    name = f"yiwang_bench_reads_ceiling_{run_id}"
                    asyncio.run(create_database(admin, name))
                    created.append(name)
                    ceiling_url = make_url(pg).set(drivername="postgresql+asyncpg", database=name)
                    ceiling = start_ceiling(procs, ceiling_url.render_as_string(hide_password=False))
                connections = args.connections if backend == "postgresql" else 1
                reads: dict[str, tuple[str, Path]] = {}
                # One version's services at a time (16 connections' pools of eight services at once
                # were more than PostgreSQL's 100 connections), each phase beside its own ceiling runs.
                for version, tree in trees.items():
                    servers = {
                        service: start_from(procs, tree, f"{backend}-{service}-{version}",
                                            f"services.{service}.main:create_app",
                                            service_env(service, urls[service], work, jwks_url))
                        for service in SERVICES
                    }  # fmt: skip
                    for base, _ in servers.values():
                        wait_http(base + "/healthz")
                    reads = reads or requests_for({s: servers[s][0] for s in SERVICES}, key_file, work)
                    for _ in range(args.rounds):
                        if ceiling is not None:
                            base, process = ceiling
                            runs.setdefault(f"ceiling:{version}", []).append(
                                measure(base + "/cases/1", process.pid, script(work, "ceiling"), connections,
                                        args.duration)
                            )  # fmt: skip
                            runs.setdefault(f"bare:{version}", []).append(
                                measure(base + "/healthz", process.pid, script(work, "bare"), connections,
                                        args.duration)
                            )  # fmt: skip
                        for read, (service, _) in READS.items():
                            # Progress: a case of each version's own (the old one takes a guess slot
                            # for every try, so its 429s under 16 connections would reach the other).
                            path, wrk_script = reads.get(f"{read}@{version}", reads[read])
                            base, process = servers[service]
                            runs.setdefault(f"{read}:{version}", []).append(
                                measure(base + path, process.pid, wrk_script, connections, args.duration)
                            )
                    for _, process in servers.values():
                        process.terminate()
                        process.wait(timeout=30)
                results[backend] = {key: summary(values) for key, values in runs.items()}
                results[backend + "_rounds"] = runs
                print(json.dumps({backend: results[backend]}), flush=True)
        finally:
            procs.stop_all()
            for name in created:
                asyncio.run(drop_database(admin, name))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    report(results)
    return 0


def summary(values: list[dict]) -> dict:
    """Medians over the rounds, and the worst non-2xx count."""
    return {
        "rps": statistics.median(v["rps"] for v in values),
        "p50_ms": statistics.median(v["p50_ms"] for v in values),
        "cpu_ms_per_request": statistics.median(v["cpu_ms_per_request"] for v in values),
        "machine_busy": statistics.median(v["machine_busy"] for v in values),
        "non2xx": max(v["non2xx"] for v in values),
    }


def report(results: dict) -> None:
    """Markdown tables for docs/benchmarks.md."""
    pg, lite = results.get("postgresql"), results.get("sqlite")
    if pg:
        ceiling, bare = pg["ceiling:after"], pg["bare:after"]
        old_ceiling = pg.get("ceiling:before", ceiling)
        print(f"\nPostgreSQL, c={results['args']['connections']}: ceiling {ceiling['rps']:.0f} req/s, "
              f"CPU {ceiling['cpu_ms_per_request']:.2f} ms/req, machine busy {ceiling['machine_busy']:.0%}; "
              f"bare FastAPI {bare['rps']:.0f} req/s, CPU {bare['cpu_ms_per_request']:.2f} ms/req; "
              f"ceiling in the before phase {old_ceiling['rps']:.0f} req/s\n")  # fmt: skip
        print("| read | before req/s | ratio | CPU ms/req | after req/s | ratio | CPU ms/req | non-2xx | ≥ 0.5 |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for read, (_, label) in READS.items():
            after, before = pg[f"{read}:after"], pg.get(f"{read}:before")
            ratio = after["rps"] / ceiling["rps"]
            old = (f"{before['rps']:.0f} | {before['rps'] / old_ceiling['rps']:.2f} | {before['cpu_ms_per_request']:.2f}"
                   if before else "— | — | —")  # fmt: skip
            print(f"| {label} | {old} | {after['rps']:.0f} | **{ratio:.2f}** | {after['cpu_ms_per_request']:.2f} | "
                  f"{after['non2xx']} | {'met' if ratio >= 0.5 else '**missed**'} |")  # fmt: skip
    if lite:
        print("\nSQLite, c=1\n")
        print("| read | before p50 ms | CPU ms/req | after p50 ms | CPU ms/req | req/s | ≤ 2 ms |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for read, (_, label) in READS.items():
            after, before = lite[f"{read}:after"], lite.get(f"{read}:before")
            old = f"{before['p50_ms']:.2f} | {before['cpu_ms_per_request']:.2f}" if before else "— | —"
            print(f"| {label} | {old} | **{after['p50_ms']:.2f}** | {after['cpu_ms_per_request']:.2f} | "
                  f"{after['rps']:.0f} | {'met' if after['p50_ms'] <= 2 else '**missed**'} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
