"""kit.driver: Core statements on the driver give what SQLAlchemy gives, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError, StatementError

from kit.db import UtcDateTime, make_engine
from kit.driver import Driver, Query
from kit.events import CloudEvent
from kit.outbox import Outbox, make_outbox_table

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(40), nullable=False),
    Column("state", String(20), nullable=False, server_default="new"),
    Column("at", UtcDateTime, nullable=True),
    Column("data", JSON, nullable=True),
    Column("small", Integer, nullable=True),
)
outbox = Outbox(make_outbox_table(metadata))

ADD = Query(
    insert(things).values(name=bindparam("name"), at=bindparam("at"), data=bindparam("data")).returning(things.c.id)
)
BY_ID = Query(select(things.c.name, things.c.state, things.c.at, things.c.data).where(things.c.id == bindparam("id")))
NEW_NAMES = Query(select(things.c.name).where(things.c.state == "new").order_by(things.c.id))
IN_IDS = Query(select(things.c.name).where(things.c.id.in_(bindparam("ids", expanding=True))))
SET_STATE = Query(update(things).where(things.c.id == bindparam("thing")).values(state=bindparam("new_state")))
SET_SMALL = Query(update(things).where(things.c.id == bindparam("thing")).values(small=bindparam("number")))
COUNT = Query(select(func.count()).select_from(things))


@pytest.fixture
async def driver(database_url):
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    driver = Driver(engine, pool_size=2)
    await driver.start()
    yield driver
    await driver.close()
    await engine.dispose()


async def test_values_round_trip_as_sqlalchemy_gives_them(driver):
    at = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    async with driver.transaction() as tx:
        new_id = await tx.fetchval(ADD, {"name": "许可", "at": at, "data": {"a": [1, "二"]}})
    row = await driver.fetchrow(BY_ID, {"id": new_id})
    assert row["name"] == "许可" and row["state"] == "new"  # the server default applied
    assert row["at"] == at and row["at"].tzinfo is not None  # UtcDateTime's processors ran
    assert row["data"] == {"a": [1, "二"]}  # JSON decoded
    async with driver.engine.connect() as connection:  # what SQLAlchemy itself reads back
        orm = (await connection.execute(BY_ID.statement, {"id": new_id})).mappings().one()
    assert dict(orm) == {key: row[key] for key in ("name", "state", "at", "data")}
    assert await driver.fetchrow(BY_ID, {"id": new_id + 1000}) is None


async def test_a_fixed_value_in_the_statement_is_bound_and_writes_count_rows(driver):
    async with driver.transaction() as tx:
        first = await tx.fetchval(ADD, {"name": "a", "at": None, "data": None})
        await tx.fetchval(ADD, {"name": "b", "at": None, "data": None})
        assert await tx.execute(SET_STATE, {"thing": first, "new_state": "done"}) == 1
        assert await tx.execute(SET_STATE, {"thing": first + 1000, "new_state": "done"}) == 0
    assert [row["name"] for row in await driver.fetch(NEW_NAMES)] == ["b"]


async def test_a_failed_block_writes_nothing_and_runs_no_hooks(driver):
    woken = []
    driver.on_commit.append(lambda tx: woken.append(tx.info.get("mark")))
    with pytest.raises(RuntimeError):
        async with driver.transaction() as tx:
            await tx.fetchval(ADD, {"name": "gone", "at": None, "data": None})
            tx.info["mark"] = "x"
            raise RuntimeError("handler failed")
    assert await driver.fetchval(COUNT) == 0 and woken == []
    async with driver.transaction() as tx:
        await tx.fetchval(ADD, {"name": "kept", "at": None, "data": None})
        tx.info["mark"] = "y"
        tx.after_commit.append(lambda: woken.append("after"))
    assert await driver.fetchval(COUNT) == 1 and woken == ["y", "after"]


async def test_a_value_the_database_refuses_is_sqlalchemys_error(driver):
    async with driver.transaction() as tx:
        new_id = await tx.fetchval(ADD, {"name": "n", "at": None, "data": None})
    if driver.is_postgresql:  # SQLite stores any integer; PostgreSQL refuses one beyond int4
        with pytest.raises(DBAPIError):
            async with driver.transaction() as tx:
                await tx.execute(SET_SMALL, {"thing": new_id, "number": 2**40})
    with pytest.raises((KeyError, StatementError)):  # a parameter the statement needs and the call left out
        await driver.fetchrow(BY_ID, {})


async def test_expanding_in_is_refused_where_the_driver_runs_it(driver):
    if not driver.is_postgresql:
        assert await driver.fetch(IN_IDS, {"ids": [1, 2]}) == []  # SQLite runs through SQLAlchemy
        return
    with pytest.raises(ValueError, match="ANY"):
        await driver.fetch(IN_IDS, {"ids": [1, 2]})


async def test_outbox_rows_written_in_a_transaction_wake_the_hook(driver):
    seen = []
    driver.on_commit.append(lambda tx: seen.append(tx.info.pop("outbox_dirty", False)))
    event = CloudEvent(source="test", type="yiwang.test.thing.created.v1", subject="1", data={"n": 1})
    async with driver.transaction() as tx:
        await outbox.add_to(tx, event)
    async with driver.engine.connect() as connection:
        rows = (await connection.execute(select(outbox.table))).mappings().all()
    assert [(r["event_id"], r["event_type"], r["published_at"]) for r in rows] == [(event.id, event.type, None)]
    assert seen == [True]


async def test_inside_a_transaction_the_driver_itself_refuses_statements(driver):
    async with driver.transaction() as tx:
        await tx.fetchval(ADD, {"name": "a", "at": None, "data": None})
        with pytest.raises(RuntimeError, match="use the transaction's"):
            await driver.fetch(NEW_NAMES)  # a second pooled connection while holding one
        assert [row["name"] for row in await tx.fetch(NEW_NAMES)] == ["a"]
    assert [row["name"] for row in await driver.fetch(NEW_NAMES)] == ["a"]  # and after it, again


async def test_single_writes_one_statement_and_wakes_the_hooks(driver):
    woken = []
    driver.on_commit.append(lambda tx: woken.append(tx.info.pop("mark", None)))
    async with driver.single() as tx:
        new_id = await tx.fetchval(ADD, {"name": "一", "at": None, "data": {"k": 1}})
        tx.info["mark"] = "one"
        tx.after_commit.append(lambda: woken.append("after"))
        with pytest.raises(RuntimeError, match="one statement"):
            await tx.execute(SET_STATE, {"thing": new_id, "new_state": "done"})
        with pytest.raises(RuntimeError, match="use the transaction's"):
            await driver.fetch(NEW_NAMES)
    assert woken == ["one", "after"]
    assert (await driver.fetchrow(BY_ID, {"id": new_id}))["state"] == "new"  # the refused UPDATE never ran


async def test_single_after_its_statement_a_failed_block_keeps_the_write_on_postgresql_only(driver):
    """Autocommit: the statement is committed when it returns (no BEGIN before it to roll back)."""
    woken = []
    driver.on_commit.append(lambda tx: woken.append("hook"))
    with pytest.raises(LookupError):
        async with driver.single() as tx:
            await tx.fetchval(ADD, {"name": "written", "at": None, "data": None})
            raise LookupError("after the statement")
    expected = 1 if driver.is_postgresql else 0  # committed when it returned / rolled back with the block
    assert await driver.fetchval(COUNT) == expected and woken == ["hook"] * expected
    if driver.is_postgresql:
        with pytest.raises(DBAPIError):  # a statement that fails: nothing written, no hook
            async with driver.single() as tx:
                await tx.execute(SET_SMALL, {"thing": 1, "number": 2**40})
        assert woken == ["hook"]
