"""Licence benchmarks (issue 10), PostgreSQL for everything stored (``make bench``; CI never runs it).

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.licence_bench [--licences 10000000] [--keep] [--only lookup,import,…]

Parts (all by default, each in its own database created and dropped by the run):
- ``sign``: QR credentials signed (``domain.credential.encode``) and verified offline
  (``decode_and_verify``) per second on one core, beside raw Ed25519 sign / verify.
- ``import``: POST /imports NDJSON through the app in-process (httpx ASGITransport), valid rows
  into PostgreSQL with their ``issued`` events; the code of ``--baseline-ref`` (the import path
  before this bench's changes, read with ``git show``) is run beside today's, rounds interleaved.
- ``lookup``: ``--licences`` licences COPYed into ``yw_licence_bench`` (kept with ``--keep``),
  then the wallet (GET /licences) and online verification (POST /licences/verify by identifier and
  number, and by QR text) through the app in-process, each beside the bare SQL it runs (asyncpg).
- ``approve``: the licence app as a uvicorn process consuming ``caseflow.case.approved`` from a
  real nats-server; CaseApproved envelopes published onto the CASEFLOW stream at a steady rate
  (as caseflow's outbox relay does) and timed to the licence row's commit and to
  ``licence.licence.issued`` seen on the bus.
Targets: wallet and verification p95 ≤ 5 ms with 10 million licences; import ≥ 10,000 rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from kit.migrate import upgrade
from kit.natsd import NatsServer
from kit.testing import TokenSigner
from services.licence.domain.identifier import build_identifier

TOKENS = TokenSigner(kid="bench")
TODAY = date(2026, 11, 2)
SCJGJ = ("SCJGJ", "11371400MB00000190", "371400")
FOOD_TYPE = "11100000000000019F003"

# ---- helpers ------------------------------------------------------------------------------------
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def id_number(n: int) -> str:
    """A valid GB 11643 number (Dezhou districts, born 1950–1999), distinct for n < 10**8."""
    region = ("371402", "371403", "371422", "371423", "371424")[n % 5]
    born = date(1950, 1, 1) + timedelta(days=(n // 5) % 18_000)
    body = f"{region}{born:%Y%m%d}{(n // 90_000) % 1000:03d}"
    total = sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def credit_code(n: int) -> str:
    """A valid GB 32100 code of an enterprise (91, Dezhou), distinct for n < 10**9."""
    body = f"91371400{n:09d}"
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC_ALPHABET[(31 - total % 31) % 31]


def percentiles(timings_ms: list[float]) -> dict[str, float]:
    ordered = sorted(timings_ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"n": len(ordered), "p50": statistics.median(ordered), "p95": at(0.95), "p99": at(0.99)}


def admin_dsn(pg: str) -> str:
    return make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False)


def db_url(pg: str, name: str, driver: str = "postgresql+asyncpg") -> str:
    return make_url(pg).set(drivername=driver, database=name).render_as_string(hide_password=False)


async def create_database(pg: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn(pg))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(pg: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn(pg))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def database_exists(pg: str, name: str) -> bool:
    connection = await asyncpg.connect(admin_dsn(pg))
    try:
        return bool(await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await connection.close()


async def migrate_and_seed(url: str) -> None:
    from services.licence.cli import seed_demo

    await asyncio.to_thread(upgrade, "services.licence", url)
    await seed_demo(url)


def officer_headers(department: str = "SCJGJ", *roles: str) -> dict[str, str]:
    token = TOKENS.officer_token(f"{department.lower()}.bench", roles=roles or ("admin",), department=department)
    return {"Authorization": f"Bearer {token}"}


def app_settings(url: str, nats_url: str, **more: Any):
    from services.licence.domain.signing import Ed25519Signer
    from services.licence.settings import Settings

    values: dict[str, Any] = dict(
        database_url=url, nats_url=nats_url, nats_enabled=False, log_json=False, log_level="WARNING",
        expiry_enabled=False, consume_case_events=False, verify_per_minute=10**9,
        signing_key=json.dumps(Ed25519Signer.generate(kid="bench").private_jwk()),
    )  # fmt: skip
    values.update(more)
    return Settings(**values)


class InProcess:
    """The licence app with its lifespan and an httpx client on it (ASGITransport, no sockets)."""

    def __init__(self, settings) -> None:
        from services.licence.main import create_app

        self.app = create_app(settings, key_fetcher=TOKENS.fetch_keys)

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://licence",
                                        timeout=600)  # fmt: skip
        return self.client

    async def __aexit__(self, *exc) -> None:
        await self.client.aclose()
        await self._lifespan.__aexit__(*exc)


# ---- 3. signatures ------------------------------------------------------------------------------
def per_second(function, seconds: float = 2.0) -> float:
    """Calls per second of ``function`` in this process (one core), best of three timings."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    number = max(1, int(number * seconds / 0.2))
    return max(number / timer.timeit(number) for _ in range(3))


