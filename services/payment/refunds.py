"""The refund worker: money queued to go back (``refunds`` rows ``pending``) is asked of the gateway.

Each round claims due rows with one statement (``UPDATE … WHERE id IN (due rows) RETURNING``, the
due rows picked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), counting the attempt and pushing
``next_attempt_at`` past the claim, so replicas never ask twice at once and a crashed worker's rows
come back. No database transaction is open while the gateway answers. Then:

- accepted → ``requested`` (the gateway's refund id kept); its REFUND notification finishes it;
- ``GatewayUnavailable`` → tried again after base × 2^(attempts−1) s (capped, jittered);
- ``GatewayRefused`` → ``failed``, logged for an operator.

A refund asked again after a lost answer carries the same out_refund_no: the gateway refunds once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import event as orm_events
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.tasks import BatchLoop
from services.payment.adapters.gateway import GatewayRefused, GatewayUnavailable, PaymentGateway, RefundRequest
from services.payment.models import Refund
from services.payment.orders import REFUNDS_QUEUED
from services.payment.settings import Settings

log = logging.getLogger("yiwang.payment.refunds")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def backoff_seconds(attempts: int, *, base: float, cap: float, jitter: float) -> float:
    return min(base * 2 ** max(attempts - 1, 0), cap) * jitter


class RefundWorker(BatchLoop):
    task_name = "payment-refunds"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], gateway: PaymentGateway, settings: Settings,
                 *, clock: Callable[[], datetime] = _utc_now, rng: random.Random | None = None) -> None:  # fmt: skip
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.settings = settings
        self.batch_size = settings.refund_batch_size
        self.poll_interval = settings.refund_poll_seconds
        self.clock = clock
        self._random = rng or random.Random()
        self.claim_seconds = settings.gateway_timeout_seconds * (self.batch_size + 1) + 5.0
        sync_class = sessionmaker.kw.get("sync_session_class")
        if sync_class is not None:
            orm_events.listen(sync_class, "after_commit", self._after_commit)

    def _after_commit(self, session) -> None:
        if session.info.pop(REFUNDS_QUEUED, False):
            self.wake()

    async def batch(self) -> int:
        return await self.run_once()

    async def run_once(self) -> int:
        claimed = await self._claim(self.clock())
        for refund_id, attempts in claimed:
            await self._ask(refund_id, attempts)
        return len(claimed)

    async def _claim(self, now: datetime) -> list[tuple[str, int]]:
        due = (select(Refund.id).where(Refund.status == "pending", Refund.next_attempt_at <= now)
               .order_by(Refund.next_attempt_at, Refund.id).limit(self.batch_size))  # fmt: skip
        async with self.sessionmaker() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            picked = due.cte("due")
            claim = (update(Refund).where(Refund.id == picked.c.id)
                     .values(attempts=Refund.attempts + 1, next_attempt_at=now + timedelta(seconds=self.claim_seconds))
                     .returning(Refund.id, Refund.attempts))  # fmt: skip
            rows = (await session.execute(claim)).all()
        return sorted((str(refund_id), int(attempts)) for refund_id, attempts in rows)

    async def _ask(self, refund_id: str, attempts: int) -> None:
        async with self.sessionmaker() as session:
            refund = await session.get(Refund, refund_id)
        assert refund is not None
        request = RefundRequest(out_refund_no=refund.id, out_trade_no=refund.payment_id, amount_fen=refund.amount_fen,
                                reason=refund.reason, notify_url=self.settings.notify_url)  # fmt: skip
        values: dict = {"updated_at": self.clock()}
        try:
            accepted = await self.gateway.refund(request)
        except GatewayRefused as exc:
            values.update(status="failed", last_error=f"refused: {exc.reason}"[:200])
            log.error("refund %s (order %s): refused by the gateway: %s", refund.id, refund.order_id, exc.reason)
        except (GatewayUnavailable, Exception) as exc:  # the gateway may be back later
            delay = backoff_seconds(attempts, base=self.settings.refund_backoff_base_seconds,
                                    cap=self.settings.refund_backoff_max_seconds,
                                    jitter=self._random.uniform(0.8, 1.2))  # fmt: skip
            values.update(last_error=f"{type(exc).__name__}: {exc}"[:200],
                          next_attempt_at=self.clock() + timedelta(seconds=delay))  # fmt: skip
            log.warning("refund %s: gateway unavailable (attempt %d), next try in %.0fs", refund.id, attempts, delay)
        else:
            values.update(status="requested", refund_id=accepted.refund_id, last_error=None)
        async with self.sessionmaker() as session, session.begin():
            # Only while the row is still this claim's and nothing (a fast notification) finished it.
            await session.execute(update(Refund).where(Refund.id == refund_id, Refund.attempts == attempts,
                                                       Refund.status == "pending").values(**values))  # fmt: skip
