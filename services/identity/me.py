"""GET /me: who the caller is, what they can act for. Full ID number only to its owner."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.masking import mask_id_number, mask_phone
from services.identity.agents import mandate_out
from services.identity.context import now
from services.identity.domain.mandates import mandate_usable
from services.identity.models import Enterprise, Mandate, Officer, Person, WeChatBinding
from services.identity.schemas import EnterpriseOut, Me


async def describe(session: AsyncSession, caller: Principal) -> Me:
    if caller.kind == "officer":
        officer = await session.get(Officer, caller.subject.removeprefix("officer:"))
        return Me(
            subject=caller.subject,
            kind="officer",
            level=caller.level,
            name=officer.name if officer else None,
            department=caller.department,
            roles=list(caller.roles),
        )
    if caller.kind == "enterprise":
        enterprise = await session.get(Enterprise, caller.subject)
        return Me(
            subject=caller.subject,
            kind="enterprise",
            level=caller.level,
            name=enterprise.name if enterprise else None,
            actor=mask_id_number(caller.actor) if caller.actor else None,
            scopes=list(caller.scopes),
        )
    person = await session.get(Person, caller.subject)
    # A walk-in made known at the counter or a kiosk has no password and no mobile: no online login.
    channels = ["password", "sms"] if person.mobile and person.password_hash else []
    if (await session.execute(select(WeChatBinding.openid).where(WeChatBinding.id_number == person.id_number))).first():
        channels.append("wechat")
    owned = (
        await session.execute(select(Enterprise).where(Enterprise.legal_representative == person.id_number))
    ).scalars()
    mandates = (
        (await session.execute(select(Mandate).where(Mandate.agent_id_number == person.id_number))).scalars().all()
    )
    current = now()
    live = [m for m in mandates if mandate_usable(expires_at=m.expires_at, revoked_at=m.revoked_at, now=current)]
    return Me(
        subject=person.id_number,
        kind="person",
        level=person.level,
        name=person.name,
        id_number=person.id_number,  # the owner sees the full number
        mobile=mask_phone(person.mobile) if person.mobile else None,
        channels=channels,
        enterprises=[
            EnterpriseOut(
                uscc=e.uscc,
                name=e.name,
                legal_representative=mask_id_number(e.legal_representative),
                role="legal_representative",
            )
            for e in owned
        ],
        mandates=[mandate_out(m, mask=False) for m in live],
    )
