"""The transactional outbox and the relay that publishes it to JetStream.

An event is a row written in the same transaction as the state change it describes. The relay
publishes unpublished rows in id order with ``Nats-Msg-Id`` = event id, marks them published, and
while NATS is away keeps retrying with backoff: nothing committed is lost, and a publish whose ack
was lost is deduplicated by JetStream (and, beyond its window, by the consumer's inbox).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    event,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.bus import Bus, NotConnected
from kit.db import UtcDateTime
from kit.driver import Query, Transaction
from kit.events import CloudEvent, nats_subject_for
from kit.tasks import BatchLoop

log = logging.getLogger("yiwang.outbox")


def make_outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("nats_subject", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("published_at", UtcDateTime(), nullable=True, index=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", String(500), nullable=True),
    )


class Outbox:
    """What a service's code calls to publish: ``await outbox.add(session, event)``."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._insert = table.insert()  # built once, executed with parameters (compiled once)
        # Every column but the id: one that ``row`` leaves out goes in as NULL.
        self._columns = [column.name for column in table.columns if column.name != "id"]
        self._driver_insert = Query(table.insert().values({name: bindparam(name) for name in self._columns}))

    async def add(self, session: AsyncSession, event_: CloudEvent) -> None:
        await session.execute(self._insert, self.row(event_))
        self.touched(session)

    async def add_to(self, transaction: Transaction, event_: CloudEvent) -> None:
        """The same in a ``kit.driver`` transaction (hot paths): the relay wakes when it commits."""
        row = self.row(event_)
        await transaction.execute(self._driver_insert, {name: row.get(name) for name in self._columns})
        transaction.info["outbox_dirty"] = True

    @staticmethod
    def row(event_: CloudEvent) -> dict:
        """The outbox row of an event."""
        return {
            "event_id": event_.id,
            "nats_subject": nats_subject_for(event_.type),
            "event_type": event_.type,
            "payload": event_.model_dump_json(),
            "created_at": datetime.now(UTC),
            "attempts": 0,
        }

    @staticmethod
    def touched(session: AsyncSession) -> None:
        """This session wrote outbox rows: the relay is woken when it commits."""
        session.info["outbox_dirty"] = True


class OutboxRelay(BatchLoop):
    """Publishes committed outbox rows. Replicas share the work through ``FOR UPDATE SKIP LOCKED``."""

    task_name = "outbox-relay"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        bus: Bus,
        *,
        batch_size: int = 200,
        max_backoff: float = 5.0,
        poll_interval: float = 1.0,
        publish_timeout: float = 2.0,
        linger: float = 0.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.table = outbox.table
        self.bus = bus
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.linger = linger
        self.published_total = 0
        sync_class = sessionmaker.kw.get("sync_session_class")
        if sync_class is not None:
            event.listen(sync_class, "after_commit", self._after_commit)

    def _after_commit(self, session) -> None:
        if session.info.pop("outbox_dirty", False):
            self.wake()

    def after_driver_commit(self, transaction: Transaction) -> None:
        """``kit.driver.Driver.on_commit``: a hot path's transaction wrote outbox rows."""
        if transaction.info.pop("outbox_dirty", False):
            self.wake()

    async def batch(self) -> int:
        return await self.publish_pending()

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows were published. Raises while NATS is away."""
        js = await self.bus.jetstream()
        async with self.sessionmaker() as session:
            async with session.begin():
                query = (
                    select(self.table.c.id, self.table.c.event_id, self.table.c.nats_subject, self.table.c.payload)
                    .where(self.table.c.published_at.is_(None))
                    .order_by(self.table.c.id)
                    .limit(self.batch_size)
                )
                if session.get_bind().dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                rows = (await session.execute(query)).all()
                if not rows:
                    return 0
                # Publish the batch pipelined (one connection, sent in order), then await the acks.
                futures = [
                    js.publish(
                        row.nats_subject,
                        row.payload.encode(),
                        headers={"Nats-Msg-Id": row.event_id},
                        timeout=self.publish_timeout,
                    )
                    for row in rows
                ]
                results = await asyncio.gather(*futures, return_exceptions=True)
                done = [
                    row.id for row, result in zip(rows, results, strict=True) if not isinstance(result, BaseException)
                ]
                failed = [
                    (row.id, result)
                    for row, result in zip(rows, results, strict=True)
                    if isinstance(result, BaseException)
                ]
                now = datetime.now(UTC)
                if done:
                    await session.execute(update(self.table).where(self.table.c.id.in_(done)).values(published_at=now))
                for row_id, error in failed:
                    await session.execute(
                        update(self.table)
                        .where(self.table.c.id == row_id)
                        .values(attempts=self.table.c.attempts + 1, last_error=f"{type(error).__name__}: {error}"[:500])
                    )
        self.published_total += len(done)
        if failed:
            raise NotConnected(f"{len(failed)} of {len(rows)} events not acknowledged")
        return len(done)

    async def pending_count(self) -> int:
        from sqlalchemy import func

        async with self.sessionmaker() as session:
            return (
                await session.execute(
                    select(func.count()).select_from(self.table).where(self.table.c.published_at.is_(None))
                )
            ).scalar_one()
