"""GET /me: who the caller is, what they can act for. Full ID number only to its owner.

A hot read (issue 15): Core statements built once, run on the driver (``kit.driver``), the answer
built as plain JSON data — what ``Me`` serialises to — so nothing validates it a second time. For a
person's own token (no helper) one statement answers everything usually asked: the person's row,
whether the login session is still live (what ``sessions.token_revoked`` checks for such a token),
whether a WeChat account is bound, and whether any enterprise or mandate is there to list — only
then are those read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, select

from kit.auth import Principal
from kit.driver import Driver, Query
from kit.masking import mask_id_number, mask_phone
from services.identity.context import now
from services.identity.domain.mandates import mandate_usable
from services.identity.models import Enterprise, LoginSession, Mandate, Officer, Person, WeChatBinding
from services.identity.schemas import Me
from services.identity.sessions import token_revoked

_OFFICER_NAME = Query(select(Officer.name).where(Officer.login == bindparam("login")))
_ENTERPRISE_NAME = Query(select(Enterprise.name).where(Enterprise.uscc == bindparam("uscc")))
_PERSON = Query(
    select(
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
)
_OWNED = Query(
    select(Enterprise.uscc, Enterprise.name, Enterprise.legal_representative).where(
        Enterprise.legal_representative == bindparam("id_number")
    )
)
_MANDATES = Query(select(*Mandate.__table__.c).where(Mandate.agent_id_number == bindparam("id_number")))

# Every field of ``Me`` with its default, as it serialises: each answer starts from these (built
# from the model once, so a field added there shows here).
_BLANK: dict[str, Any] = Me(subject="", kind="", level=0).model_dump(mode="json")


async def describe(db: Driver, caller: Principal) -> dict[str, Any] | None:
    """What ``GET /me`` shows the caller, as ``Me`` serialises it; None when identity has revoked
    the caller's token."""
    if caller.kind == "person" and not caller.helper:
        return await _describe_person(db, caller)
    if await token_revoked(db, caller):
        return None
    if caller.kind == "officer":
        name = await db.fetchval(_OFFICER_NAME, {"login": caller.subject.removeprefix("officer:")})
        return {
            **_BLANK,
            "subject": caller.subject,
            "kind": "officer",
            "level": caller.level,
            "name": name,
            "department": caller.department,
            "roles": list(caller.roles),
        }
    if caller.kind == "enterprise":
        return {
            **_BLANK,
            "subject": caller.subject,
            "kind": "enterprise",
            "level": caller.level,
            "name": await db.fetchval(_ENTERPRISE_NAME, {"uscc": caller.subject}),
            "actor": mask_id_number(caller.actor) if caller.actor else None,
            "scopes": list(caller.scopes),
        }
    return await _describe_person(db, caller)


async def _describe_person(db: Driver, caller: Principal) -> dict[str, Any] | None:
    values = {"id_number": caller.subject, "session_id": caller.session_id or ""}
    person = await db.fetchrow(_PERSON, values)
    if person is None or (caller.session_id and not person["live"]):
        return None
    id_number = person["id_number"]
    # A walk-in made known at the counter or a kiosk has no password and no mobile: no online login.
    channels = ["password", "sms"] if person["mobile"] and person["has_password"] else []
    if person["wechat"]:
        channels.append("wechat")
    owned = await db.fetch(_OWNED, {"id_number": id_number}) if person["owns"] else []
    mandates = await db.fetch(_MANDATES, {"id_number": id_number}) if person["agent"] else []
    current = now()
    return {
        **_BLANK,
        "subject": id_number,
        "kind": "person",
        "level": person["level"],
        "name": person["name"],
        "id_number": id_number,  # the owner sees the full number
        "mobile": mask_phone(person["mobile"]) if person["mobile"] else None,
        "channels": channels,
        "enterprises": [
            {
                "uscc": e["uscc"],
                "name": e["name"],
                "legal_representative": mask_id_number(e["legal_representative"]),
                "role": "legal_representative",
            }
            for e in owned
        ],
        # As ``agents.mandate_out`` shows them to the agent themself (unmasked), the usable ones only.
        "mandates": [
            {
                "id": m["id"],
                "enterprise": m["enterprise_uscc"],
                "agent": m["agent_id_number"],
                "scopes": m["scopes"].split(),
                "expires_at": _instant(m["expires_at"]),
                "revoked_at": None,
                "active": True,
            }
            for m in mandates
            if mandate_usable(expires_at=m["expires_at"], revoked_at=m["revoked_at"], now=current)
        ],
    }


def _instant(value: datetime) -> str:
    """A stored (UTC) instant as pydantic writes a ``datetime``: ISO 8601, ``Z`` for UTC."""
    return value.isoformat().replace("+00:00", "Z")