def bench_signatures() -> dict[str, float]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.licence.domain.credential import decode_and_verify, default_claims, encode
    from services.licence.domain.signing import Ed25519Signer, KeySet, key_set_document

    signer = Ed25519Signer.generate(kid="yw25")
    keys = KeySet.from_jwks(key_set_document(signer))
    identifier = build_identifier(type_code="11100000000000019F001", issuer_code=SCJGJ[1], serial="20260000001")
    claims = default_claims(
        identifier=identifier, licence_number="91371400MA3C4PQX2U", holder_name="德州市德城区某某餐饮管理有限公司",
        holder_code="91371400MA3C4PQX2U", holder_is_person=False, issued_on=date(2026, 11, 2), valid_until=None,
        type_name="营业执照", issuer_name="德州市市场监督管理局",
    )  # fmt: skip
    text = encode(claims, signer)
    now = datetime(2026, 11, 3, tzinfo=UTC)
    raw = Ed25519PrivateKey.generate()
    message = os.urandom(200)
    signature = raw.sign(message)
    public = raw.public_key()
    return {
        "ed25519_sign": per_second(lambda: raw.sign(message)),
        "ed25519_verify": per_second(lambda: public.verify(signature, message)),
        "encode": per_second(lambda: encode(claims, signer)),
        "decode_and_verify": per_second(lambda: decode_and_verify(text, keys, now=now)),
        "qr_characters": len(text),
    }


