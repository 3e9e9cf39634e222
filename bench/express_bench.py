"""Express on PostgreSQL (ADR 0017), load generator beside the service on this 2-core machine.

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.express_bench [--duration 8] [--rounds 3] [--requests 1000 --rate 50]

Parts (both by default; ``--only callbacks`` or ``--only delivery``), each in its own database,
created and dropped by the run:
- ``callbacks``: ``POST /callbacks/ems`` with ``X-Partner-Id: ems`` (as the gateway forwards it
  after checking the signature) against express (one uvicorn worker, its outbox relay publishing
  to its own nats-server), wrk with 16 connections. ``--shipments`` shipments with S10 waybills
  are loaded first; each round sends to its own slice of them, every request a NEW tracking event
  of its parcel that moves the status (10 收寄 → 20 运输中 → 30 派送中 → 50 未妥投 → 30 → 50 …, each
  later than the one before), so every request stores an event and publishes a status change.
  Side by side, rounds interleaved: the bare insert + outbox ceiling (bench/caseflow_bare.py) with
  the same JSON body and, with ``--ceiling``, the plain FastAPI + asyncpg write
  (bench/asyncpg_ceiling.py, ``POST /cases``). Target: callbacks ≥ 0.5 of the ceiling.
  ``BENCH_PYSPY=<dir>`` records each server's stacks (py-spy, collapsed) during its runs.
- ``delivery``: express (uvicorn) consuming ``caseflow.case.delivery_requested`` from a real
  nats-server and booking with the EMS sandbox (services/express/sandbox_ems.py, a process of its
  own); CaseDeliveryRequested envelopes published onto the CASEFLOW stream at ``--rate``/s (as
  caseflow's relay does), each timed to the shipments row (``created_at``, stamped in the
  consumer's transaction), to the waybill stored (``updated_at``, the booking's transaction), and
  to ``express.shipment.created`` seen on the bus. Target: created p95 ≤ 100 ms at 50/s.
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
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench.asyncpg_ceiling import start_ceiling
from bench.caseflow_bench import LUA_POST, cpu_seconds, create_database, drop_database
from bench.gateway_bench import Processes, uvicorn_args, wait_http
from bench.reads_bench import measure
from kit.natsd import NatsServer, free_port
from services.express.domain import s10
from services.express.domain.tracking import EMS_CODES

PARTS = ("callbacks", "delivery")
ORDER_SECRET = "bench-express-order-secret"
START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)

# Every request a new event of its parcel, later than the previous one and moving the status: a
# round's parcels get their first event, then their second, … (index = counter × threads + thread
# number, so wrk's two threads never send the same event). After 30 派送中 the parcel alternates
# 50 未妥投 / 30 派送中 (same rank: the later one wins), so any number of steps keeps advancing.
LUA_CALLBACKS = """
local waybills = {{}}
for line in io.lines("{waybill_file}") do waybills[#waybills + 1] = line end
local texts = {{["10"] = "{t10}", ["20"] = "{t20}", ["30"] = "{t30}", ["50"] = "{t50}"}}
local headers = {{["Content-Type"] = "application/json", ["X-Partner-Id"] = "ems"}}
counter = 0
next_thread = 0
thread_no = 0
setup = function(thread) thread:set("thread_no", next_thread); next_thread = next_thread + 1 end
request = function()
  local index = counter * {threads} + thread_no
  counter = counter + 1
  local n = #waybills
  local parcel = index % n + 1
  local step = math.floor(index / n)
  local code
  if step == 0 then code = "10" elseif step == 1 then code = "20" elseif step == 2 then code = "30"
  elseif step % 2 == 1 then code = "50" else code = "30" end
  local minutes = step * 7
  local at = string.format("2026-12-%02dT%02d:%02d:00.000+08:00", 2 + math.floor(minutes / 1440),
                           math.floor(minutes / 60) % 24, minutes % 60)
  local body = string.format(
    '{{"waybill":"%s","code":"%s","text":"%s","at":"%s","event_id":"{run}-%d-%d"}}',
    waybills[parcel], code, texts[code], at, parcel, step)
  return wrk.format("POST", "/callbacks/ems", headers, body)
end
"""


def percentiles(timings_ms: list[float]) -> dict[str, float]:
    ordered = sorted(timings_ms)
    if not ordered:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan")}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"n": len(ordered), "p50": statistics.median(ordered), "p95": at(0.95), "p99": at(0.99)}


def db_url(pg: str, name: str, driver: str = "postgresql+asyncpg") -> str:
    return make_url(pg).set(drivername=driver, database=name).render_as_string(hide_password=False)


def admin_dsn(pg: str) -> str:
    return make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False)


def waybill(n: int) -> str:
    """A distinct valid EMS waybill for n < 10**8 (service indicator EA)."""
    return s10.build("EA", f"{n:08d}")


def migrate(url: str) -> None:
    subprocess.run([sys.executable, "-m", "kit.migrate", "services.express"],
                   env={**os.environ, "EXPRESS_DATABASE_URL": url}, check=True, capture_output=True)  # fmt: skip


async def load_shipments(dsn: str, count: int) -> float:
    """``count`` booked deliveries (status created, waybill set), COPYed; seconds taken."""
    started = time.perf_counter()
    connection = await asyncpg.connect(dsn)
    try:
        columns = ("id", "kind", "case_no", "department", "applicant", "pickup_key", "sender_name", "recipient_name",
                   "recipient_phone", "recipient_division_code", "recipient_address", "items", "carrier", "waybill",
                   "status", "status_at", "created_at", "updated_at")  # fmt: skip
        records = (
            (f"shp_bench{n:015d}", "deliver", f"CF2026120{n:07d}", ("SCJGJ", "BDCDJ", "SWJ")[n % 3],
             "11010519491231002X", "", "SCJGJ", "张三", "13800138000", "371402", f"山东省德州市德城区新华路{n}号",
             "[]", "ems", waybill(n), "created", START, START, START)
            for n in range(count)
        )  # fmt: skip
        await connection.copy_records_to_table("shipments", records=records, columns=columns)
        await connection.execute("ANALYZE shipments")
    finally:
        await connection.close()
    return time.perf_counter() - started


async def stored_counts(dsn: str) -> dict[str, int]:
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM shipment_events) AS events,"
            " (SELECT count(*) FROM shipment_events WHERE applied) AS applied,"
            " (SELECT count(*) FROM outbox) AS outbox,"
            " (SELECT count(*) FROM outbox WHERE published_at IS NOT NULL) AS published"
        )
    finally:
        await connection.close()
    return dict(row)


# ---- 1. callbacks per second beside the bare insert + outbox ceiling -----------------------------
def bench_callbacks(pg: str, *, duration: int, rounds: int, connections: int, shipments: int, slice_: int,
                    work: Path, ceiling: bool = False) -> dict[str, Any]:  # fmt: skip
    run_id = uuid.uuid4().hex[:8]
    real_db, bare_db = f"yiwang_bench_express_{run_id}", f"yiwang_bench_bare_{run_id}"
    ceiling_db = f"yiwang_bench_ceiling_{run_id}"
    databases = [real_db, bare_db, *([ceiling_db] if ceiling else [])]
    procs = Processes(work)
    nats = NatsServer(work / "nats-callbacks").start()
    for database in databases:
        asyncio.run(create_database(admin_dsn(pg), database))
    result: dict[str, Any] = {}
    try:
        migrate(db_url(pg, real_db))
        result["load_seconds"] = asyncio.run(load_shipments(db_url(pg, real_db, "postgresql"), shipments))
        env = {
            "EXPRESS_DATABASE_URL": db_url(pg, real_db), "EXPRESS_NATS_URL": nats.url, "EXPRESS_LOG_LEVEL": "WARNING",
            "EXPRESS_CONSUME_CASE_EVENTS": "false", "EXPRESS_CARRIER_ORDERS_ENABLED": "false",
            "EXPRESS_CARRIER_SECRET": ORDER_SECRET,
        }  # fmt: skip
        real_port, bare_port = free_port(), free_port()
        real_process = procs.start("express", uvicorn_args("services.express.main:create_app", real_port), env)
        bare_process = procs.start(
            "bare",
            uvicorn_args("bench.caseflow_bare:create_app", bare_port),
            {"BARE_DATABASE_URL": db_url(pg, bare_db)},
        )
        real, bare = f"http://127.0.0.1:{real_port}", f"http://127.0.0.1:{bare_port}"
        wait_http(real + "/healthz")
        wait_http(bare + "/openapi.json")
        sample = {"waybill": waybill(shipments - 1), "code": "10", "text": EMS_CODES["10"].text,
                  "at": "2026-12-02T08:00:00.000+08:00", "event_id": f"check-{run_id}"}  # fmt: skip
        with httpx.Client(timeout=30) as client:
            refused = client.post(real + "/callbacks/ems", json=sample)
            assert refused.status_code == 401, refused.text  # no partner id: refused before the body
            check = client.post(real + "/callbacks/ems", json=sample, headers={"X-Partner-Id": "ems"})
            assert check.status_code == 200 and check.json()["applied"], check.text
        body_json = json.dumps(sample, ensure_ascii=False)
        servers = {"bare": (bare, bare_process.pid), "callbacks": (real, real_process.pid)}
        if ceiling:
            base, ceiling_process = start_ceiling(procs, db_url(pg, ceiling_db))
            servers["asyncpg"] = (base, ceiling_process.pid)
        runs: dict[str, list[dict]] = {}

        def measured(name: str, script: Path) -> None:
            target, pid = servers[name]
            runs.setdefault(name, []).append(measure(target, pid, script, connections, duration))

        texts = {f"t{code}": EMS_CODES[code].text for code in ("10", "20", "30", "50")}
        for round_no in range(rounds):
            bare_script = work / f"bare-{round_no}.lua"
            bare_script.write_text(LUA_POST.format(token="unused", body=body_json, run=f"bare-{round_no}"))
            parcels = work / f"waybills-{round_no}.txt"
            parcels.write_text("\n".join(waybill(n) for n in range(round_no * slice_, (round_no + 1) * slice_)) + "\n")
            script = work / f"callbacks-{round_no}.lua"
            script.write_text(LUA_CALLBACKS.format(waybill_file=parcels, threads=2 if connections > 1 else 1,
                                                   run=f"{run_id}-{round_no}", **texts))  # fmt: skip
            if ceiling:
                measured("asyncpg", bare_script)  # the same POST /cases with the same body
            measured("bare", bare_script)
            measured("callbacks", script)
        time.sleep(1.5)  # the relay publishes what the last round committed
        result["stored"] = asyncio.run(stored_counts(db_url(pg, real_db, "postgresql")))
    finally:
        procs.stop_all()
        nats.stop()
        for database in databases:
            asyncio.run(drop_database(admin_dsn(pg), database))
    for name in runs:
        result[name] = {key: statistics.median(r[key] for r in runs[name])
                        for key in ("rps", "p50_ms", "cpu_ms_per_request", "non2xx", "machine_busy")}  # fmt: skip
        result[name]["rounds"] = runs[name]
    ratios = [c["rps"] / b["rps"] for c, b in zip(runs["callbacks"], runs["bare"], strict=True)]
    result["ratio"] = result["callbacks"]["rps"] / result["bare"]["rps"]
    result["round_ratios"] = ratios
    result["callback_requests"] = sum(r["requests"] for r in runs["callbacks"])
    result["shipments"], result["slice"] = shipments, slice_
    return result


# ---- 2. delivery_requested → shipment created ------------------------------------------------------
async def bench_delivery(pg: str, *, requests: int, rate: float, work: Path) -> dict[str, Any]:
    import nats as nats_client

    from contracts.events.caseflow import CaseDeliveryRequested
    from kit.bus import Bus
    from kit.events import envelope

    run_id = uuid.uuid4().hex[:8]
    database = f"yiwang_bench_express_d_{run_id}"
    await create_database(admin_dsn(pg), database)
    procs = Processes(work)
    nats_server = NatsServer(work / "nats-delivery").start()
    # caseflow's side: the CASEFLOW stream exists before express binds its durables to it.
    caseflow = Bus(nats_server.url, name="bench-caseflow", streams={"CASEFLOW": ["caseflow.>"]})
    listener = await nats_client.connect(nats_server.url)
    seen: dict[str, float] = {}

    async def on_created(message) -> None:
        seen[json.loads(message.data)["data"]["case_no"]] = time.perf_counter()

    published: dict[str, float] = {}
    published_wall: dict[str, float] = {}
    warm = 20
    try:
        await asyncio.to_thread(migrate, db_url(pg, database))
        await caseflow.start()
        await caseflow.wait_connected(10)
        js = await caseflow.jetstream()
        await listener.subscribe("express.shipment.created", cb=on_created)
        sandbox_port, port = free_port(), free_port()
        procs.start("ems-sandbox", uvicorn_args("services.express.sandbox_ems:create_app", sandbox_port), {
            "EMS_SANDBOX_PORT": str(sandbox_port), "EMS_SANDBOX_ORDER_SECRET": ORDER_SECRET,
            "EMS_SANDBOX_REFUSAL_RATE": "0",
            # The parcels' journeys (tracking pushes) start after the measurement: only orders here.
            "EMS_SANDBOX_STEP_SECONDS": "3600", "EMS_SANDBOX_CALLBACK_URL": "http://127.0.0.1:9/none",
        })  # fmt: skip
        express = procs.start("express-delivery", uvicorn_args("services.express.main:create_app", port), {
            "EXPRESS_DATABASE_URL": db_url(pg, database), "EXPRESS_NATS_URL": nats_server.url,
            "EXPRESS_LOG_LEVEL": "WARNING", "EXPRESS_CONSUME_CASE_EVENTS": "true",
            "EXPRESS_CARRIER_ORDERS_ENABLED": "true", "EXPRESS_CARRIER_URL": f"http://127.0.0.1:{sandbox_port}",
            "EXPRESS_CARRIER_SECRET": ORDER_SECRET,
        })  # fmt: skip
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{sandbox_port}/healthz")
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz")
        await asyncio.sleep(1.0)  # the durable consumers are bound after start-up

        def request(n: int):
            data = CaseDeliveryRequested(
                case_no=f"CFB{run_id.upper()}{n:06d}", matter_code="SCJG-BENCH-001", matter_version=1,
                department="SCJGJ", state="approved", at=datetime.now(UTC), actor="officer:scjgj.decider",
                applicant="11010519491231002X", recipient="张三", phone="13800138000",
                address=f"山东省德州市德城区新华路{n}号", division_code="371402", due=date(2026, 12, 15),
            )  # fmt: skip
            return envelope(data, subject=data.case_no)

        interval = 1.0 / rate
        cpu_before = cpu_seconds(express.pid)
        next_at = time.perf_counter()
        for n in range(requests + warm):
            event = request(n)
            payload = event.model_dump_json().encode()
            now = time.perf_counter()
            if now < next_at:
                await asyncio.sleep(next_at - now)
            next_at += interval
            case_no = event.data["case_no"]
            published[case_no] = time.perf_counter()
            published_wall[case_no] = time.time()
            await js.publish("caseflow.case.delivery_requested", payload, headers={"Nats-Msg-Id": event.id})
        deadline = time.perf_counter() + 60
        while len(seen) < requests + warm and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        # express's own CPU per request (consume, order, book, publish): how near one core it runs
        cpu_ms = (cpu_seconds(express.pid) - cpu_before) * 1000 / (requests + warm)
        connection = await asyncpg.connect(db_url(pg, database, "postgresql"))
        try:
            rows = await connection.fetch(
                "SELECT case_no, created_at, updated_at, waybill FROM shipments WHERE case_no LIKE $1",
                f"CFB{run_id.upper()}%",
            )
        finally:
            await connection.close()
    finally:
        await listener.close()
        await caseflow.close()
        procs.stop_all()
        nats_server.stop()
        await drop_database(admin_dsn(pg), database)
    measured = sorted(published)[warm:]
    on_bus = [(seen[c] - published[c]) * 1000 for c in measured if c in seen]
    # created_at is stamped in the consumer's transaction, updated_at in the booking's (same clock).
    by_case = {r["case_no"]: r for r in rows}
    row = [(by_case[c]["created_at"].timestamp() - published_wall[c]) * 1000 for c in measured if c in by_case]
    booked = [(by_case[c]["updated_at"].timestamp() - published_wall[c]) * 1000
              for c in measured if c in by_case and by_case[c]["waybill"]]  # fmt: skip
    return {"requests": len(measured), "rate_per_s": rate, "created_events_seen": len(on_bus), "rows": len(rows),
            "created_event_ms": percentiles(on_bus), "row_written_ms": percentiles(row),
            "waybill_stored_ms": percentiles(booked), "express_cpu_ms_per_request": cpu_ms}  # fmt: skip


# ---- main ----------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {PARTS}")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--shipments", type=int, default=100_000, help="shipments with waybills loaded first")
    parser.add_argument("--slice", type=int, default=1_000, help="parcels a round's callbacks go to")
    parser.add_argument("--requests", type=int, default=1_000, help="delivery requests published (after 20 warm-up)")
    parser.add_argument("--rate", type=float, default=50.0, help="delivery requests published per second")
    parser.add_argument("--ceiling", action="store_true", help="callbacks: also the FastAPI + asyncpg write ceiling")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    pg = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    assert args.slice * args.rounds <= args.shipments, "--slice × --rounds must not exceed --shipments"
    results: dict[str, Any] = {"date": date.today().isoformat(), "argv": sys.argv[1:]}
    with tempfile.TemporaryDirectory() as tmp:
        if "callbacks" in parts:
            results["callbacks"] = bench_callbacks(
                pg, duration=args.duration, rounds=args.rounds, connections=args.connections,
                shipments=args.shipments, slice_=args.slice, work=Path(tmp), ceiling=args.ceiling,
            )  # fmt: skip
            print(json.dumps(results["callbacks"], default=str), flush=True)
        if "delivery" in parts:
            results["delivery"] = asyncio.run(
                bench_delivery(pg, requests=args.requests, rate=args.rate, work=Path(tmp))
            )
            print(json.dumps(results["delivery"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    report(results)
    return 0


def report(results: dict[str, Any]) -> None:
    print()
    if "callbacks" in results:
        r = results["callbacks"]
        print(
            f"Callbacks: medians of {len(r['round_ratios'])} interleaved rounds, c=16; {r['shipments']:,} shipments,"
            f" {r['slice']:,} parcels per round; per-round ratios {', '.join(f'{x:.2f}' for x in r['round_ratios'])}"
        )
        print("| what | req/s | ratio to bare | p50 ms | server CPU ms/request | non-2xx | machine busy |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name in ("asyncpg", "bare", "callbacks"):
            if name not in r:
                continue
            x = r[name]
            print(f"| {name} | {x['rps']:,.0f} | {x['rps'] / r['bare']['rps']:.2f} | {x['p50_ms']:.1f} "
                  f"| {x['cpu_ms_per_request']:.2f} | {x['non2xx']:.0f} | {x['machine_busy']:.0%} |")  # fmt: skip
        print(f"stored: {r['stored']} for {r['callback_requests']:,} counted callback requests (+1 check)")
        print()
    print("| target | measured | met |")
    print("|---|---|---|")
    if "callbacks" in results:
        r = results["callbacks"]
        met = "met" if r["ratio"] >= 0.5 else "**missed**"
        print(f"| callbacks/s ≥ 0.5 of the bare insert + outbox ceiling | {r['callbacks']['rps']:,.0f} vs "
              f"{r['bare']['rps']:,.0f} req/s: **{r['ratio']:.2f}** | {met} |")  # fmt: skip
        if "asyncpg" in r:
            ratio = r["callbacks"]["rps"] / r["asyncpg"]["rps"]
            met = "met" if ratio >= 0.5 else "**missed**"
            print(f"| callbacks/s ≥ 0.5 of the FastAPI + asyncpg write ceiling | {r['callbacks']['rps']:,.0f} vs "
                  f"{r['asyncpg']['rps']:,.0f} req/s: **{ratio:.2f}** | {met} |")  # fmt: skip
    if "delivery" in results:
        r = results["delivery"]
        e, w, b = r["created_event_ms"], r["row_written_ms"], r["waybill_stored_ms"]
        met = "met" if e["p95"] <= 100 else "**missed**"
        print(f"| delivery_requested → `express.shipment.created` on the bus, p95 ≤ 100 ms at {r['rate_per_s']:g}/s "
              f"| p50 {e['p50']:.0f} / **p95 {e['p95']:.0f}** / p99 {e['p99']:.0f} ms ({e['n']} of {r['requests']}) "
              f"| {met} |")  # fmt: skip
        print(f"| … shipments row written (no target) | p50 {w['p50']:.0f} / p95 {w['p95']:.0f} / p99 {w['p99']:.0f} ms"
              f" | — |")  # fmt: skip
        print(f"| … waybill stored (no target) | p50 {b['p50']:.0f} / p95 {b['p95']:.0f} / p99 {b['p99']:.0f} ms"
              f" | — |")  # fmt: skip
        print(f"| express CPU per request (no target) | {r['express_cpu_ms_per_request']:.1f} ms | — |")


if __name__ == "__main__":
    sys.exit(main())
