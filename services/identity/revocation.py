"""Publishing token revocations (identity.tokens.revoked) through identity's outbox.

Every verifier keeps the entries until ``until`` and refuses matching tokens issued at or before
``issued_before`` (contracts/events/identity.py, ADR 0002's amendment). The event is written in
the transaction that revokes, so a revocation is published if and only if it happened.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import TokensRevoked
from kit.logs import get_logger
from services.identity.context import Identity, now, publish

log = get_logger("identity.revocation")


async def publish_revocation(
    session: AsyncSession,
    identity: Identity,
    *,
    reason: str,
    session_id: str | None = None,
    subject: str | None = None,
    actor: str | None = None,
    officer: bool = False,
) -> TokensRevoked:
    """Revoke the access tokens of a login session, or of a subject (optionally only those a given
    actor holds for it); tokens issued from now on are not affected. The last token it can match
    expires one access-token lifetime from now."""
    current = now()
    event = TokensRevoked(
        reason=reason,
        session_id=session_id,
        subject=subject,
        actor=actor,
        issued_before=current,
        until=current + (identity.longest_ttl if officer else identity.access_ttl),
    )
    await publish(session, event, subject=session_id or subject or "tokens")
    log.info("tokens revoked", reason=reason, session_id=session_id, subject=subject, actor=actor)
    return event