# ---- 2. import ----------------------------------------------------------------------------------
def import_rows(count: int, *, run: str) -> bytes:
    """``count`` valid NDJSON rows of food-business licences issued by SCJGJ: half bring their own
    identifier (licences issued before), half get one; persons and enterprises, some revoked."""
    lines = []
    for n in range(count):
        enterprise = n % 3 == 0
        row: dict[str, Any] = {
            "licence_type": "food_business_licence",
            "holder": credit_code(n + 7_000_000) if enterprise else id_number(n + 3_000_000),
            "holder_name": f"德州{run}{n}号餐饮有限公司" if enterprise else f"王{n % 97}",
            "issued_on": (date(2022, 1, 1) + timedelta(days=n % 1000)).isoformat(),
            "data": {"address": f"德州市德城区新华路{n}号", "business_items": "热食类食品制售"},
        }
        if n % 2 == 0:
            row["identifier"] = str(
                build_identifier(type_code=FOOD_TYPE, issuer_code=SCJGJ[1], serial=f"I{run}{n:09d}")
            )
            row["number"] = f"JY{run}{n:010d}"
        if n % 25 == 0:
            row["status"] = "revoked"
        lines.append(json.dumps(row, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


async def one_import(client: httpx.AsyncClient, body: bytes, expected: int) -> float:
    async def chunks():
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    started = time.perf_counter()
    response = await client.post("/imports", content=chunks(),
                                 headers={"Content-Type": "application/x-ndjson", **officer_headers()})  # fmt: skip
    elapsed = time.perf_counter() - started
    report = response.json()
    assert response.status_code == 200 and report["imported"] == expected, (response.status_code, report)
    return elapsed


async def import_round(pg: str, *, rows: int, label: str, profile: Path | None) -> dict[str, Any]:
    """One import of ``rows`` rows into a new database by the code on sys.path; rows/s."""
    name = f"yw_licence_bench_import_{uuid.uuid4().hex[:6]}"
    url = db_url(pg, name)
    await create_database(pg, name)
    try:
        await migrate_and_seed(url)
        async with InProcess(app_settings(url, "nats://127.0.0.1:1")) as client:
            await one_import(client, import_rows(500, run="W"), 500)  # warm-up
            body = import_rows(rows, run=label)
            gc.collect()
            if profile is not None:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.enable()
                elapsed = await one_import(client, body, rows)
                profiler.disable()
                with profile.open("w") as out:
                    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(45)
            else:
                elapsed = await one_import(client, body, rows)
        connection = await asyncpg.connect(db_url(pg, name, "postgresql"))
        try:
            licences = await connection.fetchval("SELECT count(*) FROM licences")
            events = await connection.fetchval(
                "SELECT count(*) FROM outbox WHERE event_type = 'yiwang.licence.licence.issued.v1'"
            )
        finally:
            await connection.close()
    finally:
        await drop_database(pg, name)
    assert licences == events == rows + 500, (licences, events)
    return {"rows_per_s": rows / elapsed, "licences": licences, "events": events}


def bench_import(*, rows: int, rounds: int, baseline_ref: str | None, profile: Path | None) -> dict[str, Any]:
    """Rounds alternate the import path of ``baseline_ref`` (its kit, contracts and services
    extracted with git archive) and today's, each a process of its own on the same database server."""
    repo = Path(__file__).resolve().parent.parent
    results: dict[str, list[float]] = {"baseline": [], "current": []}
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"current": repo}
        if baseline_ref:
            archive = subprocess.run(["git", "archive", baseline_ref, "kit", "contracts", "services"], cwd=repo,
                                     capture_output=True, check=True).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            sides = {"baseline": Path(tmp), **sides}
        for round_no in range(rounds):
            for label, root in sides.items():
                command = [sys.executable, "-m", "bench.licence_bench", "--import-once", f"{label[0].upper()}{round_no}",
                           "--import-rows", str(rows)]  # fmt: skip
                if profile is not None and label == "current" and round_no == 0:
                    command += ["--profile", str(profile)]
                # cwd comes first on sys.path: the side's own services; bench/ from this checkout.
                env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{repo}"}
                out = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
                if out.returncode:
                    raise RuntimeError(out.stderr[-3000:])
                rate = json.loads(out.stdout.strip().splitlines()[-1])["rows_per_s"]
                results[label].append(rate)
                print(f"import {label} round {round_no}: {rate:,.0f} rows/s", flush=True)
    summary: dict[str, Any] = {"rows_per_import": rows, "rounds": results}
    for label, values in results.items():
        if values:
            summary[label] = statistics.median(values)
    if results["baseline"]:
        summary["ratios"] = [c / b for c, b in zip(results["current"], results["baseline"], strict=True)]
    return summary


# ---- 1. ten million licences: fill, wallet, verification ---------------------------------------
PERSON_TYPES = ("resident_id_card", "social_security_card", "household_register", "real_estate_certificate",
                "food_business_licence", "marriage_certificate", "individual_business_licence")  # fmt: skip
ENTERPRISE_TYPES = ("business_licence", "food_business_licence", "real_estate_certificate",
                    "real_estate_registration_proof")  # fmt: skip
PER_HOLDER = (1, 1, 1, 2, 2, 3, 4, 5)  # licences of holder h: PER_HOLDER[h % 8] (mean 2.4)
BIG_DB = "yw_licence_bench"


def holder_of(h: int) -> tuple[str, str, str]:
    """(code, code type, name) of holder number h: four in five persons, one in five enterprises."""
    if h % 5:
        return id_number(h), "111", "王李张刘陈杨"[h % 6] + "某" + str(h % 1000)
    return credit_code(h), "001", f"德州{h}商贸有限公司"


def licence_records(count: int, catalogue: dict[str, dict], issuers: dict[str, dict]):
    """Yield (holder number, record) for ``count`` licences in ``licences`` column order (COLUMNS)."""
    from services.licence.domain import rules
    from services.licence.domain.identifier import check_character

    serials: dict[tuple[str, int], int] = {}
    created = datetime(2026, 11, 1, tzinfo=UTC)
    made = h = 0
    while made < count:
        code, code_type, name = holder_of(h)
        kinds = PERSON_TYPES if code_type == "111" else ENTERPRISE_TYPES
        for j in range(PER_HOLDER[h % 8]):
            if made >= count:
                break
            info = catalogue[kinds[(h + j) % len(kinds)]]
            issuer = issuers[info["issuers"][0]]
            issued = date(2000, 1, 1) + timedelta(days=(made * 37) % 9_700)
            key = (issuer["department"], issued.year)
            serial = serials[key] = serials.get(key, 0) + 1
            serial_text = f"{issued.year:04d}{serial:07d}"
            check = check_character(type_code=info["national_type_code"], issuer_code=issuer["issuer_code"],
                                    serial=serial_text, version=1)  # fmt: skip
            identifier = (
                f"1.2.156.3005.2.{info['national_type_code']}.{issuer['issuer_code']}.{serial_text}.001.{check}"
            )
            until = rules.valid_until(issued, info["validity_years"])
            status, reason = "valid", None
            if made % 50 == 7:
                status, reason = "revoked", "许可被依法撤销"
            elif made % 97 == 3:
                status, reason = "suspended", "整改期间暂停"
            elif until is not None and until < TODAY:
                status = "expired"
            number = rules.licence_number(rule=info["number_rule"], holder=code,
                                          holder_kind="person" if code_type == "111" else "enterprise",
                                          division_code=issuer["division_code"], year=issued.year, serial=serial)  # fmt: skip
            yield h, (
                identifier, info["name"], info["code"], number, issuer["department"], issuer["issuer_code"],
                issuer["name"], issued, issued, until, code, name, code_type, issuer["division_code"],
                '{"address": "德州市德城区新华路' + str(made % 9999) + '号"}', status, reason, 1, "import", None,
                "officer:bench", None, created, created,
            )  # fmt: skip
            made += 1
        h += 1


COLUMNS = ("identifier", "name", "type_code", "number", "issuer", "issuer_code", "issuer_name", "issued_on",
           "valid_from", "valid_until", "holder", "holder_name", "holder_code_type", "jurisdiction", "data", "status",
           "status_reason", "version", "source", "case_no", "issued_by", "expiring_notice_for", "created_at",
           "updated_at")  # fmt: skip


async def fill(pg: str, count: int) -> dict[str, Any]:
    """Create, migrate and COPY ``count`` licences into BIG_DB (indexes built after the load)."""
    from services.licence import seed_data

    url = db_url(pg, BIG_DB)
    await create_database(pg, BIG_DB)
    await migrate_and_seed(url)
    catalogue = {t["code"]: t for t in seed_data.LICENCE_TYPES}
    issuers = {i["department"]: i for i in seed_data.ISSUERS}
    connection = await asyncpg.connect(db_url(pg, BIG_DB, "postgresql"))
    started = time.perf_counter()
    try:
        # The migration's indexes and unique constraints, dropped for the load and made again after
        # (one sort each instead of ten million random inserts), exactly as they were.
        constraints = await connection.fetch(
            "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
            "WHERE conrelid = 'licences'::regclass AND contype = 'u'"
        )
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'licences' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'licences'::regclass)"
        )
        for row in constraints:
            await connection.execute(f'ALTER TABLE licences DROP CONSTRAINT "{row["conname"]}"')
        for row in indexes:
            await connection.execute(f'DROP INDEX "{row["indexname"]}"')
        records = licence_records(count, catalogue, issuers)
        chunk: list[tuple] = []
        loaded = 0
        for _, record in records:
            chunk.append(record)
            if len(chunk) == 100_000:
                await connection.copy_records_to_table("licences", records=chunk, columns=COLUMNS)
                loaded += len(chunk)
                chunk = []
                if loaded % 1_000_000 == 0:
                    print(f"  {loaded:,} licences loaded, {time.perf_counter() - started:.0f} s", flush=True)
        if chunk:
            await connection.copy_records_to_table("licences", records=chunk, columns=COLUMNS)
        load_seconds = time.perf_counter() - started
        await connection.execute("SET maintenance_work_mem = '512MB'")
        for row in constraints:
            await connection.execute(f'ALTER TABLE licences ADD CONSTRAINT "{row["conname"]}" {row["def"]}')
        for row in indexes:
            await connection.execute(row["indexdef"])
        # The serials the load used, so licences issued afterwards (approvals) draw the next ones.
        await connection.execute(
            "INSERT INTO licence_serials (issuer, year, last) SELECT issuer, extract(year FROM issued_on)::int, "
            "max(substr(split_part(identifier, '.', 8), 5)::int) FROM licences GROUP BY 1, 2 "
            "ON CONFLICT (issuer, year) DO UPDATE SET last = excluded.last"
        )
        await connection.execute("VACUUM ANALYZE licences")
        size = await connection.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await connection.close()
    return {"licences": count, "load_seconds": load_seconds, "total_seconds": time.perf_counter() - started,
            "database_size": size}  # fmt: skip


