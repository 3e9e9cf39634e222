"""The event backbone against a real nats-server and real databases: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import ClassVar

import nats
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text, update

from kit.bus import DEAD_LETTER_STREAM, Bus
from kit.consumer import EventConsumer, dead_letter_subject, make_inbox_table
from kit.db import make_engine, make_sessionmaker
from kit.deadletter import list_dead_letters, replay_dead_letter
from kit.events import EventData, envelope
from kit.natsd import NatsServer
from kit.outbox import Outbox, OutboxRelay, make_outbox_table


class WidgetMade(EventData):
    event_type: ClassVar[str] = "yiwang.testsvc.widget.made.v1"
    nats_subject: ClassVar[str] = "testsvc.widget.made"
    widget: str


metadata = MetaData()
widgets = Table("widgets", metadata, Column("name", String(50), primary_key=True), Column("count", Integer))
outbox = Outbox(make_outbox_table(metadata))
inbox = make_inbox_table(metadata)


async def until(predicate, timeout: float = 15.0, interval: float = 0.05):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


@pytest.fixture
async def db(database_url):
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def make_widget(maker, name: str) -> str:
    """A state change and its event, in one transaction."""
    event = envelope(WidgetMade(widget=name), source="/yiwang/testsvc", subject=name)
    async with maker() as session, session.begin():
        await session.execute(widgets.insert().values(name=name, count=0))
        await outbox.add(session, event)
    return event.id


async def stream_messages(url: str, stream: str) -> list:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        return (
            [await js.get_msg(stream, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)]
            if info.state.messages
            else []
        )
    finally:
        await nc.close()


async def test_event_committed_while_nats_is_down_arrives_once_after_restart(db, tmp_path):
    server = NatsServer(tmp_path / "nats").start()
    bus = Bus(server.url, name="testsvc", streams={"TESTSVC": ["testsvc.>"]})
    await bus.start()
    await bus.wait_connected(10)
    relay = OutboxRelay(db, outbox, bus, max_backoff=0.5, publish_timeout=0.5)
    await relay.start()
    try:
        first = await make_widget(db, "before")
        await until(lambda: _published(db, first))

        server.stop()
        during = await make_widget(db, "during-outage")
        await asyncio.sleep(1.5)  # the relay keeps trying and failing meanwhile
        assert not await _published(db, during)
        assert await relay.pending_count() == 1

        server.start()  # same port, same store directory
        await until(lambda: _published(db, during), timeout=30)
        messages = await stream_messages(server.url, "TESTSVC")
        ids = [json.loads(m.data)["id"] for m in messages]
        assert ids.count(during) == 1 and ids.count(first) == 1
        assert {m.headers["Nats-Msg-Id"] for m in messages} == {first, during}
    finally:
        await relay.stop()
        await bus.close()
        server.stop()


async def _published(maker, event_id: str) -> bool:
    table = outbox.table
    async with maker() as session:
        row = (await session.execute(select(table.c.published_at).where(table.c.event_id == event_id))).one()
    return row.published_at is not None


async def _count(maker, name: str) -> int:
    async with maker() as session:
        return (await session.execute(select(widgets.c.count).where(widgets.c.name == name))).scalar_one()


def counting_consumer(bus, maker, *, fail_times: dict | None = None, durable="widget-counter", max_deliveries=3):
    fail_times = fail_times if fail_times is not None else {}

    async def handle(session, event):
        name = event.data["widget"]
        if fail_times.get(name, 0) > 0:
            fail_times[name] -= 1
            raise RuntimeError("downstream not ready")
        await session.execute(update(widgets).where(widgets.c.name == name).values(count=widgets.c.count + 1))

    return EventConsumer(
        bus=bus,
        sessionmaker=maker,
        inbox=inbox,
        durable=durable,
        stream="TESTSVC",
        filter_subject="testsvc.>",
        handlers={WidgetMade.event_type: handle},
        max_deliveries=max_deliveries,
        retry_delay=0.05,
    )


@pytest.fixture
async def bus(nats_server, request):
    stream = "TESTSVC"
    bus = Bus(nats_server.url, name="testsvc", streams={stream: ["testsvc.>"]})
    await bus.start()
    await bus.wait_connected(10)
    js = await bus.jetstream()
    await js.purge_stream(stream)
    await js.purge_stream(DEAD_LETTER_STREAM)
    for info in await js.consumers_info(stream):
        await js.delete_consumer(stream, info.name)
    yield bus
    await bus.close()


async def test_redelivered_event_is_applied_once(db, bus):
    event_id = await make_widget(db, "w1")
    async with db() as session:
        payload = (await session.execute(select(outbox.table.c.payload))).scalar_one()
    js = await bus.jetstream()
    # The same event arrives twice with different message ids (a relay retry outside the
    # duplicate window, or a replay): JetStream keeps both, the inbox must apply one.
    await js.publish("testsvc.widget.made", payload.encode(), headers={"Nats-Msg-Id": event_id})
    await js.publish("testsvc.widget.made", payload.encode(), headers={"Nats-Msg-Id": event_id + ":again"})
    consumer = counting_consumer(bus, db)
    await consumer.start()
    try:
        await until(lambda: _true(consumer.applied + consumer.duplicates == 2))
        assert await _count(db, "w1") == 1
        assert consumer.applied == 1 and consumer.duplicates == 1
    finally:
        await consumer.stop()


async def _true(value: bool) -> bool:
    return value


async def test_failing_handler_is_retried_then_applied_once(db, bus):
    event_id = await make_widget(db, "flaky")
    async with db() as session:
        payload = (await session.execute(select(outbox.table.c.payload))).scalar_one()
    js = await bus.jetstream()
    await js.publish("testsvc.widget.made", payload.encode(), headers={"Nats-Msg-Id": event_id})
    consumer = counting_consumer(bus, db, fail_times={"flaky": 2}, max_deliveries=5)
    await consumer.start()
    try:
        await until(lambda: _true(consumer.applied == 1))
        assert await _count(db, "flaky") == 1
        assert consumer.dead_lettered == 0
    finally:
        await consumer.stop()


async def test_poison_events_land_in_the_dead_letter_stream_and_replay(db, bus):
    js = await bus.jetstream()
    await js.publish("testsvc.widget.made", b"{not json", headers={"Nats-Msg-Id": f"garbage-{event_id_hint()}"})
    event_id = await make_widget(db, "cursed")
    async with db() as session:
        payload = (await session.execute(select(outbox.table.c.payload))).scalar_one()
    await js.publish("testsvc.widget.made", payload.encode(), headers={"Nats-Msg-Id": event_id})
    fail_times = {"cursed": 10**6}  # fails on every delivery
    consumer = counting_consumer(bus, db, fail_times=fail_times, durable="widget-counter-dlq", max_deliveries=3)
    await consumer.start()
    try:
        await until(lambda: _true(consumer.dead_lettered == 2))
        letters = await list_dead_letters(js)
        assert len(letters) == 2
        assert all(letter.consumer == "widget-counter-dlq" for letter in letters)
        cursed = next(letter for letter in letters if event_id in letter.data)
        assert cursed.deliveries == 3 and "downstream not ready" in cursed.error
        assert "not a CloudEvent" in next(letter for letter in letters if letter is not cursed).error
        assert await _count(db, "cursed") == 0

        fail_times["cursed"] = 0  # the operator fixed the cause; replay it
        assert await replay_dead_letter(js, cursed.sequence) == "testsvc.widget.made"
        await until(lambda: _true(consumer.applied == 1))
        assert await _count(db, "cursed") == 1
        assert len(await list_dead_letters(js)) == 1  # the replayed one left the dead-letter stream
        assert dead_letter_subject("widget-counter-dlq") == "deadletter.widget-counter-dlq"
    finally:
        await consumer.stop()


def event_id_hint() -> str:
    import uuid

    return uuid.uuid4().hex


async def test_the_first_message_is_fetched_alone_then_the_backlog_in_batches(db, bus):
    """nats-py holds a batch pull's first message until the batch fills or the pull times out: the
    consumer asks for one (answered as soon as it arrives), then drains what is pending a batch at a
    time — every event applied once, in order of the stream."""
    js = await bus.jetstream()
    for index in range(120):
        event_id = await make_widget(db, f"b{index}")
        async with db() as session:
            payload = (
                await session.execute(select(outbox.table.c.payload).where(outbox.table.c.event_id == event_id))
            ).scalar_one()
        await js.publish("testsvc.widget.made", payload.encode(), headers={"Nats-Msg-Id": event_id})
    consumer = counting_consumer(bus, db, durable="widget-batches")
    asked: list[int] = []
    subscribe = consumer._subscribe

    async def recording_subscribe():
        subscription = await subscribe()
        fetch = subscription.fetch

        async def recorded(batch, *args, **kwargs):
            asked.append(batch)
            return await fetch(batch, *args, **kwargs)

        subscription.fetch = recorded
        return subscription

    consumer._subscribe = recording_subscribe
    await consumer.start()
    try:
        await until(lambda: _true(consumer.applied == 120))
        assert all([await _count(db, f"b{index}") == 1 for index in range(120)])
        assert asked[0] == 1 and asked[1] == consumer.batch  # one at once, then the backlog in batches
    finally:
        await consumer.stop()


async def test_a_backlog_applied_concurrently_is_still_applied_once_each(db, bus):
    """``concurrency``: a fetched backlog is applied several at a time, each in its own transaction;
    redeliveries among them (the same event under two message ids) still change nothing twice."""
    js = await bus.jetstream()
    for index in range(40):
        event_id = await make_widget(db, f"c{index}")
        async with db() as session:
            payload = (
                await session.execute(select(outbox.table.c.payload).where(outbox.table.c.event_id == event_id))
            ).scalar_one()
        for copy in ("", ":again"):
            await js.publish("testsvc.widget.made", payload.encode(), headers={"Nats-Msg-Id": event_id + copy})
    consumer = counting_consumer(bus, db, durable="widget-concurrent")
    consumer.concurrency = 4
    process = consumer.process
    in_flight = {"now": 0, "most": 0}

    async def counted(message):
        # (SQLite's single writer serialises the transactions themselves; PostgreSQL overlaps them.)
        in_flight["now"] += 1
        in_flight["most"] = max(in_flight["most"], in_flight["now"])
        try:
            await asyncio.sleep(0.01)  # an I/O wait, as a database round trip is
            await process(message)
        finally:
            in_flight["now"] -= 1

    consumer.process = counted
    await consumer.start()
    try:
        await until(lambda: _true(consumer.applied + consumer.duplicates == 80))
        assert all([await _count(db, f"c{index}") == 1 for index in range(40)])
        assert consumer.applied == 40 and consumer.duplicates == 40
        assert 1 < in_flight["most"] <= 4
    finally:
        await consumer.stop()


async def _published_count(maker) -> int:
    table = outbox.table
    async with maker() as session:
        return (
            await session.execute(select(func.count()).select_from(table).where(table.c.published_at.is_not(None)))
        ).scalar_one()


async def test_two_replicas_relays_and_consumers_publish_and_apply_each_event_once(db, bus, database_url, nats_server):
    """Two replicas of one service: two relays on one outbox, two consumers on one durable, each
    replica with its own bus. On PostgreSQL a third replica is killed in the middle of a batch: its
    rows stay locked (the others skip them, never wait) until its connection is gone, then they are
    published like the rest. Every event is in the stream once and applied once."""
    for index in range(200):
        await make_widget(db, f"r{index}")
    postgres = db.kw["bind"].dialect.name == "postgresql"
    holder = holder_engine = None
    if postgres:  # the killed replica: a relay's batch selected FOR UPDATE, never finished
        holder_engine = make_engine(database_url)
        holder = await holder_engine.connect()
        await holder.begin()
        await holder.execute(select(outbox.table.c.id).order_by(outbox.table.c.id).limit(50).with_for_update())
        holder_pid = await holder.scalar(text("SELECT pg_backend_pid()"))
    other_bus = Bus(nats_server.url, name="testsvc-2", streams={"TESTSVC": ["testsvc.>"]})
    await other_bus.start()
    await other_bus.wait_connected(10)
    relays = [OutboxRelay(db, outbox, each, batch_size=20, poll_interval=0.1) for each in (bus, other_bus)]
    consumers = [counting_consumer(each, db, durable="widget-replicas") for each in (bus, other_bus)]
    for task in [*relays, *consumers]:
        await task.start()
    try:
        if postgres:
            await until(lambda: _true_async(_published_count(db), 150))
            async with db() as session:
                first = (await session.execute(select(outbox.table.c.published_at).order_by(outbox.table.c.id)
                                               .limit(50))).scalars().all()  # fmt: skip
            assert all(at is None for at in first)  # still the dead replica's
            async with db() as session, session.begin():  # its process is gone: the server drops it
                await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder_pid})
        await until(lambda: _true_async(_published_count(db), 200), timeout=30)
        await until(lambda: _true(sum(c.applied for c in consumers) == 200), timeout=30)
        assert all([await _count(db, f"r{index}") == 1 for index in range(200)])
        messages = await stream_messages(nats_server.url, "TESTSVC")
        ids = [json.loads(m.data)["id"] for m in messages]
        assert len(ids) == len(set(ids)) == 200
    finally:
        for task in [*consumers, *relays]:
            await task.stop()
        await other_bus.close()
        if holder is not None and holder_engine is not None:
            with contextlib.suppress(Exception):  # terminated by the server already
                await holder.close()
            await holder_engine.dispose()


async def _true_async(count, wanted: int) -> bool:
    return await count >= wanted
