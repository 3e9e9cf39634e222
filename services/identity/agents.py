"""经办人 mandates: a legal representative lets a person act for the enterprise."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import AgentGranted, AgentRevoked
from kit.auth import Principal
from kit.errors import Problem, RuleViolation, field_problem
from kit.masking import mask_id_number
from services.identity.context import Identity, now, publish
from services.identity.domain.mandates import check_expiry, mandate_usable, normalise_scopes
from services.identity.models import Enterprise, Mandate, Person
from services.identity.revocation import publish_revocation
from services.identity.schemas import GrantMandate, MandateOut


def _acting_person(caller: Principal) -> str | None:
    return caller.subject if caller.kind == "person" else caller.actor


async def enterprise_for_representative(session: AsyncSession, caller: Principal, uscc: str) -> Enterprise:
    """The enterprise, if the caller is its legal representative (directly or acting for it); else 403/404."""
    enterprise = await session.get(Enterprise, uscc)
    if enterprise is None:
        raise Problem(404, "not-found", "No such enterprise")
    if caller.kind == "enterprise" and caller.subject != uscc:
        raise Problem(404, "not-found", "No such enterprise")
    if _acting_person(caller) != enterprise.legal_representative:
        raise Problem(403, "forbidden", "Only the legal representative manages mandates")
    return enterprise


def mandate_out(mandate: Mandate, *, mask: bool = True) -> MandateOut:
    return MandateOut(
        id=mandate.id,
        enterprise=mandate.enterprise_uscc,
        agent=mask_id_number(mandate.agent_id_number) if mask else mandate.agent_id_number,
        scopes=mandate.scopes.split(),
        expires_at=mandate.expires_at,
        revoked_at=mandate.revoked_at,
        active=mandate_usable(expires_at=mandate.expires_at, revoked_at=mandate.revoked_at, now=now()),
    )


async def grant(session: AsyncSession, caller: Principal, uscc: str, body: GrantMandate) -> Mandate:
    enterprise = await enterprise_for_representative(session, caller, uscc)
    try:
        scopes = normalise_scopes(body.scopes)
    except RuleViolation as exc:
        raise field_problem("scopes", exc.rule, exc.message) from exc
    try:
        check_expiry(body.expires_at, now())
    except RuleViolation as exc:
        raise field_problem("expires_at", exc.rule, exc.message) from exc
    if body.agent_id_number == enterprise.legal_representative:
        raise field_problem("agent_id_number", "not_self", "the legal representative needs no mandate")
    if await session.get(Person, body.agent_id_number) is None:
        raise field_problem("agent_id_number", "registered", "the agent must be a registered person", status=422)
    mandate = Mandate(
        id=str(uuid.uuid4()),
        enterprise_uscc=uscc,
        agent_id_number=body.agent_id_number,
        scopes=" ".join(scopes),
        expires_at=body.expires_at,
        granted_by=enterprise.legal_representative,
        created_at=now(),
    )
    session.add(mandate)
    await publish(
        session,
        AgentGranted(
            mandate_id=mandate.id,
            enterprise_uscc=uscc,
            agent_id_number=mandate.agent_id_number,
            scopes=scopes,
            expires_at=mandate.expires_at,
            granted_by=mandate.granted_by,
        ),
        subject=uscc,
    )
    return mandate


async def revoke(session: AsyncSession, identity: Identity, caller: Principal, uscc: str, mandate_id: str) -> None:
    """Revoke a mandate: no new act-as tokens at once, and the agent's live act-as tokens for this
    enterprise are revoked everywhere (identity.tokens.revoked, subject = USCC, actor = agent)."""
    await enterprise_for_representative(session, caller, uscc)
    mandate = await session.get(Mandate, mandate_id)
    if mandate is None or mandate.enterprise_uscc != uscc:
        raise Problem(404, "not-found", "No such mandate")
    if mandate.revoked_at is not None:
        return  # revoking twice changes nothing
    mandate.revoked_at = now()
    await publish(
        session,
        AgentRevoked(
            mandate_id=mandate.id,
            enterprise_uscc=uscc,
            agent_id_number=mandate.agent_id_number,
            revoked_at=mandate.revoked_at,
        ),
        subject=uscc,
    )
    await publish_revocation(session, identity, reason="mandate_revoked", subject=uscc, actor=mandate.agent_id_number)


async def list_for_enterprise(session: AsyncSession, caller: Principal, uscc: str) -> list[Mandate]:
    await enterprise_for_representative(session, caller, uscc)
    return list(
        (
            await session.execute(select(Mandate).where(Mandate.enterprise_uscc == uscc).order_by(Mandate.created_at))
        ).scalars()
    )
