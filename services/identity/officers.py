"""Officers: department staff with roles, created by an admin (the first by the CLI)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Problem
from services.identity.context import now
from services.identity.models import Officer
from services.identity.passwords import Passwords
from services.identity.registration import duplicate
from services.identity.schemas import CreateOfficer


async def create_officer(
    session: AsyncSession, passwords: Passwords, body: CreateOfficer, *, created_by: str
) -> Officer:
    if await session.get(Officer, body.login) is not None:
        raise duplicate("login", "this officer login")
    officer = Officer(
        login=body.login,
        name=body.name,
        department=body.department,
        roles=",".join(sorted(set(body.roles))),
        password_hash=await passwords.hash(body.password),
        created_at=now(),
        created_by=created_by,
    )
    session.add(officer)
    return officer


def officer_login_of(subject: str) -> str:
    if not subject.startswith("officer:"):
        raise Problem(403, "forbidden", "Officers only")
    return subject.removeprefix("officer:")
