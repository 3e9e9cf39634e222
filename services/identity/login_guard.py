"""The atomic login lockout: claim a password check before making it.

A login first claims one of the ``max_failures`` check slots of its login name with a single
conditional UPDATE (an INSERT for the first one), committed at once; only a claimed slot may
verify a password. A parallel burst therefore verifies at most ``max_failures`` passwords: the
database serialises the claims (SQLite: one writer; PostgreSQL: the UPDATE's row lock, with the
WHERE clause re-checked on the row version it waits for). A success frees the slots; a failure
keeps its slot and, when it was the last one, sets the lock (docs/adr/0009-identity-trust.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Problem
from kit.logs import get_logger
from services.identity.context import now
from services.identity.domain.lockout import LockoutPolicy, retry_after_seconds
from services.identity.models import LoginGuard

log = get_logger("identity.lockout")
_guard = LoginGuard.__table__


def locked_problem(seconds: int, until: datetime) -> Problem:
    return Problem(
        423,
        "account-locked",
        "Account locked",
        f"too many failed logins; try again in {seconds}s",
        headers={"Retry-After": str(seconds)},
        locked_until=until.isoformat(),
    )


async def claim_check(session: AsyncSession, account: str, policy: LockoutPolicy) -> None:
    """Claim a password-check slot for ``account`` and commit, or raise 423 without any check."""
    current = now()
    window_floor = current - policy.window
    c = _guard.c
    # A finished lock, or a window that began too long ago without a lock, starts afresh.
    fresh = or_(
        and_(c.locked_until.is_(None), c.window_started_at < window_floor),
        and_(c.locked_until.is_not(None), c.locked_until <= current),
    )
    claimed = await session.execute(
        update(_guard)
        .where(c.account == account, or_(fresh, and_(c.locked_until.is_(None), c.attempts < policy.max_failures)))
        .values(
            attempts=case((fresh, 1), else_=c.attempts + 1),
            window_started_at=case((fresh, current), else_=c.window_started_at),
            locked_until=case((fresh, None), else_=c.locked_until),
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount == 1:
        await session.commit()
        return
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    created = await session.execute(
        insert(_guard)
        .values(account=account, attempts=1, window_started_at=current, locked_until=None)
        .on_conflict_do_nothing(index_elements=["account"])
    )
    if created.rowcount == 1:
        await session.commit()
        return
    await session.commit()  # end the transaction the refused UPDATE opened
    row = (await session.execute(select(c.locked_until, c.window_started_at).where(c.account == account))).one()
    wait = retry_after_seconds(row.locked_until, row.window_started_at, current, policy)
    log.warning("login refused while locked", account=account, retry_after=wait)
    raise locked_problem(wait, row.locked_until or row.window_started_at + policy.window)


async def record_failure(session: AsyncSession, account: str, policy: LockoutPolicy) -> None:
    """The claimed check failed: its slot stays used; the last slot sets the lock. Commits."""
    c = _guard.c
    await session.execute(
        update(_guard)
        .where(c.account == account, c.attempts >= policy.max_failures, c.locked_until.is_(None))
        .values(locked_until=now() + policy.duration)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    log.info("login failed", account=account)


async def record_success(session: AsyncSession, account: str) -> None:
    """The password was right: the login's slots are free again (committed with the login)."""
    await session.execute(delete(_guard).where(_guard.c.account == account))
