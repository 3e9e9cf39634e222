"""Catalog search and detail latency on a 50,000-matter catalog, in-process.

    .venv/bin/python -m bench.catalog_bench [--matters 50000] [--requests 400]

Loads the synthetic catalog (services.catalog.synthetic) into a fresh SQLite file and, when
BENCH_POSTGRES_URL is set (e.g. postgresql://postgres@127.0.0.1:5432/postgres), into a database
it creates and drops on that server. Then it calls the catalog ASGI app in-process through httpx
(routing, validation, session per request, JSON: everything but the socket) with a mix of
searches (Chinese substrings, words, pinyin, initials, filters, pages) and matter details, one at
a time, and reports p50/p95/p99 per kind. Targets: search p95 ≤ 20 ms, detail p95 ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

QUERIES = [
    {"q": "营业执照"},
    {"q": "yyzz"},
    {"q": "营业"},
    {"q": "许可证 变更"},
    {"q": "shehuibaozhang"},
    {"q": "jdcjsz"},
    {"q": "户口"},
    {"q": "食品经营许可证核发"},
    {"q": "spjyxkz", "audience": "enterprise"},
    {"q": "登记", "department": "SCJGJ", "online": "true"},
    {"q": "注销", "depth": "4", "max_visits": "0"},
    {"department": "RSJ", "audience": "person"},
    {"theme": "start_business", "type": "行政许可"},
    {"theme": "birth", "page": "3"},
    {"q": "证", "page": "5", "page_size": "50"},
    {},
    {"q": "不存在的事项名称"},
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(database_url: str, matters: int, requests: int) -> dict:
    from kit.migrate import upgrade
    from services.catalog.main import create_app
    from services.catalog.settings import Settings
    from services.catalog.synthetic import SUBJECTS, load

    started = time.perf_counter()
    await asyncio.to_thread(upgrade, "services.catalog", database_url)
    await load(database_url, matters)
    load_seconds = time.perf_counter() - started
    settings = Settings(database_url=database_url, nats_enabled=False, log_json=False, log_level="WARNING")
    app = create_app(settings)
    rng = random.Random(1)
    timings: dict[str, list[float]] = {"search": [], "detail": []}
    per_query: dict[str, list[float]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
            codes = [
                f"SYN-{d}-{i:07d}"
                for i, d in (
                    (i, ["SCJGJ", "BDCDJ", "SWJ", "RSJ", "GAJ", "WJW", "MZJ", "YBJ"][i % 8]) for i in range(matters)
                )
            ]
            for warm in range(20):  # connections, statement caches
                await client.get("/matters", params=QUERIES[warm % len(QUERIES)])
                await client.get(f"/matters/{codes[warm]}")
            for n in range(requests):
                params = QUERIES[n % len(QUERIES)] if n % 4 else {"q": rng.choice(SUBJECTS)[:2]}
                t = time.perf_counter()
                response = await client.get("/matters", params=params)
                elapsed = (time.perf_counter() - t) * 1000
                assert response.status_code == 200, response.text
                timings["search"].append(elapsed)
                per_query.setdefault(json.dumps(params, ensure_ascii=False), []).append(elapsed)
                code = rng.choice(codes)
                t = time.perf_counter()
                response = await client.get(f"/matters/{code}")
                timings["detail"].append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, response.text
    result = {"matters": matters, "load_seconds": round(load_seconds, 1)}
    for kind, values in timings.items():
        result[kind] = {
            "n": len(values),
            "p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(percentile(values, 95), 2),
            "p99_ms": round(percentile(values, 99), 2),
        }
    result["slowest_queries_p95_ms"] = dict(
        sorted(((k, round(percentile(v, 95), 2)) for k, v in per_query.items()), key=lambda kv: -kv[1])[:4]
    )
    return result


async def with_postgres(server_url: str, matters: int, requests: int) -> dict:
    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"yiwang_bench_catalog_{uuid.uuid4().hex[:8]}"
    admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(admin)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database=name)
    try:
        return await measure(url.render_as_string(hide_password=False), matters, requests)
    finally:
        connection = await asyncpg.connect(admin)
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--matters", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    results = {}
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'catalog.db'}"
            results["sqlite"] = asyncio.run(measure(url, args.matters, args.requests))
            print(json.dumps({"sqlite": results["sqlite"]}, ensure_ascii=False, indent=2), flush=True)
    server = os.environ.get("BENCH_POSTGRES_URL")
    if server:
        results["postgresql"] = asyncio.run(with_postgres(server, args.matters, args.requests))
        print(json.dumps({"postgresql": results["postgresql"]}, ensure_ascii=False, indent=2), flush=True)


if __name__ == "__main__":
    main()
