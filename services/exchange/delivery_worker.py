"""The delivery worker: sends queued webhooks, signed per Standard Webhooks, in order per case,
retried on the schedule until delivered or dead (ADR 0020). Safe with replicas.

- Each round claims due deliveries with ONE statement (``UPDATE … WHERE id IN (due rows, LIMIT
  n) RETURNING``; on PostgreSQL the due rows are picked ``FOR UPDATE SKIP LOCKED``; SQLite runs
  one writer at a time). A row is due when it is pending, its ``next_attempt_at`` has come, no
  worker holds it (``claimed_until``), its subscription is active, and no earlier delivery of the
  same subscription and case is still pending (domain/webhooks.py ``sendable``): so at most one
  delivery per case and subscription is ever in flight, and they arrive in ``sequence`` order.
  The claim counts the attempt and sets ``claimed_until``; no transaction is open while the
  department's system answers, and a crashed worker's rows come back when its claim runs out.
- The POST carries the stored body and ``webhook-id`` (the delivery id, the same on every try),
  ``webhook-timestamp`` (now, by the wall clock: receivers check it against theirs) and
  ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``, a second one with the previous secret
  during a rotation), made by the ``standardwebhooks`` library.
- A 2xx: delivered. Then the subscription's deliveries waiting for a retry are brought forward to
  now — the endpoint is back, and what it missed follows at once, in order. Anything else (an
  error status, a redirect, a timeout, no connection): the next try after the schedule's wait, or
  ``dead`` after the last. Every try is a ``delivery_attempts`` row.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy import event as orm_events
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from standardwebhooks.webhooks import Webhook as StandardWebhook

from kit.tasks import BatchLoop
from services.exchange.deliveries import DELIVERIES_QUEUED
from services.exchange.domain.webhooks import DEAD, DELIVERED, PENDING, is_success, retry_delay
from services.exchange.models import Delivery, DeliveryAttempt, Subscription
from services.exchange.secretbox import SecretBox
from services.exchange.settings import Settings
from services.exchange.subscriptions import signing_secrets

log = logging.getLogger("yiwang.exchange.deliveries")

USER_AGENT = "yiwang-exchange-webhooks/1"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def sign(secrets: list[str], *, msg_id: str, timestamp: datetime, body: str) -> str:
    """The ``webhook-signature`` header: one ``v1,…`` signature per secret, space-separated."""
    return " ".join(StandardWebhook(secret).sign(msg_id, timestamp, body) for secret in secrets)


def _short(error: BaseException) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    return (type(error).__name__ + (f": {error}" if str(error) else ""))[:200]


class DeliveryWorker(BatchLoop):
    """Turns due deliveries into signed POSTs (module doc)."""

    task_name = "exchange-webhook-deliveries"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *,
                 box: SecretBox, clock: Callable[[], datetime] = _utc_now,
                 client: httpx.AsyncClient | None = None, rng: random.Random | None = None) -> None:  # fmt: skip
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.box = box
        self.clock = clock
        self.batch_size = settings.delivery_batch_size
        self.poll_interval = settings.delivery_poll_seconds
        self.timeout = settings.delivery_timeout_seconds
        self.schedule = tuple(settings.retry_schedule_seconds)
        self._random = rng or random.Random()
        # Redirects are not followed (Standard Webhooks: a 3xx is a failure, the endpoint moved).
        self._client = client or httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        self._owns_client = client is None
        # A live worker finishes a batch within this (every POST is cut at the timeout), so a
        # claim only runs out when its worker died.
        self.claim_seconds = self.timeout * (math.ceil(self.batch_size / settings.delivery_concurrency) + 1) + 5.0
        self.outcomes = {DELIVERED: 0, "retry": 0, DEAD: 0}
        sync_class = sessionmaker.kw.get("sync_session_class")
        if sync_class is not None:  # a commit that queued a delivery starts the next round now
            orm_events.listen(sync_class, "after_commit", self._after_commit)

    def _after_commit(self, session) -> None:
        if session.info.pop(DELIVERIES_QUEUED, False):
            self.wake()

    async def aclose(self) -> None:
        sync_class = self.sessionmaker.kw.get("sync_session_class")
        if sync_class is not None and orm_events.contains(sync_class, "after_commit", self._after_commit):
            orm_events.remove(sync_class, "after_commit", self._after_commit)
        if self._owns_client:
            await self._client.aclose()

    async def batch(self) -> int:
        return await self.run_once()

    async def run_once(self) -> int:
        """Claim one batch of due deliveries and send them; how many were claimed."""
        claimed = await self._claim(self.clock())
        if not claimed:
            return 0
        limit = asyncio.Semaphore(self.settings.delivery_concurrency)
        results = await asyncio.gather(*(self._send(delivery_id, attempts, limit) for delivery_id, attempts in claimed))
        if any(results):
            self.wake()  # the next of those cases may go now
        return len(claimed)

    async def _claim(self, now: datetime) -> list[tuple[str, int]]:
        earlier = aliased(Delivery)
        held_back = exists().where(
            earlier.subscription_id == Delivery.subscription_id,
            earlier.ordering_key == Delivery.ordering_key,
            earlier.sequence < Delivery.sequence,
            earlier.status == PENDING,
        )
        due = (
            select(Delivery.id)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .where(
                Delivery.status == PENDING,
                Delivery.next_attempt_at <= now,
                or_(Delivery.claimed_until.is_(None), Delivery.claimed_until <= now),
                Subscription.status == "active",
                ~held_back,
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(self.batch_size)
        )
        async with self.sessionmaker() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True, of=Delivery)  # replicas claim different rows
            picked = due.cte("due")
            claim = (
                update(Delivery)
                .where(Delivery.id == picked.c.id)
                .values(attempts=Delivery.attempts + 1, claimed_until=now + timedelta(seconds=self.claim_seconds))
                .returning(Delivery.id, Delivery.attempts)
            )
            rows = (await session.execute(claim)).all()
        return sorted((str(delivery_id), int(attempts)) for delivery_id, attempts in rows)

    async def _send(self, delivery_id: str, attempts: int, limit: asyncio.Semaphore) -> bool:
        """One try; whether it was delivered."""
        async with self.sessionmaker() as session:
            delivery = await session.get(Delivery, delivery_id)
            subscription = await session.get(Subscription, delivery.subscription_id) if delivery else None
        if delivery is None or subscription is None:  # pragma: no cover - rows are never deleted
            return False
        async with limit:
            started = time.monotonic()
            status_code: int | None = None
            error: str | None = None
            try:
                secrets = signing_secrets(subscription, self.box, self.clock())
                stamp = datetime.now(UTC)  # the receiver compares it with its own clock: the real one
                headers = {
                    "content-type": "application/json",
                    "user-agent": USER_AGENT,
                    "webhook-id": delivery.id,
                    "webhook-timestamp": str(int(stamp.timestamp())),
                    "webhook-signature": sign(secrets, msg_id=delivery.id, timestamp=stamp, body=delivery.payload),
                }
                # The answer's body is never read: a department system's page is no business of ours.
                async with self._client.stream("POST", subscription.url, content=delivery.payload.encode(),
                                               headers=headers, timeout=self.timeout) as response:  # fmt: skip
                    status_code = response.status_code
                if not is_success(status_code):
                    error = f"HTTP {status_code}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # no connection, a timeout, a TLS failure: tried again later
                error = _short(exc)
            duration_ms = int((time.monotonic() - started) * 1000)
        delivered = error is None
        await self._record(delivery, attempts, status_code=status_code, error=error, duration_ms=duration_ms)
        return delivered

    async def _record(self, delivery: Delivery, attempts: int, *, status_code: int | None, error: str | None,
                      duration_ms: int) -> None:  # fmt: skip
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            session.add(DeliveryAttempt(delivery_id=delivery.id, at=now, status_code=status_code, error=error,
                                        duration_ms=duration_ms))  # fmt: skip
            # Only while the row is this claim's (attempts unchanged, still pending): a worker whose
            # claim ran out, or a replay in between, is not undone.
            ours = and_(Delivery.id == delivery.id, Delivery.attempts == attempts, Delivery.status == PENDING)
            if error is None:
                await session.execute(
                    update(Delivery).where(ours).values(status=DELIVERED, delivered_at=now, claimed_until=None,
                                                        last_status_code=status_code, last_error=None)
                )  # fmt: skip
                # The endpoint answers again: what waits for a retry goes now, in order.
                brought = await session.execute(
                    update(Delivery)
                    .where(Delivery.subscription_id == delivery.subscription_id, Delivery.status == PENDING,
                           Delivery.attempts > 0, Delivery.next_attempt_at > now)
                    .values(next_attempt_at=now)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip
                if getattr(brought, "rowcount", 0):
                    log.info("subscription %s answers again: %d waiting deliveries brought forward",
                             delivery.subscription_id, brought.rowcount)  # fmt: skip
                self.outcomes[DELIVERED] += 1
                return
            jitter = self._random.uniform(1 - self.settings.retry_jitter, 1 + self.settings.retry_jitter)
            delay = retry_delay(attempts, self.schedule, jitter=jitter)
            if delay is None:
                values = dict(status=DEAD, claimed_until=None)
                self.outcomes[DEAD] += 1
                log.warning("delivery %s (%s to %s) dead after %d attempts: %s",
                            delivery.id, delivery.type, delivery.department, attempts, error)  # fmt: skip
            else:
                values = dict(next_attempt_at=now + timedelta(seconds=delay), claimed_until=None)
                self.outcomes["retry"] += 1
            await session.execute(
                update(Delivery).where(ours).values(last_status_code=status_code, last_error=error, **values)
            )