async def bench_lookup(pg: str, *, count: int, queries: int) -> dict[str, Any]:
    """Wallet and online verification through the app, each beside the bare SQL it runs."""
    url = db_url(pg, BIG_DB)
    connection = await asyncpg.connect(db_url(pg, BIG_DB, "postgresql"))
    holders_total = await connection.fetchval("SELECT count(DISTINCT holder) FROM licences") if count < 10**6 else None
    last_holder = await connection.fetchval("SELECT max(id) FROM licences")
    rng = random.Random(10)
    # Holder numbers are dense from 0 (licence_records); the holder of the last licence bounds them.
    max_holder = int(count / 2.375)
    sample = [holder_of(rng.randrange(max_holder)) for _ in range(queries + 300)]
    ids = [rng.randint(1, last_holder) for _ in range(queries + 300)]
    rows = {r["id"]: dict(r) for r in await connection.fetch("SELECT * FROM licences WHERE id = ANY($1)", ids)}
    licences = [rows[i] for i in ids if i in rows]
    results: dict[str, Any] = {"holders_sampled": len(sample), "licences_sampled": len(licences),
                               "distinct_holders": holders_total}  # fmt: skip
    wallet_sql = ("SELECT * FROM licences WHERE holder = $1 ORDER BY id DESC LIMIT 20 OFFSET 0",
                  "SELECT count(*) FROM (SELECT 1 FROM licences WHERE holder = $1) AS s")  # fmt: skip
    settings = app_settings(url, "nats://127.0.0.1:1")
    app = InProcess(settings)
    async with app as client:
        credentials = app.app.state.credentials
        qr_texts = [_qr_text(credentials, row) for row in licences]
        tokens = [
            TOKENS.token(sub=code, kind="person", lvl=2) if code_type == "111"
            else TOKENS.token(sub=code, kind="enterprise", lvl=3)
            for code, code_type, _ in sample
        ]  # fmt: skip
        timings: dict[str, list[float]] = {k: [] for k in ("wallet_app", "wallet_sql", "verify_number_app",
                                                             "verify_qr_app", "verify_sql")}  # fmt: skip
        found = 0
        for i, ((code, _, _), token) in enumerate(zip(sample, tokens, strict=True)):
            warm = i < 300  # the first 300 of each warm the app and the connection pool, not measured
            started = time.perf_counter()
            response = await client.get("/licences", headers={"Authorization": f"Bearer {token}"})
            app_ms = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.text
            found += response.json()["total"] > 0
            started = time.perf_counter()
            await connection.fetch(wallet_sql[1], code)
            await connection.fetch(wallet_sql[0], code)
            sql_ms = (time.perf_counter() - started) * 1000
            if not warm:
                timings["wallet_app"].append(app_ms)
                timings["wallet_sql"].append(sql_ms)
        for i, (row, text) in enumerate(zip(licences, qr_texts, strict=True)):
            warm = i < 300
            started = time.perf_counter()
            response = await client.post("/licences/verify", json={"identifier": row["identifier"],
                                                                   "number": row["number"]})  # fmt: skip
            by_number = (time.perf_counter() - started) * 1000
            assert response.status_code == 200 and response.json()["status"] == _expected_status(row), response.text
            started = time.perf_counter()
            response = await client.post("/licences/verify", json={"text": text})
            by_qr = (time.perf_counter() - started) * 1000
            assert response.status_code == 200 and response.json()["status"] in ("valid", "expired", "revoked",
                                                                                 "suspended"), response.text  # fmt: skip
            started = time.perf_counter()
            await connection.fetchrow("SELECT * FROM licences WHERE identifier = $1", row["identifier"])
            sql = (time.perf_counter() - started) * 1000
            if not warm:
                timings["verify_number_app"].append(by_number)
                timings["verify_qr_app"].append(by_qr)
                timings["verify_sql"].append(sql)
    await connection.close()
    results["holders_with_licences"] = found
    for name, values in timings.items():
        results[name] = percentiles(values)
    return results


