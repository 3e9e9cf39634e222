"""The expiry timer: licences past ``valid_until`` become expired; holders are reminded before.

Safe with several replicas: each batch is claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
(rows another replica holds are skipped; once it commits they no longer match), and the claim's
condition is the state it changes — an expired licence is no longer ``valid``/``suspended``, a
reminded one has ``expiring_notice_for = valid_until`` — so a licence is expired once and reminded
once per window (a renewal that moves ``valid_until`` opens a new window). Each row's change is
itself conditional on that state too (SQLite has no row locks: two rounds at once still change a
licence once, with one event).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events import licence as contract
from kit.events import envelope
from kit.tasks import BackgroundLoop
from services.licence.context import Context
from services.licence.domain import states
from services.licence.issuance import event_fields
from services.licence.models import Licence, outbox

log = logging.getLogger("yiwang.licence.expiry")


def _claimable(session: AsyncSession, query):
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


async def _expire_batch(sessionmaker: async_sessionmaker[AsyncSession], ctx: Context, today: date, size: int) -> int:
    async with sessionmaker() as session, session.begin():
        query = (
            select(Licence)
            .where(Licence.status.in_((states.VALID, states.SUSPENDED)), Licence.valid_until < today)
            .order_by(Licence.id)
            .limit(size)
        )
        rows = list((await session.execute(_claimable(session, query))).scalars())
        now = ctx.current_time()
        expired = 0
        for licence in rows:
            assert licence.valid_until is not None
            # Conditional on the status read: a concurrent round (SQLite has no row locks) changes nothing twice.
            changed = await session.execute(
                update(Licence)
                .where(Licence.id == licence.id, Licence.status == licence.status)
                .values(status=states.next_status(licence.status, "expire"), updated_at=now,
                        status_reason=f"valid until {licence.valid_until.isoformat()}")
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            expired += 1
            event = contract.LicenceExpired(**event_fields(licence, now), valid_until=licence.valid_until)
            await outbox.add(session, envelope(event, subject=licence.identifier))
    return expired


async def _remind_batch(sessionmaker: async_sessionmaker[AsyncSession], ctx: Context, today: date, size: int) -> int:
    horizon = today + timedelta(days=ctx.settings.expiring_reminder_days)
    async with sessionmaker() as session, session.begin():
        query = (
            select(Licence)
            .where(
                Licence.status == states.VALID,
                Licence.valid_until >= today,
                Licence.valid_until <= horizon,
                or_(Licence.expiring_notice_for.is_(None), Licence.expiring_notice_for != Licence.valid_until),
            )
            .order_by(Licence.id)
            .limit(size)
        )
        rows = list((await session.execute(_claimable(session, query))).scalars())
        now = ctx.current_time()
        reminded = 0
        for licence in rows:
            assert licence.valid_until is not None
            changed = await session.execute(
                update(Licence)
                .where(Licence.id == licence.id, Licence.status == states.VALID,
                       Licence.valid_until == licence.valid_until,
                       or_(Licence.expiring_notice_for.is_(None), Licence.expiring_notice_for != Licence.valid_until))
                .values(expiring_notice_for=licence.valid_until)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            reminded += 1
            event = contract.LicenceExpiring(
                **event_fields(licence, now), valid_until=licence.valid_until,
                days_left=(licence.valid_until - today).days,
            )  # fmt: skip
            await outbox.add(session, envelope(event, subject=licence.identifier))
    return reminded


async def run_expiry_once(sessionmaker: async_sessionmaker[AsyncSession], ctx: Context) -> dict[str, int]:
    """One round: expire what has ended, then remind what ends within the reminder window."""
    today = ctx.today()
    size = ctx.settings.expiry_batch_size
    counts = {"expired": 0, "expiring": 0}
    for key, batch in (("expired", _expire_batch), ("expiring", _remind_batch)):
        while True:
            handled = await batch(sessionmaker, ctx, today, size)
            counts[key] += handled
            if handled < size:
                break
    return counts


class ExpiryTimer(BackgroundLoop):
    """Runs ``run_expiry_once`` every ``expiry_interval_seconds``."""

    task_name = "licence-expiry-timer"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], ctx: Context) -> None:
        self.sessionmaker = sessionmaker
        self.ctx = ctx

    async def run(self) -> None:
        while True:
            try:
                counts = await run_expiry_once(self.sessionmaker, self.ctx)
                if any(counts.values()):
                    log.info("expiry round: %s", counts)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away, not migrated yet: next round
                log.warning("expiry round failed: %s", type(exc).__name__)
            await asyncio.sleep(self.ctx.settings.expiry_interval_seconds)
