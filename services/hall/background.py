"""Hall's two background loops (kit.tasks.BatchLoop); replicas share the rows through
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so no booking is marked twice and no message goes twice
while its sender lives (ADR 0030).

- ``SmsDispatcher``: sends ``outgoing_sms`` rows after their booking committed. A batch is leased
  (each row's next attempt pushed past the whole batch: every send is cut at ``sms_timeout_seconds``
  and the batch is sent one row after another, so a live dispatcher finishes inside its lease and
  another replica never takes a row it is still sending) in one short transaction, sent outside
  it, then marked sent (its text masked: the code is not kept in clear) or given a later attempt,
  doubling, until ``sms_max_attempts`` — marked only while the row is still this lease's (its
  ``attempts`` unchanged). A dispatcher killed mid-batch leaves its rows leased: they are sent by
  whichever replica runs once the lease has ended, so a message whose send succeeded but was not
  marked goes twice (at least once: the gateway's ``{mobile, text}`` carries no reference to
  deduplicate by).
- ``NoShowMarker``: bookings whose slot ended without check-in become ``no_show`` (with an event).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events import hall as contract
from kit.tasks import BatchLoop
from services.hall.adapters.sms import SmsSender, SmsUnavailable
from services.hall.models import Booking, OutgoingSms
from services.hall.publishing import booking_event
from services.hall.settings import Settings

log = logging.getLogger("yiwang.hall")
_CODE = re.compile(r"签到码\d{6}")


def _claim(query, session: AsyncSession):
    return query.with_for_update(skip_locked=True) if session.get_bind().dialect.name == "postgresql" else query


class SmsDispatcher(BatchLoop):
    task_name = "hall-sms"

    def __init__(self, maker: async_sessionmaker[AsyncSession], sms: SmsSender, settings: Settings,
                 clock: Callable[[], datetime]) -> None:  # fmt: skip
        self.maker, self.sms, self.settings, self.clock = maker, sms, settings, clock
        self.poll_interval = settings.sms_poll_seconds
        self.batch_size = 50
        # Longer than a live dispatcher can take over one batch; only a dead one's rows outlast it.
        self.lease = timedelta(seconds=settings.sms_timeout_seconds * (self.batch_size + 1) + 5.0)

    async def batch(self) -> int:
        now = self.clock()
        async with self.maker() as session, session.begin():
            query = (select(OutgoingSms).where(OutgoingSms.sent_at.is_(None), OutgoingSms.failed.is_(False),
                                               OutgoingSms.next_attempt_at <= now)
                     .order_by(OutgoingSms.id).limit(self.batch_size))  # fmt: skip
            rows = list((await session.execute(_claim(query, session))).scalars())
            jobs = []
            for row in rows:  # leased, conditionally: another replica skips them until the lease ends
                leased = await session.execute(
                    update(OutgoingSms).where(OutgoingSms.id == row.id, OutgoingSms.sent_at.is_(None),
                                              OutgoingSms.next_attempt_at <= now)
                    .values(next_attempt_at=now + self.lease, attempts=OutgoingSms.attempts + 1)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip
                if leased.rowcount == 1:  # type: ignore[attr-defined]
                    jobs.append((row.id, row.mobile, row.text, row.attempts + 1))
        for row_id, mobile, text, attempts in jobs:
            await self._send(row_id, mobile, text, attempts)
        return len(jobs)

    async def _send(self, row_id: int, mobile: str, text: str, attempts: int) -> None:
        values: dict
        try:
            await asyncio.wait_for(self.sms.send(mobile, text), self.settings.sms_timeout_seconds)
            values = {"sent_at": self.clock(), "text": _CODE.sub("签到码******", text), "last_error": None}
        except asyncio.CancelledError:
            raise
        except (SmsUnavailable, Exception) as exc:  # a slow or failing gateway: tried again later
            wait = self.settings.sms_backoff_base_seconds * 2 ** (attempts - 1)
            values = {"next_attempt_at": self.clock() + timedelta(seconds=wait),
                      "last_error": f"{type(exc).__name__}: {exc}"[:200],
                      "failed": attempts >= self.settings.sms_max_attempts}  # fmt: skip
            log.warning("hall sms %s not sent (attempt %d): %s", row_id, attempts, type(exc).__name__)
        async with self.maker() as session, session.begin():
            # Only while the row is this lease's: a dispatcher whose lease ran out does not undo a newer one.
            await session.execute(update(OutgoingSms).where(OutgoingSms.id == row_id, OutgoingSms.attempts == attempts,
                                                            OutgoingSms.sent_at.is_(None)).values(**values))  # fmt: skip


class NoShowMarker(BatchLoop):
    task_name = "hall-no-shows"

    def __init__(self, maker: async_sessionmaker[AsyncSession], settings: Settings,
                 clock: Callable[[], datetime]) -> None:  # fmt: skip
        self.maker, self.settings, self.clock = maker, settings, clock
        self.poll_interval = settings.no_show_poll_seconds
        self.batch_size = settings.no_show_batch_size

    async def batch(self) -> int:
        now = self.clock()
        ended = now - timedelta(minutes=self.settings.no_show_grace_minutes)
        async with self.maker() as session, session.begin():
            query = (select(Booking).where(Booking.status == "booked", Booking.ends_at <= ended)
                     .order_by(Booking.ends_at, Booking.id).limit(self.batch_size))  # fmt: skip
            rows = list((await session.execute(_claim(query, session))).scalars())
            marked = 0
            for booking in rows:
                # conditional: a check-in that committed meanwhile (SQLite) wins
                result = await session.execute(
                    update(Booking).where(Booking.id == booking.id, Booking.status == "booked")
                    .values(status="no_show", updated_at=now).execution_options(synchronize_session=False)
                )  # fmt: skip
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    marked += 1
                    await booking_event(session, contract.BookingNoShow, booking, now)
        return marked