def _expected_status(row: dict) -> str:
    if row["status"] == "valid" and row["valid_until"] is not None and row["valid_until"] < date.today():
        return "expired"
    return row["status"]


def _qr_text(credentials, row: dict) -> str:
    from services.licence.domain.credential import encode
    from services.licence.models import Licence

    licence = Licence(**{k: v for k, v in row.items() if k != "id"})
    return encode(credentials._claims(licence), credentials.signer)


# ---- 4. approve → licence issued ----------------------------------------------------------------
async def bench_approvals(pg: str, database: str, *, approvals: int, rate: float, work: Path) -> dict[str, Any]:
    """The licence app (uvicorn, its own process) consumes approvals published at ``rate``/s."""
    import nats

    from contracts.events.caseflow import CaseApproved
    from kit.bus import Bus
    from kit.events import envelope
    from services.licence.domain.signing import Ed25519Signer

    nats_server = NatsServer(work / "nats").start()
    port = free_port_()
    env = {
        **os.environ, "LICENCE_DATABASE_URL": db_url(pg, database), "LICENCE_NATS_URL": nats_server.url,
        "LICENCE_LOG_LEVEL": "WARNING", "LICENCE_EXPIRY_ENABLED": "false", "LICENCE_CONSUME_CASE_EVENTS": "true",
        "LICENCE_SIGNING_KEY": json.dumps(Ed25519Signer.generate(kid="bench").private_jwk()),
    }  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "services.licence.main:create_app", "--factory", "--port", str(port),
         "--log-level", "warning", "--no-access-log"], env=env,
    )  # fmt: skip
    caseflow = Bus(nats_server.url, name="bench-caseflow", streams={"CASEFLOW": ["caseflow.>"]})
    listener = await nats.connect(nats_server.url)
    seen: dict[str, float] = {}
    done = asyncio.Event()

    async def on_issued(message) -> None:
        event = json.loads(message.data)
        seen[event["data"]["case_no"]] = time.perf_counter()
        if len(seen) >= approvals:
            done.set()

    await listener.subscribe("licence.licence.issued", cb=on_issued)
    published: dict[str, float] = {}
    published_wall: dict[str, float] = {}
    run = uuid.uuid4().hex[:6].upper()
    try:
        await caseflow.start()
        await caseflow.wait_connected(10)
        js = await caseflow.jetstream()
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the durable consumer is bound after start-up

        def approval(n: int):
            enterprise = n % 2 == 0
            data = CaseApproved(
                case_no=f"BENCH{run}{n:06d}", matter_code="SCJG-BENCH-001", matter_version=1, department="SCJGJ",
                state="approved", at=datetime.now(UTC), actor="officer:scjgj.decider",
                applicant=credit_code(900_000_000 + n) if enterprise else id_number(50_000_000 + n),
                result_licence_type="food_business_licence", applicant_kind="enterprise" if enterprise else "person",
                applicant_name="德州某某餐饮有限公司" if enterprise else "张三",
                form={"address": f"德州市德城区新华路{n}号", "business_items": "热食类食品制售"},
                approved_on=TODAY,
            )  # fmt: skip
            return envelope(data, subject=data.case_no)

        warm = 20
        interval = 1.0 / rate
        next_at = time.perf_counter()
        for n in range(approvals + warm):
            event = approval(n)
            payload = event.model_dump_json().encode()
            now = time.perf_counter()
            if now < next_at:
                await asyncio.sleep(next_at - now)
            next_at += interval
            published[event.data["case_no"]] = time.perf_counter()
            published_wall[event.data["case_no"]] = time.time()
            await js.publish("caseflow.case.approved", payload, headers={"Nats-Msg-Id": event.id})
        deadline = time.perf_counter() + 60
        while len(seen) < approvals + warm and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        connection = await asyncpg.connect(db_url(pg, database, "postgresql"))
        try:
            created = await connection.fetch(
                "SELECT case_no, created_at FROM licences WHERE case_no LIKE $1", f"BENCH{run}%"
            )
        finally:
            await connection.close()
    finally:
        await listener.close()
        await caseflow.close()
        server.terminate()
        server.wait()
        nats_server.stop()
    measured = sorted(published)[warm:]
    issued = [(seen[c] - published[c]) * 1000 for c in measured if c in seen]
    # The row's created_at is stamped in the issuing transaction, just before its commit (same clock).
    stamped = {r["case_no"]: r["created_at"].timestamp() for r in created}
    written = [(stamped[c] - published_wall[c]) * 1000 for c in measured if c in stamped]
    return {"approvals": len(measured), "rate_per_s": rate, "issued_events_seen": len(issued),
            "rows": len(created), "issued_event_ms": percentiles(issued), "row_written_ms": percentiles(written)}  # fmt: skip


