"""GET /me: who the caller is, what they can act for. Full ID number only to its owner.

A hot read (issue 15): Core statements built once, on a read connection (no ORM session). For a
person's own token (no helper) one statement answers everything usually asked: the person's row,
whether the login session is still live (what ``sessions.token_revoked`` checks for such a token),
whether a WeChat account is bound, and whether any enterprise or mandate is there to list — only
then are those read."""

from __future__ import annotations

from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.auth import Principal
from kit.masking import mask_id_number, mask_phone
from services.identity.agents import mandate_out
from services.identity.context import now
from services.identity.domain.mandates import mandate_usable
from services.identity.models import Enterprise, LoginSession, Mandate, Officer, Person, WeChatBinding
from services.identity.schemas import EnterpriseOut, Me
from services.identity.sessions import token_revoked

_OFFICER_NAME = select(Officer.name).where(Officer.login == bindparam("login"))
_ENTERPRISE_NAME = select(Enterprise.name).where(Enterprise.uscc == bindparam("uscc"))
_PERSON = select(
    Person.id_number,
    Person.name,
    Person.level,
    Person.mobile,
    Person.password_hash.is_not(None).label("has_password"),
    exists().where(WeChatBinding.id_number == Person.id_number).label("wechat"),
    exists().where(Enterprise.legal_representative == Person.id_number).label("owns"),
    exists().where(Mandate.agent_id_number == Person.id_number).label("agent"),
    exists().where(LoginSession.id == bindparam("session_id"), LoginSession.revoked_at.is_(None)).label("live"),
).where(Person.id_number == bindparam("id_number"))
_OWNED = select(Enterprise.uscc, Enterprise.name, Enterprise.legal_representative).where(
    Enterprise.legal_representative == bindparam("id_number")
)
_MANDATES = select(*Mandate.__table__.c).where(Mandate.agent_id_number == bindparam("id_number"))


async def describe(connection: AsyncConnection, caller: Principal) -> Me | None:
    """What ``GET /me`` shows the caller; None when identity has revoked the caller's token."""
    if caller.kind == "person" and not caller.helper:
        return await _describe_person(connection, caller)
    if await token_revoked(connection, caller):
        return None
    if caller.kind == "officer":
        name = (await connection.execute(_OFFICER_NAME, {"login": caller.subject.removeprefix("officer:")})).scalar()
        return Me(
            subject=caller.subject,
            kind="officer",
            level=caller.level,
            name=name,
            department=caller.department,
            roles=list(caller.roles),
        )
    if caller.kind == "enterprise":
        return Me(
            subject=caller.subject,
            kind="enterprise",
            level=caller.level,
            name=(await connection.execute(_ENTERPRISE_NAME, {"uscc": caller.subject})).scalar(),
            actor=mask_id_number(caller.actor) if caller.actor else None,
            scopes=list(caller.scopes),
        )
    return await _describe_person(connection, caller)


async def _describe_person(connection: AsyncConnection, caller: Principal) -> Me | None:
    values = {"id_number": caller.subject, "session_id": caller.session_id or ""}
    person = (await connection.execute(_PERSON, values)).first()
    if person is None or (caller.session_id and not person.live):
        return None
    # A walk-in made known at the counter or a kiosk has no password and no mobile: no online login.
    channels = ["password", "sms"] if person.mobile and person.has_password else []
    if person.wechat:
        channels.append("wechat")
    owned = (await connection.execute(_OWNED, {"id_number": person.id_number})).all() if person.owns else []
    mandates = (await connection.execute(_MANDATES, {"id_number": person.id_number})).all() if person.agent else []
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
