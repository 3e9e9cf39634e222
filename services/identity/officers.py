"""Officers: department staff with roles, managed by admins within their bounds (domain/rights.py).

The first admin comes from the CLI (``create_officer`` without an actor). Changing an officer's
roles or department, or disabling them, ends their login sessions and publishes a token
revocation for ``officer:<login>``: the old roles stop working everywhere within seconds.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import Problem
from services.identity.context import Identity, now
from services.identity.domain import rights
from services.identity.models import LoginSession, Officer
from services.identity.passwords import Passwords
from services.identity.registration import duplicate
from services.identity.revocation import publish_revocation
from services.identity.schemas import ChangeOfficer, CreateOfficer, OfficerOut


def officer_out(officer: Officer) -> OfficerOut:
    return OfficerOut(
        login=officer.login,
        name=officer.name,
        department=officer.department,
        roles=officer.roles.split(","),
        disabled=officer.disabled_at is not None,
    )


async def create_officer(
    session: AsyncSession, passwords: Passwords, body: CreateOfficer, *, created_by: str
) -> Officer:
    """Store a new officer (no rights check: the CLI's bootstrap, or after ``create_by``'s check)."""
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


def _refuse_unless(action: str, caller: Principal, departments: set[str], granted: set[str]) -> None:
    roles = rights.actor_roles(caller.kind, caller.roles, caller.department)
    refusal = rights.officer_change_refusal(action, roles, caller.department, departments, granted)
    if refusal is not None:
        raise Problem(403, "forbidden", "Not allowed", refusal)


async def create_by(session: AsyncSession, identity: Identity, caller: Principal, body: CreateOfficer) -> Officer:
    """An admin creates an officer inside the admin's bounds."""
    _refuse_unless("create_officer", caller, {body.department}, set(body.roles))
    return await create_officer(session, identity.passwords, body, created_by=officer_login_of(caller.subject))


async def _officer(session: AsyncSession, caller: Principal, action: str, login: str) -> Officer:
    """The officer to act on; callers with no right to ``action`` anywhere learn nothing (403 first)."""
    roles = rights.actor_roles(caller.kind, caller.roles, caller.department)
    if not any(rights.may(action, roles, relation) for relation in rights.RELATIONS):
        raise Problem(403, "forbidden", "Not allowed", f"{action} needs an admin")
    officer = await session.get(Officer, login)
    if officer is None:
        raise Problem(404, "not-found", "No such officer")
    return officer


async def _end_sessions(session: AsyncSession, identity: Identity, officer: Officer) -> None:
    account = f"officer:{officer.login}"
    await session.execute(
        update(LoginSession)
        .where(LoginSession.account == account, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now(), revoked_reason="officer_changed")
        .execution_options(synchronize_session=False)
    )
    await publish_revocation(session, identity, reason="officer_changed", subject=account, officer=True)


async def change_by(
    session: AsyncSession, identity: Identity, caller: Principal, login: str, body: ChangeOfficer
) -> Officer:
    """Change an officer's name, department or roles; the caller's bounds cover before and after."""
    officer = await _officer(session, caller, "change_officer", login)
    old_roles = set(officer.roles.split(","))
    new_roles = set(body.roles) if body.roles is not None else old_roles
    new_department = body.department or officer.department
    _refuse_unless("change_officer", caller, {officer.department, new_department}, old_roles | new_roles)
    if officer.disabled_at is not None:
        raise Problem(409, "officer-disabled", "Officer disabled", "a disabled officer cannot be changed")
    changed_access = new_roles != old_roles or new_department != officer.department
    if body.name is not None:
        officer.name = body.name
    officer.roles = ",".join(sorted(new_roles))
    officer.department = new_department
    officer.changed_at = now()
    officer.changed_by = officer_login_of(caller.subject)
    if changed_access:
        await _end_sessions(session, identity, officer)
    return officer


async def disable_by(session: AsyncSession, identity: Identity, caller: Principal, login: str) -> Officer:
    """Disable an officer: no more logins or refreshes; live tokens are revoked."""
    officer = await _officer(session, caller, "disable_officer", login)
    _refuse_unless("disable_officer", caller, {officer.department}, set(officer.roles.split(",")))
    if officer.disabled_at is None:
        officer.disabled_at = now()
        officer.changed_by = officer_login_of(caller.subject)
        await _end_sessions(session, identity, officer)
    return officer


def officer_login_of(subject: str) -> str:
    if not subject.startswith("officer:"):
        raise Problem(403, "forbidden", "Officers only")
    return subject.removeprefix("officer:")