def free_port_() -> int:
    from kit.natsd import free_port

    return free_port()


# ---- main ---------------------------------------------------------------------------------------
PARTS = ("sign", "import", "lookup", "approve")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {PARTS}")
    parser.add_argument("--licences", type=int, default=int(os.environ.get("BENCH_LICENCES", "10000000")))
    parser.add_argument("--keep", action="store_true", help="keep yw_licence_bench (and reuse it when filled)")
    parser.add_argument("--queries", type=int, default=3000, help="random holders / licences per measurement")
    parser.add_argument("--import-rows", type=int, default=50_000)
    parser.add_argument("--import-rounds", type=int, default=3)
    parser.add_argument("--baseline-ref", default="5e7b48b", help="git ref of the import path to compare ('' = none)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of one import here")
    parser.add_argument("--import-once", metavar="LABEL", help=argparse.SUPPRESS)  # one side's round (internal)
    parser.add_argument("--approvals", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="approvals published per second")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    pg = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    results: dict[str, Any] = {"date": date.today().isoformat(), "argv": sys.argv[1:]}
    if "sign" in parts:
        results["sign"] = bench_signatures()
        print(json.dumps(results["sign"]), flush=True)
    if args.import_once:
        result = asyncio.run(import_round(pg, rows=args.import_rows, label=args.import_once, profile=args.profile))
        print(json.dumps(result))
        return 0
    if "import" in parts:
        results["import"] = bench_import(rows=args.import_rows, rounds=args.import_rounds,
                                         baseline_ref=args.baseline_ref or None, profile=args.profile)  # fmt: skip
        print(json.dumps(results["import"]), flush=True)
    if "lookup" in parts or "approve" in parts:
        reuse = args.keep and asyncio.run(database_exists(pg, BIG_DB))
        try:
            if "lookup" in parts:
                if not reuse:
                    results["fill"] = asyncio.run(fill(pg, args.licences))
                    print(json.dumps(results["fill"]), flush=True)
                results["lookup"] = asyncio.run(bench_lookup(pg, count=args.licences, queries=args.queries))
                print(json.dumps(results["lookup"]), flush=True)
            if "approve" in parts:
                database = BIG_DB
                if "lookup" not in parts and not reuse:
                    asyncio.run(create_database(pg, BIG_DB))
                    asyncio.run(migrate_and_seed(db_url(pg, BIG_DB)))
                with tempfile.TemporaryDirectory() as tmp:
                    results["approve"] = asyncio.run(
                        bench_approvals(pg, database, approvals=args.approvals, rate=args.rate, work=Path(tmp))
                    )
                print(json.dumps(results["approve"]), flush=True)
        finally:
            if not args.keep:
                asyncio.run(drop_database(pg, BIG_DB))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    report(results)
    return 0


