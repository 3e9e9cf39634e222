"""Durable JetStream pull consumers that apply each event once, and the dead-letter path.

Each message is applied in one database transaction together with an inbox row keyed by
(consumer, event id): a redelivery finds the row and changes nothing. A handler that keeps failing
is retried with backoff up to ``max_deliveries`` times, then copied to the dead-letter stream and
terminated; a message that is not a valid event goes there at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.bus import Bus
from kit.db import UtcDateTime
from kit.events import CloudEvent
from kit.tasks import BackgroundLoop

log = logging.getLogger("yiwang.consumer")

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


# After the first message, what else is pending is fetched in batches that linger this long at most.
DRAIN_SECONDS = 0.02


def make_inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("applied_at", UtcDateTime(), nullable=False),
    )


def dead_letter_subject(consumer: str) -> str:
    return f"deadletter.{consumer}"


class PoisonEvent(Exception):
    """The message is not an event this consumer can ever apply."""


class EventConsumer(BackgroundLoop):
    """One durable consumer: ``handlers`` maps an event type to ``async def handler(session, event)``."""

    def __init__(
        self,
        *,
        bus: Bus,
        sessionmaker: async_sessionmaker[AsyncSession],
        inbox: Table,
        durable: str,
        stream: str,
        filter_subject: str,
        handlers: dict[str, Handler],
        max_deliveries: int = 5,
        ack_wait: float = 30.0,
        batch: int = 50,
        retry_delay: float = 0.5,
        concurrency: int = 1,
    ) -> None:
        """``concurrency``: messages of one fetched batch applied at once, each in its own
        transaction with its inbox row and acked after its commit (exactly once holds as before;
        the ORDER between them does not). Keep 1 where events of one entity must apply in order."""
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.inbox = inbox
        self.durable = durable
        self.stream = stream
        self.filter_subject = filter_subject
        self.handlers = handlers
        self.max_deliveries = max_deliveries
        self.ack_wait = ack_wait
        self.batch = batch
        self.retry_delay = retry_delay
        self.concurrency = max(1, concurrency)
        self.task_name = f"consumer-{durable}"
        self.applied = 0
        self.duplicates = 0
        self.dead_lettered = 0

    async def _subscribe(self):
        js = await self.bus.jetstream()
        await js.find_stream_name_by_subject(self.filter_subject)  # fails early if no stream yet
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            # A safety net above our own bound: we dead-letter on the last attempt ourselves.
            max_deliver=self.max_deliveries + 1,
            filter_subject=self.filter_subject,
        )
        return await js.pull_subscribe(self.filter_subject, durable=self.durable, stream=self.stream, config=config)

    async def run(self) -> None:
        subscription = None
        backoff = 0.2
        while True:
            try:
                if subscription is None:
                    subscription = await self._subscribe()
                    backoff = 0.2
                try:
                    # A pull for one is answered by the first message to arrive; a pull for a whole
                    # batch would hold that message until the batch filled or the second ran out.
                    messages = await subscription.fetch(1, timeout=1)
                except TimeoutError:
                    continue  # nothing pending: not an error
                while messages:
                    if self.concurrency > 1 and len(messages) > 1:
                        await self._process_concurrently(messages)
                    else:
                        for message in messages:
                            await self.process(message)
                    if self.batch <= 1:
                        break
                    try:  # then what is pending already, a batch at a time, lingering only briefly
                        messages = await subscription.fetch(self.batch, timeout=DRAIN_SECONDS)
                    except TimeoutError:
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer %s: %s; retrying in %.1fs", self.durable, type(exc).__name__, backoff)
                subscription = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _process_concurrently(self, messages: list[Msg]) -> None:
        """A backlog's messages, at most ``concurrency`` at a time; the next fetch waits for all."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(message: Msg) -> None:
            async with gate:
                await self.process(message)

        await asyncio.gather(*(one(message) for message in messages))

    def _parse(self, message: Msg) -> CloudEvent:
        try:
            return CloudEvent.model_validate_json(message.data)
        except ValidationError as exc:
            raise PoisonEvent(f"not a CloudEvent: {exc.error_count()} errors") from exc

    async def process(self, message: Msg) -> None:
        """Apply one message once; ack, retry later, or dead-letter it."""
        try:
            cloud_event = self._parse(message)
            handler = self.handlers.get(cloud_event.type)
            if handler is None:
                await message.ack()  # a type this consumer does not handle: not its business
                return
            applied = await self._apply_once(cloud_event, handler)
            if applied:
                self.applied += 1
            else:
                self.duplicates += 1
            await message.ack()
        except PoisonEvent as exc:
            await self._dead_letter(message, str(exc))
        except Exception as exc:
            deliveries = message.metadata.num_delivered if message.metadata else 1
            if deliveries >= self.max_deliveries:
                await self._dead_letter(message, f"{type(exc).__name__}: {exc}")
            else:
                log.warning("consumer %s: attempt %d failed: %s", self.durable, deliveries, type(exc).__name__)
                await message.nak(delay=self.retry_delay * (2 ** (deliveries - 1)))

    async def _apply_once(self, cloud_event: CloudEvent, handler: Handler) -> bool:
        async with self.sessionmaker() as session:
            async with session.begin():
                dialect = session.get_bind().dialect.name
                insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
                statement = (
                    insert_fn(self.inbox)
                    .values(
                        consumer=self.durable,
                        event_id=cloud_event.id,
                        event_type=cloud_event.type,
                        applied_at=datetime.now(UTC),
                    )
                    .on_conflict_do_nothing()
                )
                result = await session.execute(statement)
                if getattr(result, "rowcount", 1) == 0:
                    return False
                await handler(session, cloud_event)
        return True

    async def _dead_letter(self, message: Msg, reason: str) -> None:
        js = await self.bus.jetstream()
        deliveries = message.metadata.num_delivered if message.metadata else 1
        sequence = message.metadata.sequence.stream if message.metadata else 0
        headers = {
            "Yiwang-Original-Subject": message.subject,
            "Yiwang-Consumer": self.durable,
            "Yiwang-Error": reason[:500],
            "Yiwang-Deliveries": str(deliveries),
            "Nats-Msg-Id": f"dlq:{self.durable}:{self.stream}:{sequence}",
        }
        await js.publish(dead_letter_subject(self.durable), message.data, headers=headers)
        await message.term()
        self.dead_lettered += 1
        log.error(
            "consumer %s: dead-lettered %s after %d deliveries: %s", self.durable, message.subject, deliveries, reason
        )


def one_durable_each(
    app: Any,
    *,
    inbox: Table,
    handlers: Mapping[str, Handler],
    durables: Iterable[tuple[str, str, str, str]],
    max_deliveries: int,
    batch: int = 50,
) -> list[EventConsumer]:
    """One durable consumer per ``(durable, stream, subject, event type)`` on the app's bus and
    sessions, each applying only its own event type with ``handlers[event type]`` (one subject's
    backlog never holds up another's)."""
    return [
        EventConsumer(
            bus=app.state.bus,
            sessionmaker=app.state.sessionmaker,
            inbox=inbox,
            max_deliveries=max_deliveries,
            batch=batch,
            durable=durable,
            stream=stream,
            filter_subject=subject,
            handlers={event_type: handlers[event_type]},
        )  # fmt: skip
        for durable, stream, subject, event_type in durables
    ]
