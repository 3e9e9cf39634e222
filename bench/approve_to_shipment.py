"""Approve → licence issued → shipment created (ADR 0022), real services on PostgreSQL + NATS.

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.approve_to_shipment [--rate 50] [--duration 60] [--profile licence]

Caseflow, licence, express (each one uvicorn worker on a PostgreSQL database of its own, created and
dropped by the run), the EMS sandbox, one nats-server, and the bench's trivial JWKS server for the
officers' tokens. ``rate × duration`` cases of an EMS matter whose result is a business licence are
submitted, accepted and reviewed through caseflow's API first; then one decider approval per case is
POSTed at a steady ``--rate`` (open loop: a slow answer does not slow the next approval). Each case
is timed from the moment its approval is sent to:
  ``approved``   the approve answer;
  ``issued``     ``licence.licence.issued`` seen on the bus (licence consumed caseflow.case.approved);
  ``requested``  ``caseflow.case.delivery_requested`` seen (caseflow recorded the licence and
                 requested the delivery itself);
  ``shipment``   ``express.shipment.created`` seen (express stored the shipment) — the target:
                 p95 ≤ 150 ms at 50 approvals/s.
Throughput is the shipments created per second between the first approval sent and the last
shipment seen. Each process's CPU seconds over the drive are reported; ``--profile NAME`` records
NAME (licence, caseflow or express) with py-spy (``pip install py-spy``, not a project dependency)
into ``--profile-out`` as a speedscope file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from bench.caseflow_bench import cpu_seconds, create_database, drop_database, matter_definition, mint, seed_matter
from bench.gateway_bench import Processes, start_trivial, uvicorn_args, wait_http
from kit.natsd import NatsServer, free_port

PERSON = "11010519491231002X"
ORDER_SECRET = "bench-chain-order-secret"
HOPS = ("approved", "issued", "requested", "shipment")
SUBJECTS = {"issued": "licence.licence.issued", "requested": "caseflow.case.delivery_requested",
            "shipment": "express.shipment.created"}  # fmt: skip


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"n": len(ordered), "p50": round(statistics.median(ordered), 1), "p95": round(at(0.95), 1),
            "p99": round(at(0.99), 1), "max": round(ordered[-1], 1)}  # fmt: skip


def migrate(service: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "kit.migrate", f"services.{service}"], env={**os.environ, **env},
                   check=True, capture_output=True)  # fmt: skip


def chain_matter() -> dict[str, Any]:
    """caseflow_bench's 个体工商户设立登记 (result: 营业执照, EMS offered) with the lease as its only
    material (no e-licence material: the bench measures the result's way out, not reuse)."""
    matter = matter_definition()
    matter["materials"] = [m for m in matter["materials"] if not m.get("licence_type")]
    return matter


async def seed_licence(url: str) -> None:
    from services.licence.cli import seed_demo

    await seed_demo(url)


class Chain:
    """The running services and what the bench needs to talk to them."""

    def __init__(self, pg: str, work: Path, run_id: str) -> None:
        self.pg, self.work, self.run_id = pg, work, run_id
        self.admin = make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False)
        self.databases = {name: f"yiwang_bench_chain_{name}_{run_id}" for name in ("caseflow", "licence", "express")}
        self.procs = Processes(work)
        self.pids: dict[str, int] = {}
        self.nats: NatsServer | None = None

    def url(self, service: str) -> str:
        return make_url(self.pg).set(drivername="postgresql+asyncpg",
                                     database=self.databases[service]).render_as_string(hide_password=False)  # fmt: skip

    def start(self, extra_env: dict[str, dict[str, str]]) -> None:
        for database in self.databases.values():
            asyncio.run(create_database(self.admin, database))
        self.nats = NatsServer(self.work / "nats").start()
        _, jwks_url, _, _ = start_trivial(self.procs, self.work)
        self.key_file = self.work / "trivial-key.pem"
        common = lambda prefix: {f"{prefix}DATABASE_URL": self.url(prefix.rstrip("_").lower()),  # noqa: E731
                                 f"{prefix}NATS_URL": self.nats.url, f"{prefix}LOG_LEVEL": "WARNING",
                                 f"{prefix}JWKS_URL": jwks_url}  # fmt: skip
        caseflow_env = {**common("CASEFLOW_"), "CASEFLOW_BLOB_DIR": str(self.work / "blobs"),
                        "CASEFLOW_SUPERVISION_ENABLED": "false", "CASEFLOW_CONSUME_LICENCE_EVENTS": "true",
                        "CASEFLOW_CONSUME_EXPRESS_EVENTS": "false", **extra_env.get("caseflow", {})}  # fmt: skip
        from services.licence.domain.signing import Ed25519Signer

        licence_env = {**common("LICENCE_"), "LICENCE_EXPIRY_ENABLED": "false", "LICENCE_CONSUME_CASE_EVENTS": "true",
                       "LICENCE_CONSUME_DEPARTMENT_EVENTS": "false",
                       "LICENCE_SIGNING_KEY": json.dumps(Ed25519Signer.generate(kid="bench").private_jwk()),
                       **extra_env.get("licence", {})}  # fmt: skip
        sandbox_port = free_port()
        express_env = {**common("EXPRESS_"), "EXPRESS_CONSUME_CASE_EVENTS": "true",
                       "EXPRESS_CARRIER_ORDERS_ENABLED": "true", "EXPRESS_CARRIER_URL": f"http://127.0.0.1:{sandbox_port}",
                       "EXPRESS_CARRIER_SECRET": ORDER_SECRET, **extra_env.get("express", {})}  # fmt: skip
        migrate("caseflow", caseflow_env)
        migrate("licence", licence_env)
        migrate("express", express_env)
        asyncio.run(seed_matter(self.url("caseflow"), chain_matter()))
        asyncio.run(seed_licence(self.url("licence")))
        self.procs.start("ems-sandbox", uvicorn_args("services.express.sandbox_ems:create_app", sandbox_port), {
            "EMS_SANDBOX_PORT": str(sandbox_port), "EMS_SANDBOX_ORDER_SECRET": ORDER_SECRET,
            "EMS_SANDBOX_REFUSAL_RATE": "0", "EMS_SANDBOX_STEP_SECONDS": "3600",
            "EMS_SANDBOX_CALLBACK_URL": "http://127.0.0.1:9/none",
        })  # fmt: skip
        self.base: dict[str, str] = {}
        for name, env in (("licence", licence_env), ("express", express_env), ("caseflow", caseflow_env)):
            port = free_port()
            app = f"services.{name}.main:create_app"
            self.pids[name] = self.procs.start(name, uvicorn_args(app, port), env).pid
            self.base[name] = f"http://127.0.0.1:{port}"
        wait_http(f"http://127.0.0.1:{sandbox_port}/healthz")
        for base in self.base.values():
            wait_http(base + "/healthz")

    def stop(self) -> None:
        self.procs.stop_all()
        if self.nats is not None:
            self.nats.stop()
        for database in self.databases.values():
            asyncio.run(drop_database(self.admin, database))