def report(results: dict[str, Any]) -> None:
    print()
    print("| target | measured | met |")
    print("|---|---|---|")
    if "import" in results:
        r = results["import"]
        base = f" (baseline {r['baseline']:,.0f}, ratio {r['current'] / r['baseline']:.1f}×)" if "baseline" in r else ""
        met = "met" if r["current"] >= 10_000 else "**missed**"
        print(f"| import ≥ 10,000 rows/s | {r['current']:,.0f} rows/s{base} | {met} |")
    for name, label in (("wallet_app", "wallet GET /licences p95 ≤ 5 ms"),
                        ("verify_number_app", "verify by identifier + number p95 ≤ 5 ms"),
                        ("verify_qr_app", "verify by QR text p95 ≤ 5 ms")):  # fmt: skip
        if "lookup" in results:
            r = results["lookup"][name]
            sql = results["lookup"]["wallet_sql" if name == "wallet_app" else "verify_sql"]
            print(f"| {label} | p50 {r['p50']:.1f} / p95 {r['p95']:.1f} / p99 {r['p99']:.1f} ms (bare SQL p95 "
                  f"{sql['p95']:.1f}) | {'met' if r['p95'] <= 5 else '**missed**'} |")  # fmt: skip
    if "approve" in results:
        r = results["approve"]
        print(f"| approve → issued at {r['rate_per_s']:g}/s (no target) | event p50 {r['issued_event_ms']['p50']:.0f} / "
              f"p95 {r['issued_event_ms']['p95']:.0f} ms; row p50 {r['row_written_ms']['p50']:.0f} / "
              f"p95 {r['row_written_ms']['p95']:.0f} ms | — |")  # fmt: skip
    if "sign" in results:
        s = results["sign"]
        print(f"| signatures/s, one core (no target) | encode {s['encode']:,.0f}/s; Ed25519 sign "
              f"{s['ed25519_sign']:,.0f}/s | — |")  # fmt: skip
        print(f"| offline verifications/s, one core (no target) | decode_and_verify {s['decode_and_verify']:,.0f}/s;"
              f" Ed25519 verify {s['ed25519_verify']:,.0f}/s | — |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
