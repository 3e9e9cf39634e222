"""The ceiling caseflow's benchmark compares itself with (DESIGN §7): a bare FastAPI endpoint
that inserts one case row and one outbox row in one transaction on PostgreSQL, nothing else.

    BARE_DATABASE_URL=postgresql+asyncpg://… uvicorn bench.caseflow_bare:create_app --factory
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table

from kit.db import UtcDateTime, make_engine, make_sessionmaker
from kit.deps import DbSession
from kit.events import CloudEvent
from kit.outbox import Outbox, make_outbox_table

metadata = MetaData()
bare_cases = Table(
    "bare_cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_no", String(40), nullable=False, unique=True),
    Column("applicant", String(18), nullable=False),
    Column("form", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
outbox = Outbox(make_outbox_table(metadata))


def create_app() -> FastAPI:
    url = os.environ["BARE_DATABASE_URL"]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = make_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        app.state.sessionmaker = make_sessionmaker(engine)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/cases", status_code=201)
    async def submit(request: Request, session: DbSession) -> dict:
        body = await request.json()
        case_no = uuid.uuid4().hex
        now = datetime.now(UTC)
        await session.execute(
            bare_cases.insert().values(case_no=case_no, applicant="11010519491231002X", form=body, created_at=now)
        )
        event = CloudEvent(
            source="/bench", type="yiwang.caseflow.case.submitted.v1", subject=case_no, data={"case_no": case_no}
        )
        await outbox.add(session, event)
        return {"case_no": case_no, "form": json.dumps(body)[:10]}

    return app
