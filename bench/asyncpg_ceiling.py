"""The plain-stack ceiling every benchmark can run beside the service it measures (issue 15):
FastAPI + asyncpg, no ORM, no kit — what this machine's FastAPI and PostgreSQL can do at all.

- ``POST /cases``: one case row and one outbox row in one transaction (the write every caseflow
  submission and transition makes at least), answering 201 with a small JSON body;
- ``GET /cases/{id}``: one case row by primary key, answered as JSON (the shape of every
  detail read).

On start it creates its two tables in the database it is given (a fresh one, owned by the
bench) and, when the case table is empty, ``CEILING_SEED_ROWS`` rows (default 1000, ids 1..N)
for the read. ``bench/caseflow_bare.py`` is the other ceiling: the same write through the kit's
SQLAlchemy session, i.e. what the kit's plumbing costs before any caseflow rule runs.

    CEILING_DATABASE_URL=postgresql://… uvicorn bench.asyncpg_ceiling:create_app --factory

From a bench: ``base, process = start_ceiling(procs, dsn)`` (a free port, one uvicorn worker,
the same uvicorn flags as the services under test).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from sqlalchemy.engine import make_url

from bench.gateway_bench import Processes, uvicorn_args, wait_http
from kit.natsd import free_port

# The same columns as bench/caseflow_bare.py's case table and the kit's outbox table.
SCHEMA = """
CREATE TABLE IF NOT EXISTS ceiling_cases (
    id BIGSERIAL PRIMARY KEY,
    case_no VARCHAR(40) NOT NULL UNIQUE,
    applicant VARCHAR(18) NOT NULL,
    form JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ceiling_outbox (
    id BIGSERIAL PRIMARY KEY,
    event_id VARCHAR(36) NOT NULL UNIQUE,
    nats_subject VARCHAR(200) NOT NULL,
    event_type VARCHAR(200) NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR(500)
);
CREATE INDEX IF NOT EXISTS ceiling_outbox_published_at ON ceiling_outbox (published_at);
"""
SEED = """
INSERT INTO ceiling_cases (case_no, applicant, form, created_at)
SELECT 'SEED' || lpad(g::text, 20, '0'), '11010519491231002X', '{"business_scope": "餐饮服务"}', now()
FROM generate_series(1, $1::bigint) AS g
"""
INSERT_CASE = "INSERT INTO ceiling_cases (case_no, applicant, form, created_at) VALUES ($1, $2, $3, $4)"
INSERT_OUTBOX = (
    "INSERT INTO ceiling_outbox (event_id, nats_subject, event_type, payload, created_at, attempts) "
    "VALUES ($1, $2, $3, $4, $5, 0)"
)
SELECT_CASE = "SELECT id, case_no, applicant, form, created_at FROM ceiling_cases WHERE id = $1"
EVENT_TYPE = "yiwang.caseflow.case.submitted.v1"


def plain_dsn(url: str) -> str:
    """A libpq DSN from a SQLAlchemy URL (``postgresql+asyncpg://`` → ``postgresql://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _json_codec(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def create_app() -> FastAPI:
    """The ceiling app on ``CEILING_DATABASE_URL`` (a pool of 10, like the kit's engine)."""
    dsn = plain_dsn(os.environ["CEILING_DATABASE_URL"])
    seed_rows = int(os.environ.get("CEILING_SEED_ROWS", "1000"))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10, init=_json_codec)
        async with pool.acquire() as connection:
            await connection.execute(SCHEMA)
            if seed_rows and await connection.fetchval("SELECT count(*) FROM ceiling_cases") == 0:
                await connection.execute(SEED, seed_rows)
        app.state.pool = pool
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/cases", status_code=201)
    async def submit(request: Request) -> dict:
        body = await request.json()
        case_no = uuid.uuid4().hex
        now = datetime.now(UTC)
        event = {
            "specversion": "1.0", "id": str(uuid.uuid4()), "source": "/bench", "type": EVENT_TYPE,
            "subject": case_no, "time": now.isoformat(), "data": {"case_no": case_no},
        }  # fmt: skip
        async with app.state.pool.acquire() as connection, connection.transaction():
            await connection.execute(INSERT_CASE, case_no, "11010519491231002X", body, now)
            await connection.execute(INSERT_OUTBOX, event["id"], "bench.case.submitted", EVENT_TYPE, json.dumps(event), now)  # fmt: skip
        return {"case_no": case_no, "created_at": now}

    @app.get("/cases/{case_id}")
    async def read(case_id: int) -> dict:
        async with app.state.pool.acquire() as connection:
            row = await connection.fetchrow(SELECT_CASE, case_id)
        if row is None:
            raise HTTPException(404)
        return dict(row)

    return app


def start_ceiling(procs: Processes, database_url: str, name: str = "asyncpg-ceiling") -> tuple[str, subprocess.Popen]:
    """Start the ceiling under uvicorn on a free port against ``database_url`` (any PostgreSQL URL
    SQLAlchemy reads; a database of its own); returns its base URL and process once it answers."""
    port = free_port()
    process = procs.start(
        name, uvicorn_args("bench.asyncpg_ceiling:create_app", port), {"CEILING_DATABASE_URL": database_url}
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz")
    return base, process