async def prepare(chain: Chain, count: int, concurrency: int) -> list[tuple[str, int]]:
    """``count`` EMS cases submitted, accepted and reviewed through caseflow's API: (case_no, version)."""
    base = chain.base["caseflow"]
    person = {"Authorization": f"Bearer {mint(chain.key_file, PERSON, kind='person', lvl=2, name='张三')}"}
    officers = {role: {"Authorization": "Bearer " + mint(chain.key_file, f"officer:scjgj.{role}", kind="officer",
                                                        lvl=4, roles=[role], dept="SCJGJ")}
                for role in ("acceptor", "reviewer", "decider")}  # fmt: skip
    chain.decider = officers["decider"]
    limits = httpx.Limits(max_connections=concurrency, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        blob = await client.post("/materials", headers=person,
                                 files={"file": ("lease.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 2048, "image/jpeg")})  # fmt: skip
        blob.raise_for_status()
        body = {
            "matter_code": matter_definition()["code"], "form": {"business_scope": "餐饮服务"},
            "materials": [{"name": "经营场所租赁合同", "blob_id": blob.json()["id"]}],
            "delivery": {"method": "ems", "recipient": "张三", "phone": "13800138000",
                         "address": "山东省德州市德城区新华路1号", "division_code": "371402"},
        }  # fmt: skip
        gate = asyncio.Semaphore(concurrency)

        async def one(n: int) -> tuple[str, int]:
            async with gate:
                headers = {**person, "Idempotency-Key": f"{chain.run_id}-{n}"}
                created = await client.post("/cases", json=body, headers=headers)
                assert created.status_code == 201, created.text
                case_no, version = created.json()["case_no"], created.json()["version"]
                for role, action in (("acceptor", "accept"), ("reviewer", "review")):
                    moved = await client.post(f"/cases/{case_no}/actions", json={"action": action},
                                              headers={**officers[role], "If-Match": f'"{version}"'})  # fmt: skip
                    assert moved.status_code == 200, moved.text
                    version = moved.json()["version"]
                return case_no, version

        return list(await asyncio.gather(*(one(n) for n in range(count))))


OUTBOX_EVENTS = {"approved": ("caseflow", "caseflow.case.approved"), "issued": ("licence", "licence.licence.issued"),
                 "requested": ("caseflow", "caseflow.case.delivery_requested"),
                 "shipment": ("express", "express.shipment.created")}  # fmt: skip


async def outbox_stamps(chain: Chain, cases: set[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per event kind: case_no → (committed, published) wall-clock seconds of its outbox row."""
    import asyncpg

    found: dict[str, dict[str, tuple[float, float]]] = {}
    for kind, (service, subject) in OUTBOX_EVENTS.items():
        dsn = make_url(chain.url(service)).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn)
        try:
            rows = await connection.fetch(
                "SELECT payload::json->'data'->>'case_no' AS case_no, created_at, published_at FROM outbox "
                "WHERE nats_subject = $1 AND published_at IS NOT NULL", subject)  # fmt: skip
        finally:
            await connection.close()
        found[kind] = {r["case_no"]: (r["created_at"].timestamp(), r["published_at"].timestamp())
                       for r in rows if r["case_no"] in cases}  # fmt: skip
    return found


async def drive(chain: Chain, cases: list[tuple[str, int]], rate: float, profile: str | None,
                profile_out: Path | None) -> dict[str, Any]:  # fmt: skip
    """Approve every case at ``rate``/s and time each hop; the processes' CPU over the drive."""
    import nats

    sent: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    seen: dict[str, dict[str, float]] = {hop: {} for hop in HOPS}
    statuses: dict[int | str, int] = {}
    listener = await nats.connect(chain.nats.url)

    def on(hop: str):
        async def callback(message) -> None:
            case_no = json.loads(message.data)["data"].get("case_no")
            if case_no in sent and case_no not in seen[hop]:
                seen[hop][case_no] = time.perf_counter()

        return callback

    for hop, subject in SUBJECTS.items():
        await listener.subscribe(subject, cb=on(hop))
    spy = None
    duration = len(cases) / rate
    if profile:
        profile_out = profile_out or chain.work / f"{profile}.speedscope.json"
        spy = subprocess.Popen([shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record",
                                "-p", str(chain.pids[profile]), "-d", str(int(duration) + 5), "-r", "50",
                                "-f", "speedscope", "-o", str(profile_out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    cpu_before = {name: cpu_seconds(pid) for name, pid in chain.pids.items()}
    tasks = []
    # aiohttp drives the approvals: httpx's pool stalls under hundreds of concurrent requests
    # (encode/httpx#3215, DESIGN §7), which would time the bench's client, not the services.
    import aiohttp

    connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=2.0)
    async with aiohttp.ClientSession(base_url=chain.base["caseflow"], connector=connector) as client:

        async def approve(case_no: str, version: int) -> None:
            sent[case_no] = time.perf_counter()
            sent_wall[case_no] = time.time()
            try:
                async with client.post(f"/cases/{case_no}/actions", json={"action": "approve"},
                                       headers={**chain.decider, "If-Match": f'"{version}"'}) as answer:  # fmt: skip
                    await answer.read()
                    status: int | str = answer.status
            except aiohttp.ClientError as exc:
                status = type(exc).__name__
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                seen["approved"][case_no] = time.perf_counter()

        interval = 1.0 / rate
        started = next_at = time.perf_counter()
        for case_no, version in cases:
            now = time.perf_counter()
            if now < next_at:
                await asyncio.sleep(next_at - now)
            next_at += interval
            tasks.append(asyncio.create_task(approve(case_no, version)))
        await asyncio.gather(*tasks)
        deadline = time.perf_counter() + 60
        while len(seen["shipment"]) < len(cases) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
    cpu = {name: round(cpu_seconds(pid) - cpu_before[name], 1) for name, pid in chain.pids.items()}
    stamps = await outbox_stamps(chain, set(sent))
    await listener.close()
    if spy is not None:
        spy.wait(timeout=120)
    last = max(seen["shipment"].values(), default=started)
    return {
        "cases": len(cases),
        "rate_per_s": rate,
        "approve_statuses": statuses,
        "ms": {hop: percentiles([(seen[hop][c] - sent[c]) * 1000 for c in seen[hop]]) for hop in HOPS},
        # Where the time goes: each event's outbox row committed (created_at, stamped in the
        # transaction) and published by the relay (published_at), from the approval sent (wall clock).
        "outbox_ms": {
            f"{event} {stamp}": percentiles([(values[i] - sent_wall[c]) * 1000 for c, values in rows.items()])
            for event, rows in stamps.items()
            for i, stamp in enumerate(("committed", "published"))
        },
        "shipments_per_s": round(len(seen["shipment"]) / max(last - started, 1e-9), 1),
        "drive_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": cpu,
        "profile": str(profile_out) if profile else None,
    }


def met(rate: float, cases: int, shipment: dict[str, float]) -> str:
    """The target is p95 ≤ 150 ms at 50 approvals/s, every shipment seen; a lower rate meets nothing."""
    if rate < 50:
        return f"(target is at 50/s; p95 ≤ 150 ms {'held' if shipment.get('p95', 1e9) <= 150 else 'not held'} here)"
    return "met" if shipment.get("n") == cases and shipment.get("p95", 1e9) <= 150 else "missed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="approvals per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of approvals")
    parser.add_argument("--prepare-concurrency", type=int, default=16)
    parser.add_argument("--profile", choices=("licence", "caseflow", "express"), default=None)
    parser.add_argument("--profile-out", type=Path, default=None)
    parser.add_argument("--env", action="append", default=[],
                        help="service:NAME=VALUE set for one service (e.g. licence:LICENCE_CONSUMER_CONCURRENCY=1)")  # fmt: skip
    args = parser.parse_args()
    pg = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    extra: dict[str, dict[str, str]] = {}
    for item in args.env:
        service, _, assignment = item.partition(":")
        name, _, value = assignment.partition("=")
        extra.setdefault(service, {})[name] = value
    with tempfile.TemporaryDirectory() as tmp:
        chain = Chain(pg, Path(tmp), uuid.uuid4().hex[:8])
        try:
            chain.start(extra)
            count = int(args.rate * args.duration)
            began = time.perf_counter()
            cases = asyncio.run(prepare(chain, count, args.prepare_concurrency))
            print(f"prepared {len(cases)} reviewed EMS cases in {time.perf_counter() - began:.0f} s", flush=True)
            time.sleep(2.0)  # the prepared cases' events settle before the drive
            result = asyncio.run(drive(chain, cases, args.rate, args.profile, args.profile_out))
            result["env"] = extra
        finally:
            logs = {p.name: p.read_text(errors="replace") for p in Path(tmp).glob("*.log")}
            chain.stop()
    print(json.dumps(result, indent=2), flush=True)
    ship = result["ms"]["shipment"]
    print(f"\n| approve → shipment created at {args.rate:g}/s, {result['cases']} cases | "
          f"p50 {ship.get('p50')} / p95 {ship.get('p95')} / p99 {ship.get('p99')} ms "
          f"({ship.get('n')} of {result['cases']} seen); {result['shipments_per_s']} shipments/s | "
          f"{met(args.rate, result['cases'], ship)} |")  # fmt: skip
    for hop in HOPS:
        print(f"  {hop:10s} {result['ms'][hop]}")
    for stamp, values in result["outbox_ms"].items():
        print(f"  outbox {stamp:28s} {values}")
    print(f"  cpu seconds over the drive: {result['cpu_seconds']}")
    for name, text in logs.items():  # what the services complained of during the run
        complaints = [line for line in text.splitlines() if "warning" in line.lower() or "error" in line.lower()]
        if complaints:
            print(f"--- {name}: {len(complaints)} warnings/errors, the first ones:")
            print("\n".join(line[:300] for line in complaints[:8]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
