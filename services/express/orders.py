"""Carrier orders: every new shipment becomes an order at the carrier, however long it is away.

A shipment's ``carrier_orders`` row is written with it (shipments.py). ``OrderWorker`` works the
queue the way the outbox relay and caseflow's notification dispatcher do:

- Each round claims due rows with ONE statement (``UPDATE … WHERE shipment_id IN (due rows,
  LIMIT n) RETURNING``; on PostgreSQL the due rows are picked ``FOR UPDATE SKIP LOCKED``; SQLite
  runs one writer at a time), counting the attempt and pushing ``next_attempt_at`` to the end of
  the claim. No transaction is open while the carrier answers, so replicas never order the same
  shipment at once, and a crashed worker's rows come back when its claim ends.
- Accepted: the waybill and expected delivery are stored, ``express.shipment.created`` goes to the
  outbox and the row is deleted — one transaction.
- ``CarrierUnavailable`` (a 5xx, a timeout, no answer): ``last_error`` and ``next_attempt_at`` =
  now + base × 2^(attempts−1), capped, jittered (domain/retry.py). Tried again for as long as it
  takes: a requested parcel is never dropped because the carrier was down.
- ``OrderRefused`` (the carrier said no for good: an address it does not serve, …): the shipment
  becomes ``refused`` and ``express.shipment.failed`` (final) is published; the row is deleted.

An order that reached the carrier but whose answer was lost is sent again; the order carries the
shipment id as the client reference, so the carrier can answer the same waybill.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy import event as orm_events
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events import express as contract
from kit.tasks import BatchLoop
from services.express.adapters.carrier import Carrier, CarrierUnavailable, OrderRefused, Party, ShipmentOrder
from services.express.domain.retry import backoff_seconds
from services.express.models import CarrierOrder, Shipment
from services.express.publishing import event_fields, publish
from services.express.settings import Settings
from services.express.shipments import ORDERS_QUEUED

log = logging.getLogger("yiwang.express.orders")

REFUSED = "refused"  # local terminal status: the carrier never took the parcel


def _utc_now() -> datetime:
    return datetime.now(UTC)


def department_party(settings: Settings, department: str) -> Party:
    """The department's counter as a sender or receiver (EXPRESS_DEPARTMENTS, else the hall's)."""
    known = settings.departments.get(department, {})
    return Party(
        name=known.get("name", department), phone=known.get("phone", settings.default_department_phone),
        address=known.get("address", settings.default_department_address),
        division_code=known.get("division_code", settings.default_department_division_code),
    )  # fmt: skip


def order_for(shipment: Shipment, settings: Settings) -> ShipmentOrder:
    """What the carrier is asked to carry: the applicant's party as caseflow gave it, the
    department's from the settings; the shipment id is the carrier's idempotency key."""
    if shipment.kind == "collect":
        sender = Party(
            name=shipment.sender_name,
            phone=shipment.sender_phone or "",
            address=shipment.sender_address or "",
            division_code=shipment.sender_division_code,
        )
        recipient = department_party(settings, shipment.department)
        note = "、".join(json.loads(shipment.items or "[]"))[:200]
    else:
        sender = department_party(settings, shipment.department)
        recipient = Party(
            name=shipment.recipient_name,
            phone=shipment.recipient_phone or "",
            address=shipment.recipient_address or "",
            division_code=shipment.recipient_division_code,
        )
        note = f"办件 {shipment.case_no} 办理结果"
    return ShipmentOrder(reference=shipment.id, kind=shipment.kind, sender=sender, recipient=recipient,
                         note=note)  # type: ignore[arg-type]  # fmt: skip


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:200]


class OrderWorker(BatchLoop):
    """Turns due ``carrier_orders`` rows into carrier orders (module doc); safe with replicas."""

    task_name = "express-carrier-orders"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], carrier: Carrier, settings: Settings, *,
                 clock: Callable[[], datetime] = _utc_now, rng: random.Random | None = None) -> None:  # fmt: skip
        self.sessionmaker = sessionmaker
        self.carrier = carrier
        self.settings = settings
        self.batch_size = settings.carrier_batch_size
        self.poll_interval = settings.carrier_poll_seconds
        self.clock = clock
        self._random = rng or random.Random()
        self.timeout = settings.carrier_timeout_seconds
        # A live worker finishes a batch within this (every call is cut at the timeout), so a claim
        # only runs out when its worker died.
        self.claim_seconds = self.timeout * (math.ceil(self.batch_size / settings.carrier_concurrency) + 1) + 5.0
        self.outcomes = {"created": 0, "retry": 0, "refused": 0}
        # A commit that queued an order wakes the loop (like the outbox relay): booking starts at
        # once instead of up to ``carrier_poll_seconds`` later; the poll stays for retries due.
        sync_class = sessionmaker.kw.get("sync_session_class")
        if sync_class is not None:
            orm_events.listen(sync_class, "after_commit", self._after_commit)

    def _after_commit(self, session) -> None:
        if session.info.pop(ORDERS_QUEUED, False):
            self.wake()

    async def batch(self) -> int:
        return await self.run_once()

    async def run_once(self) -> int:
        """Claim one batch of due orders and place them; how many were claimed."""
        claimed = await self._claim(self.clock())
        if not claimed:
            return 0
        limit = asyncio.Semaphore(self.settings.carrier_concurrency)
        await asyncio.gather(*(self._place(shipment_id, attempts, limit) for shipment_id, attempts in claimed))
        return len(claimed)

    async def _claim(self, now: datetime) -> list[tuple[str, int]]:
        due = (
            select(CarrierOrder.shipment_id)
            .where(CarrierOrder.next_attempt_at <= now)
            .order_by(CarrierOrder.next_attempt_at, CarrierOrder.shipment_id)
            .limit(self.batch_size)
        )
        async with self.sessionmaker() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)  # replicas claim different rows, never wait
            picked = due.cte("due")
            claim = (
                update(CarrierOrder)
                .where(CarrierOrder.shipment_id == picked.c.shipment_id)
                .values(
                    attempts=CarrierOrder.attempts + 1, next_attempt_at=now + timedelta(seconds=self.claim_seconds)
                )  # fmt: skip
                .returning(CarrierOrder.shipment_id, CarrierOrder.attempts)
            )
            rows = (await session.execute(claim)).all()
        return sorted((str(shipment_id), int(attempts)) for shipment_id, attempts in rows)

    async def _place(self, shipment_id: str, attempts: int, limit: asyncio.Semaphore) -> None:
        async with self.sessionmaker() as session:
            shipment = await session.get(Shipment, shipment_id)
        if shipment is None:  # pragma: no cover - rows are deleted with their shipment only
            return
        async with limit:
            try:
                accepted = await asyncio.wait_for(
                    self.carrier.create_order(order_for(shipment, self.settings)), self.timeout
                )
            except asyncio.CancelledError:
                raise
            except OrderRefused as exc:
                await self._refused(shipment_id, attempts, exc)
                return
            except (CarrierUnavailable, Exception) as exc:  # any other failure: the carrier may be back later
                await self._retry(shipment_id, attempts, exc)
                return
        await self._accepted(shipment_id, attempts, accepted.waybill, accepted.expected_delivery)

    async def _still_ours(self, session: AsyncSession, shipment_id: str, attempts: int) -> bool:
        """Only while the row is this claim's (attempts unchanged): a worker whose claim ran out
        must not undo a newer claim's result."""
        query = select(CarrierOrder).where(CarrierOrder.shipment_id == shipment_id,
                                           CarrierOrder.attempts == attempts)  # fmt: skip
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        return (await session.execute(query)).scalar_one_or_none() is not None

    async def _accepted(self, shipment_id: str, attempts: int, waybill: str, expected: datetime | None) -> None:
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            if not await self._still_ours(session, shipment_id, attempts):
                return
            shipment = await session.get(Shipment, shipment_id)
            assert shipment is not None
            shipment.waybill = waybill
            shipment.expected_delivery = expected
            shipment.updated_at = now
            await session.execute(delete(CarrierOrder).where(CarrierOrder.shipment_id == shipment_id))
            event = contract.ShipmentCreated(**event_fields(shipment, status="created", at=now),
                                             expected_delivery=expected)  # fmt: skip
            await publish(session, event)
        self.outcomes["created"] += 1
        log.info("shipment %s (%s, case %s): waybill %s after %d attempt(s)",
                 shipment_id, shipment.kind, shipment.case_no, waybill, attempts)  # fmt: skip

    async def _retry(self, shipment_id: str, attempts: int, error: BaseException) -> None:
        delay = backoff_seconds(attempts, base=self.settings.carrier_backoff_base_seconds,
                                cap=self.settings.carrier_backoff_max_seconds,
                                jitter=self._random.uniform(0.8, 1.2))  # fmt: skip
        retry_at = self.clock() + timedelta(seconds=delay)
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(CarrierOrder)
                .where(CarrierOrder.shipment_id == shipment_id, CarrierOrder.attempts == attempts)
                .values(last_error=_short(error), next_attempt_at=retry_at)
            )
        self.outcomes["retry"] += 1
        log.warning("shipment %s: carrier unavailable (attempt %d), next try in %.0fs: %s",
                    shipment_id, attempts, delay, _short(error))  # fmt: skip

    async def _refused(self, shipment_id: str, attempts: int, error: OrderRefused) -> None:
        now = self.clock()
        reason = (str(error) or "refused by the carrier")[:200]
        async with self.sessionmaker() as session, session.begin():
            if not await self._still_ours(session, shipment_id, attempts):
                return
            shipment = await session.get(Shipment, shipment_id)
            assert shipment is not None
            shipment.status = REFUSED
            shipment.status_at = now
            shipment.failure_reason = reason
            shipment.updated_at = now
            await session.execute(delete(CarrierOrder).where(CarrierOrder.shipment_id == shipment_id))
            # On the bus the status stays "created" (the parcel never moved); final says it is over.
            event = contract.ShipmentFailed(**event_fields(shipment, status="created", at=now),
                                            reason=f"order refused: {reason}"[:200], final=True)  # fmt: skip
            await publish(session, event)
        self.outcomes["refused"] += 1
        log.warning("shipment %s (case %s): order refused by the carrier: %s", shipment_id, shipment.case_no, reason)
