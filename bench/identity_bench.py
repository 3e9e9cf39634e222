"""Identity and backbone benchmarks (``make bench``): token verifications/s and logins/s on one
core, and the outbox relay's events/s into JetStream (SQLite, and PostgreSQL when
BENCH_POSTGRES_URL is set). Prints a markdown table to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from kit.auth import TokenVerifier
from kit.bus import Bus
from kit.db import make_engine, make_sessionmaker
from kit.events import envelope
from kit.migrate import upgrade
from kit.natsd import NatsServer, free_port
from kit.outbox import OutboxRelay

ID = "11010519491231002X"


async def bench_token_verification(seconds: float = 3.0, cached: bool = False) -> float:
    """Verifications per second of one EdDSA access token in this one process (one core): the
    full check (signature, claims) every time, or with the verifier's verified-token cache."""
    import jwt
    from cryptography.hazmat.primitives import serialization

    from contracts.events.identity import PersonRegistered  # noqa: F401  (warm imports)
    from services.identity.domain.claims import access_claims
    from services.identity.keys import _new_key

    key = _new_key(datetime.now(UTC))
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    claims = access_claims(
        subject=ID,
        kind="person",
        level=2,
        session_id="s",
        issuer="yiwang-identity",
        audience="yiwang",
        now=datetime.now(UTC),
        ttl=timedelta(minutes=10),
    )
    token = jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key.kid})

    async def keys():
        import json

        from kit.auth import public_keys_from_jwks

        return public_keys_from_jwks({"keys": [json.loads(key.public_jwk)]})

    verifier = TokenVerifier(keys, issuer="yiwang-identity", audience="yiwang")
    await verifier.verify(token)
    check = verifier.verify if cached else verifier._verify_uncached
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(200):
            await check(token)
        count += 200
    return count / (time.perf_counter() - started)


async def bench_logins(workdir: Path, nats_url: str, seconds: float = 8.0, concurrency: int = 8) -> tuple[float, float]:
    """Password logins per second against one uvicorn worker (argon2id at the production cost)."""
    port = free_port()
    env = {
        **os.environ,
        "IDENTITY_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'identity.db'}",
        "IDENTITY_NATS_URL": nats_url,
        "IDENTITY_LOG_LEVEL": "WARNING",
        "IDENTITY_SANDBOX_DELAY_MS": "0",
        "IDENTITY_SMS_RESEND_INTERVAL_SECONDS": "0",
    }
    subprocess.run([sys.executable, "-m", "kit.migrate", "services.identity"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "services.identity.main:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            async with http.post(f"{base}/sms-codes", json={"mobile": "13800138000", "purpose": "register"}):
                pass
            async with http.get(f"{base}/sandbox/sms", params={"mobile": "13800138000"}) as response:
                import re

                code = re.search(r"\d{6}", (await response.json())[0]["text"]).group(0)
            body = {"id_number": ID, "name": "张三", "mobile": "13800138000", "password": "secret123", "sms_code": code}
            async with http.post(f"{base}/register", json=body) as response:
                assert response.status == 201, await response.text()
            login = {"method": "password", "login": ID, "password": "secret123"}
            latencies: list[float] = []
            deadline = time.perf_counter() + seconds

            async def worker():
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    async with http.post(f"{base}/sessions", json=login) as response:
                        assert response.status == 201
                        await response.read()
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        return len(latencies) / elapsed, latencies[len(latencies) // 2] * 1000
    finally:
        server.terminate()
        server.wait()


async def bench_relay(database_url: str, nats_url: str, events: int = 20000) -> float:
    """Events per second from a filled outbox into JetStream, acknowledged and marked published."""
    from contracts.events.identity import PersonRegistered
    from services.identity.models import outbox

    await asyncio.to_thread(upgrade, "services.identity", database_url)
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with maker() as session, session.begin():
        rows = []
        for _ in range(events):
            event = envelope(PersonRegistered(id_number=ID, level=1, registered_at=now), source="/bench", subject=ID)
            rows.append(
                {
                    "event_id": event.id,
                    "nats_subject": "identity.person.registered",
                    "event_type": event.type,
                    "payload": event.model_dump_json(),
                    "created_at": now,
                    "attempts": 0,
                }
            )
        await session.execute(outbox.table.insert(), rows)
    bus = Bus(nats_url, name="bench", streams={"IDENTITY": ["identity.>"]})
    await bus.start()
    await bus.wait_connected(10)
    relay = OutboxRelay(maker, outbox, bus, batch_size=500)
    started = time.perf_counter()
    published = 0
    while published < events:
        published += await relay.publish_pending()
    elapsed = time.perf_counter() - started
    await bus.close()
    await engine.dispose()
    return events / elapsed


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = NatsServer(workdir / "nats").start()
        try:
            verify = await bench_token_verification()
            verify_cached = await bench_token_verification(cached=True)
            logins, login_p50 = await bench_logins(workdir, server.url)
            relay_sqlite = await bench_relay(f"sqlite+aiosqlite:///{workdir / 'relay.db'}", server.url)
            relay_pg = None
            pg = os.environ.get("BENCH_POSTGRES_URL")
            if pg:
                import asyncpg
                from sqlalchemy.engine import make_url

                name = f"yiwang_bench_{uuid.uuid4().hex[:8]}"
                admin = make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False)
                connection = await asyncpg.connect(admin)
                await connection.execute(f'CREATE DATABASE "{name}"')
                try:
                    relay_pg = await bench_relay(
                        make_url(pg).set(drivername="postgresql+asyncpg", database=name).render_as_string(False),
                        server.url,
                    )
                finally:
                    await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                    await connection.close()
        finally:
            server.stop()
    print(f"| token verifications/s, full EdDSA check (one core, in-process) | {verify:,.0f} |")
    print(f"| token verifications/s, verified-token cache hit (one core, in-process) | {verify_cached:,.0f} |")
    print(
        f"| password logins/s (one uvicorn worker, argon2id t=3 m=64MiB, c=8) | {logins:,.1f} (p50 {login_p50:.0f} ms) |"
    )
    print(f"| outbox relay events/s into JetStream, SQLite | {relay_sqlite:,.0f} |")
    if relay_pg is not None:
        print(f"| outbox relay events/s into JetStream, PostgreSQL | {relay_pg:,.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
