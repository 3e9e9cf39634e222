"""Issue 14's two figures, on PostgreSQL, each beside the bare insert+outbox ceiling in the same run.

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.hall_bench [--duration 8] [--rounds 3]

- **Instant approvals (秒批)**: caseflow submissions of a matter whose instant rule holds, each
  answered 201 already ``approved`` (accepted and approved by the platform in the submit request,
  the rule and its facts on the timeline, ``CaseApproved{automatic}`` in the outbox) — against
  ``bench/caseflow_bare.py`` (one case row + one outbox row in one transaction), wrk c=16, the
  ceiling's and the service's runs interleaved round by round. Afterwards every case made is
  checked to be approved and automatic.
- **Booking under contention**: hall's ``POST /bookings`` with 50 connections on 10 slots (every
  request a different person, slots taken in turn, each booking its own Idempotency-Key) — every
  2xx is one place taken by a conditional UPDATE on one of 10 hot slot rows; afterwards the slot
  counters equal the bookings made and no slot is over its capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from chinese_calendar import is_workday
from sqlalchemy.engine import make_url

from bench.caseflow_bench import (
    LUA_POST,
    cpu_seconds,
    create_database,
    drop_database,
    matter_definition,
    mint,
    run_wrk,
    seed_matter,
)
from bench.gateway_bench import Processes, start_trivial, uvicorn_args, wait_http
from kit.natsd import NatsServer, free_port

PERSON = "11010519491231002X"
INSTANT = "MZJ-BENCH-INSTANT"
HALL = "HALL-BENCH"
SLOTS = 10
CHINA = ZoneInfo("Asia/Shanghai")

# Each request the next person's token and the next of the 10 slots; a key no other request uses.
LUA_BOOK = """
local tokens = {{}}
for line in io.lines("{token_file}") do tokens[#tokens + 1] = line end
local slots = {{{slots}}}
local index = 0
next_offset = 0
offset = 0
setup = function(thread) thread:set("offset", next_offset); next_offset = next_offset + 1 end
request = function()
  index = index + 1
  local n = (index - 1) * {threads} + offset
  local headers = {{["Content-Type"] = "application/json",
                   ["Authorization"] = "Bearer " .. tokens[n % #tokens + 1],
                   ["Idempotency-Key"] = "{run}-" .. offset .. "-" .. index}}
  local body = '{{"hall_code": "{hall}", "matter_code": "GAJ-SFZ-0001", "mobile": "13912345678", "starts_at": "'
    .. slots[n % #slots + 1] .. '"}}'
  return wrk.format("POST", "/bookings", headers, body)
end
"""


def instant_matter() -> dict:
    """高龄津贴-like instant matter: no materials, one form field, rules over the token and the form."""
    matter = copy.deepcopy(matter_definition())
    matter.update(
        code=INSTANT, name="高龄津贴申领（基准）", matter_type="行政给付", department="MZJ", kind="instant",
        materials=[], promised_limit_days=1, result={"name": "批复", "form": "document", "licence_type": None,
                                                     "delivery": ["electronic"]},
        instant={"rules": [{"id": "age-80", "description": "年满80周岁的本市户籍老人",
                            "conditions": [{"fact": "applicant.kind", "op": "eq", "value": "person"},
                                           {"fact": "applicant.age", "op": "ge", "value": 70},
                                           {"fact": "form.business_scope", "op": "exists"}]}],
                 "sample_rate": 0.05},
    )  # fmt: skip
    return matter


def id_number(serial: int) -> str:
    """A GB 11643 number (Beijing Chaoyang, born 1980–2019; distinct for serials below 40,000) with its ISO 7064 MOD 11-2 check character."""
    body = f"110105{1980 + serial // 1000 % 40}{1 + serial % 12:02d}{1 + serial % 28:02d}{serial % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


def next_working_day(after: date) -> date:
    day = after + timedelta(days=1)
    while not is_workday(day):
        day += timedelta(days=1)
    return day


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    pg = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin_dsn = make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False)
    run_id = uuid.uuid4().hex[:8]
    databases = {name: f"yiwang_bench_{name}_{run_id}" for name in ("caseflow", "hall", "bare")}

    def url(name: str) -> str:
        return (
            make_url(pg)
            .set(drivername="postgresql+asyncpg", database=databases[name])
            .render_as_string(hide_password=False)
        )

    def dsn(name: str) -> str:
        return url(name).replace("+asyncpg", "")

    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs = Processes(work)
        nats = NatsServer(work / "nats").start()
        for name in databases:
            asyncio.run(create_database(admin_dsn, databases[name]))
        try:
            _, jwks_url, _, _ = start_trivial(procs, work)
            key_file = work / "trivial-key.pem"
            caseflow_env = {
                "CASEFLOW_DATABASE_URL": url("caseflow"), "CASEFLOW_NATS_URL": nats.url,
                "CASEFLOW_LOG_LEVEL": "WARNING", "CASEFLOW_BLOB_DIR": str(work / "blobs"),
                "CASEFLOW_SUPERVISION_ENABLED": "false", "CASEFLOW_JWKS_URL": jwks_url,
            }  # fmt: skip
            hall_env = {
                "HALL_DATABASE_URL": url("hall"), "HALL_NATS_URL": nats.url, "HALL_LOG_LEVEL": "WARNING",
                "HALL_JWKS_URL": jwks_url, "HALL_CALENDAR": "local", "HALL_SANDBOX": "true",
                "HALL_CODE_SECRET": "bench-only-code-secret", "HALL_SMS_ENABLED": "false",
                "HALL_NO_SHOW_ENABLED": "false",
            }  # fmt: skip
            for service, env in (("caseflow", caseflow_env), ("hall", hall_env)):
                subprocess.run([sys.executable, "-m", "kit.migrate", f"services.{service}"],
                               env={**os.environ, **env}, check=True, capture_output=True)  # fmt: skip
            asyncio.run(seed_matter(url("caseflow"), instant_matter()))
            ports = {name: free_port() for name in databases}
            started = {
                "caseflow": procs.start("caseflow", uvicorn_args("services.caseflow.main:create_app", ports["caseflow"]),
                                        caseflow_env),
                "hall": procs.start("hall", uvicorn_args("services.hall.main:create_app", ports["hall"]), hall_env),
                "bare": procs.start("bare", uvicorn_args("bench.caseflow_bare:create_app", ports["bare"]),
                                    {"BARE_DATABASE_URL": url("bare")}),
            }  # fmt: skip
            base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            wait_http(base["caseflow"] + "/healthz")
            wait_http(base["hall"] + "/healthz")
            wait_http(base["bare"] + "/openapi.json")

            person = mint(key_file, PERSON, kind="person", lvl=2, name="张三")
            admin = mint(key_file, "officer:admin", kind="officer", lvl=4, roles=["admin"], dept="ADMIN", name="管理员")
            body = {"matter_code": INSTANT, "form": {"business_scope": "高龄津贴"}, "materials": [],
                    "delivery": {"method": "window"}}  # fmt: skip
            day = next_working_day(datetime.now(CHINA).date())
            starts = [datetime.combine(day, time(9, 0), CHINA) + timedelta(minutes=30 * i) for i in range(6)]
            starts += [datetime.combine(day, time(13, 30), CHINA) + timedelta(minutes=30 * i) for i in range(4)]
            with httpx.Client(timeout=30) as client:
                check = client.post(base["caseflow"] + "/cases", json=body,
                                    headers={"Authorization": f"Bearer {person}", "Idempotency-Key": "check-1"})  # fmt: skip
                assert check.status_code == 201 and check.json()["state"] == "approved", check.text
                admin_headers = {"Authorization": f"Bearer {admin}"}
                hall = client.put(base["hall"] + f"/halls/{HALL}", headers=admin_headers, json={
                    "name": "基准大厅", "division_code": "370102", "address": "经十路1号", "slot_minutes": 30,
                    "slot_capacity": 1000, "opening_hours": ["09:00-12:00", "13:30-15:30"]})  # fmt: skip
                assert hall.status_code in (200, 201), hall.text
                window = client.put(base["hall"] + f"/halls/{HALL}/windows/A1", headers=admin_headers,
                                    json={"name": "综合窗口", "comprehensive": True})  # fmt: skip
                assert window.status_code in (200, 201), window.text
            people = [mint(key_file, id_number(n), kind="person", lvl=2, name="李四") for n in range(1, 12_001)]
            token_file = work / "tokens.txt"
            token_file.write_text("\n".join(people) + "\n")
            slot_list = ", ".join(f'"{s.isoformat()}"' for s in starts)

            def script(name: str, template: str, **values: object) -> Path:
                path = work / f"{name}.lua"
                path.write_text(template.format(**values))
                return path

            def measure(name: str, server: str, path: Path, connections: int) -> None:
                before = cpu_seconds(started[server].pid)
                spy = None
                if os.environ.get("BENCH_PYSPY"):  # a flame graph of the server under the load: BENCH_PYSPY=<dir>
                    spy = subprocess.Popen(["py-spy", "record", "-p", str(started[server].pid), "-d",
                                            str(args.duration), "-f", "speedscope", "-o",
                                            f"{os.environ['BENCH_PYSPY']}/{name}-{len(runs.get(name, []))}.json"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                run = run_wrk(base[server], path, connections, args.duration)
                if spy is not None:
                    spy.wait()
                run["cpu_ms_per_request"] = (cpu_seconds(started[server].pid) - before) * 1000 / max(run["requests"], 1)
                runs.setdefault(name, []).append(run)

            async def reset_hall() -> None:
                """Each round books into empty slots: 10 × 1000 places hold a round at any plausible rate."""
                connection = await asyncpg.connect(dsn("hall"))
                try:
                    await connection.execute("DELETE FROM bookings")
                    await connection.execute("UPDATE slots SET booked = 0")
                finally:
                    await connection.close()

            body_json = json.dumps(body, ensure_ascii=False)
            for round_no in range(args.rounds):
                measure("bare", "bare", script(f"bare-{round_no}", LUA_POST, token=person, body=body_json,
                                               run=f"bare-{round_no}"), args.connections)  # fmt: skip
                measure("instant", "caseflow", script(f"instant-{round_no}", LUA_POST, token=person, body=body_json,
                                                      run=f"instant-{round_no}"), args.connections)  # fmt: skip
                asyncio.run(reset_hall())
                measure("booking_c50", "hall", script(f"book-{round_no}", LUA_BOOK, token_file=token_file,
                                                      slots=slot_list, threads=2, run=f"book-{round_no}", hall=HALL),
                        50)  # fmt: skip

            async def reconcile() -> dict:
                cases = await asyncpg.connect(dsn("caseflow"))
                halls = await asyncpg.connect(dsn("hall"))
                try:
                    states = dict(await cases.fetch("SELECT state, count(*) FROM cases GROUP BY state"))
                    automatic = await cases.fetchval(
                        "SELECT count(*) FROM case_instant WHERE status = 'approved' AND decided_at IS NOT NULL"
                    )
                    booked = await halls.fetchval("SELECT coalesce(sum(booked), 0) FROM slots")
                    bookings = await halls.fetchval("SELECT count(*) FROM bookings")
                    over = await halls.fetchval("SELECT count(*) FROM slots WHERE booked > capacity")
                finally:
                    await cases.close()
                    await halls.close()
                return {"states": states, "automatic": automatic, "slot_counters": booked,
                        "bookings_last_round": bookings, "slots_over_capacity": over}  # fmt: skip

            checks = asyncio.run(reconcile())
        finally:
            procs.stop_all()
            nats.stop()
            for name in databases:
                asyncio.run(drop_database(admin_dsn, databases[name]))

    medians = {
        name: {key: statistics.median(run[key] for run in values) for key in ("rps", "p50_ms", "cpu_ms_per_request", "non2xx")}
        for name, values in runs.items()
    }  # fmt: skip
    print(json.dumps({"medians": medians, "rounds": runs, "checks": checks}, indent=2, default=str))
    print()
    print(f"Medians of {args.rounds} interleaved rounds of {args.duration} s; bare and instant c={args.connections}.")
    print("| what | req/s | ratio to bare | p50 ms | server CPU ms/request | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in medians.items():
        print(f"| {name} | {r['rps']:,.0f} | {r['rps'] / medians['bare']['rps']:.2f} | {r['p50_ms']:.2f} "
              f"| {r['cpu_ms_per_request']:.2f} | {r['non2xx']:.0f} |")  # fmt: skip
    ratios = [i["rps"] / b["rps"] for i, b in zip(runs["instant"], runs["bare"], strict=True)]
    print(f"instant: per-round ratios {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")
    print(f"checks: {checks}")
    made = sum(checks["states"].values())
    if checks["states"].get("approved", 0) != made or checks["automatic"] != made:
        print("FAILED: a submitted instant case is not approved automatically")
        return 1
    if checks["slots_over_capacity"] or checks["slot_counters"] != checks["bookings_last_round"]:
        print("FAILED: slot counters disagree with the bookings")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
