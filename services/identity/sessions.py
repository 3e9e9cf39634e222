"""Logging in, refreshing, acting for an enterprise, logging out.

Refresh tokens are opaque, stored hashed, single use: each refresh returns a new one. Presenting
one that was already used means it was copied, so the whole family (the login session) is revoked.
Every token is built from identity's records at the moment it is issued (name, level, roles), so
a refresh after a real-name level rose carries the new level. Revoking a session publishes
``identity.tokens.revoked`` in the same transaction (services/identity/revocation.py).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal, unauthorized
from kit.driver import Driver, Query, Row
from kit.errors import Problem
from services.identity import sms_codes
from services.identity.adapters.wechat import WeChatCodeInvalid, WeChatUnavailable
from services.identity.context import Identity, now
from services.identity.domain.claims import access_claims
from services.identity.domain.lockout import retry_after_seconds
from services.identity.domain.mandates import mandate_usable
from services.identity.login_guard import claim_check, locked_problem, record_failure, record_success
from services.identity.models import (
    Enterprise,
    LoginGuard,
    LoginSession,
    Mandate,
    Officer,
    Person,
    RefreshToken,
    WeChatBinding,
)
from services.identity.revocation import publish_revocation
from services.identity.schemas import OfficerLogin, PasswordLogin, SmsLogin, TokenPair, WeChatLogin

BAD_CREDENTIALS = "login or password is wrong"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _ensure_not_locked(session: AsyncSession, identity: Identity, account: str) -> None:
    """Read-only: refuse while the account's password lock lasts (for logins without a password)."""
    guard = await session.get(LoginGuard, account)
    current = now()
    if guard is not None and guard.locked_until is not None and guard.locked_until > current:
        wait = retry_after_seconds(guard.locked_until, guard.window_started_at, current, identity.lockout)
        raise locked_problem(wait, guard.locked_until)


async def _find_person(session: AsyncSession, login: str) -> Person | None:
    login = login.strip().upper()
    column = Person.mobile if login.isdigit() and len(login) == 11 else Person.id_number
    return (await session.execute(select(Person).where(column == login))).scalar_one_or_none()


async def _checked_password(
    session: AsyncSession, identity: Identity, account: str, password_hash: str | None, password: str
) -> None:
    """One guarded password check: claim a slot (or 423), verify, record. Refuses with 401.

    A login name with no account is guarded like one with an account, so the 401s and the 423
    after the fifth failure look the same whether or not the account exists."""
    await claim_check(session, account, identity.lockout)
    if not await identity.passwords.verify(password_hash, password):
        await record_failure(session, account, identity.lockout)
        raise unauthorized(BAD_CREDENTIALS)
    await record_success(session, account)


async def _password_person(session: AsyncSession, identity: Identity, login: str, password: str) -> Person:
    person = await _find_person(session, login)
    account = f"person:{person.id_number}" if person else f"person-login:{login.strip().upper()}"
    await _checked_password(session, identity, account, person.password_hash if person else None, password)
    assert person is not None  # verify() is False without a hash
    return person


async def _open_session(session: AsyncSession, identity: Identity, *, account: str, method: str) -> tuple[str, str]:
    """A new login session and its first refresh token."""
    login_session = LoginSession(id=str(uuid.uuid4()), account=account, method=method, created_at=now())
    session.add(login_session)
    refresh = await _new_refresh_token(session, identity, login_session.id)
    return login_session.id, refresh


async def _new_refresh_token(session: AsyncSession, identity: Identity, session_id: str) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            token_hash=_digest(token),
            session_id=session_id,
            expires_at=now() + timedelta(seconds=identity.settings.refresh_token_ttl_seconds),
        )
    )
    return token


async def _person_tokens(session: AsyncSession, identity: Identity, person: Person, method: str) -> TokenPair:
    session_id, refresh = await _open_session(session, identity, account=f"person:{person.id_number}", method=method)
    return await _person_pair(identity, person, session_id, refresh)


async def _person_pair(identity: Identity, person: Person, session_id: str, refresh: str | None) -> TokenPair:
    # The person's name: declared at L1, confirmed by the population registry from L2 on.
    return await _pair(
        identity,
        subject=person.id_number,
        kind="person",
        level=person.level,
        name=person.name,
        session_id=session_id,
        refresh=refresh,
    )


async def _officer_pair(identity: Identity, officer: Officer, session_id: str, refresh: str | None) -> TokenPair:
    return await _pair(
        identity,
        subject=f"officer:{officer.login}",
        kind="officer",
        level=4,
        name=officer.name,
        session_id=session_id,
        refresh=refresh,
        roles=officer.roles.split(","),
        department=officer.department,
    )


async def _pair(
    identity: Identity,
    *,
    subject: str,
    kind: str,
    level: int,
    name: str,
    session_id: str,
    refresh: str | None,
    ttl: timedelta | None = None,
    **extra,
) -> TokenPair:
    s = identity.settings
    lifetime = identity.access_ttl if ttl is None else ttl
    claims = access_claims(
        subject=subject,
        kind=kind,
        level=level,
        name=name,
        session_id=session_id,
        issuer=s.token_issuer,
        audience=s.token_audience,
        now=now(),
        ttl=lifetime,
        **extra,
    )
    return TokenPair(
        access_token=await identity.keyring.sign(claims),
        expires_in=int(lifetime.total_seconds()),
        refresh_token=refresh,
        refresh_expires_in=s.refresh_token_ttl_seconds if refresh else None,
        subject=subject,
        kind=kind,
        level=level,
        name=name,
    )


async def login_password(session: AsyncSession, identity: Identity, body: PasswordLogin) -> TokenPair:
    person = await _password_person(session, identity, body.login, body.password)
    return await _person_tokens(session, identity, person, "password")


async def login_sms(session: AsyncSession, identity: Identity, body: SmsLogin) -> TokenPair:
    # The code first: only whoever holds the phone learns whether an account uses the number.
    await sms_codes.consume_code(session, identity, mobile=body.mobile, purpose="login", code=body.code, field="code")
    person = (await session.execute(select(Person).where(Person.mobile == body.mobile))).scalar_one_or_none()
    if person is None:
        raise unauthorized("no account uses this mobile number: register first")
    await _ensure_not_locked(session, identity, f"person:{person.id_number}")
    return await _person_tokens(session, identity, person, "sms")


async def login_wechat(session: AsyncSession, identity: Identity, body: WeChatLogin) -> TokenPair:
    try:
        openid = await identity.adapters.wechat.openid_for(body.code)
    except WeChatCodeInvalid as exc:
        raise unauthorized("the WeChat login code is invalid or used") from exc
    except WeChatUnavailable as exc:
        raise Problem(503, "wechat-unavailable", "WeChat did not answer", "try again shortly") from exc
    binding = await session.get(WeChatBinding, openid)
    if binding is not None:
        person = await session.get(Person, binding.id_number)
    elif body.bind is None:
        raise Problem(
            409,
            "wechat-not-bound",
            "WeChat account not bound",
            "first use of this WeChat account: log in again with bind {login, password}, or register first",
        )
    else:
        person = await _password_person(session, identity, body.bind.login, body.bind.password)
        session.add(WeChatBinding(openid=openid, id_number=person.id_number, created_at=now()))
    return await _person_tokens(session, identity, person, "wechat")


async def login_officer(session: AsyncSession, identity: Identity, body: OfficerLogin) -> TokenPair:
    officer = await session.get(Officer, body.login)
    usable = officer is not None and officer.disabled_at is None
    # A disabled or unknown officer gets the same guarded check and the same 401 as a wrong password.
    account = f"officer:{body.login}"
    await _checked_password(session, identity, account, officer.password_hash if usable else None, body.password)
    assert officer is not None
    session_id, refresh = await _open_session(session, identity, account=account, method="officer")
    return await _officer_pair(identity, officer, session_id, refresh)


async def _revoke_session(
    session: AsyncSession, identity: Identity, session_id: str, reason: str, event_reason: str, *, officer: bool
) -> bool:
    """Revoke a live login session and publish it; False when it was already revoked."""
    result = await session.execute(
        update(LoginSession)
        .where(LoginSession.id == session_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now(), revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    await publish_revocation(session, identity, reason=event_reason, session_id=session_id, officer=officer)
    return True


async def refresh(session: AsyncSession, identity: Identity, token: str) -> TokenPair:
    """A new access token and refresh token, built from the records as they are now."""
    record = await session.get(RefreshToken, _digest(token))
    if record is None or record.expires_at <= now():
        raise unauthorized("refresh token unknown or expired")
    login_session = await session.get(LoginSession, record.session_id)
    if login_session is None or login_session.revoked_at is not None:
        raise unauthorized("session revoked")
    # Mark it used only if nobody did first: two parallel uses of one token are a reuse too.
    used = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == record.token_hash, RefreshToken.used_at.is_(None))
        .values(used_at=now())
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        # Reuse: someone holds a copy. Revoke the family, keep that revocation, refuse.
        officer = login_session.account.startswith("officer:")
        await _revoke_session(
            session, identity, login_session.id, "refresh_token_reuse", "refresh_reuse", officer=officer
        )
        await session.commit()
        raise unauthorized("refresh token reused; the session is revoked")
    kind, _, key = login_session.account.partition(":")
    if kind == "officer":
        officer = await session.get(Officer, key)
        if officer is None or officer.disabled_at is not None:
            raise unauthorized("officer disabled")
        return await _officer_pair(
            identity, officer, login_session.id, await _new_refresh_token(session, identity, login_session.id)
        )
    person = await session.get(Person, key)
    if person is None:
        raise unauthorized("session revoked")
    return await _person_pair(
        identity, person, login_session.id, await _new_refresh_token(session, identity, login_session.id)
    )


async def logout(session: AsyncSession, identity: Identity, caller: Principal) -> None:
    if caller.session_id:
        await _revoke_session(
            session, identity, caller.session_id, "logout", "logout", officer=caller.kind == "officer"
        )


# Built once: checked on every request identity answers for a caller (its own endpoints).
_SESSION_REVOKED_AT = Query(select(LoginSession.revoked_at).where(LoginSession.id == bindparam("session_id")))
_OFFICER_DISABLED_AT = Query(select(Officer.disabled_at).where(Officer.login == bindparam("login")))
_REPRESENTATIVE = Query(select(Enterprise.legal_representative).where(Enterprise.uscc == bindparam("uscc")))
_MANDATE_TERMS = Query(
    select(Mandate.expires_at, Mandate.revoked_at).where(
        Mandate.enterprise_uscc == bindparam("uscc"), Mandate.agent_id_number == bindparam("person")
    )
)


async def _rows(db: AsyncSession | Driver, query: Query, params: dict[str, str]) -> Sequence[Row]:
    """The statement's rows, read by column name: on the driver (``GET /me``, a hot read) or in the
    request's session (``LiveCaller``, before the endpoint writes in it)."""
    if isinstance(db, Driver):
        return await db.fetch(query, params)
    return (await db.execute(query.statement, params)).mappings().all()


async def token_revoked(db: AsyncSession | Driver, caller: Principal) -> bool:
    """What identity itself knows at once, for its own endpoints: the session ended, the officer
    was changed or disabled (their sessions end with it), an act-as token's mandate is gone, the
    officer who made a counter token logged out or was disabled."""
    if caller.helper:
        helper_session = (caller.claims.get("hlp") or {}).get("sid")
        if helper_session and await _session_ended(db, str(helper_session)):
            return True
        if await _officer_gone(db, caller.helper.removeprefix("officer:")):
            return True
    if caller.session_id and await _session_ended(db, caller.session_id):
        return True
    if caller.kind == "officer":
        return await _officer_gone(db, caller.subject.removeprefix("officer:"))
    if caller.kind == "enterprise" and caller.actor:
        return not await _may_act_for(db, caller.actor, caller.subject)
    return False


async def _session_ended(db: AsyncSession | Driver, session_id: str) -> bool:
    rows = await _rows(db, _SESSION_REVOKED_AT, {"session_id": session_id})
    return not rows or rows[0]["revoked_at"] is not None


async def _officer_gone(db: AsyncSession | Driver, login: str) -> bool:
    rows = await _rows(db, _OFFICER_DISABLED_AT, {"login": login})
    return not rows or rows[0]["disabled_at"] is not None


async def _usable_mandates(session: AsyncSession, person: str, uscc: str) -> list[Mandate]:
    mandates = (
        (
            await session.execute(
                select(Mandate).where(Mandate.enterprise_uscc == uscc, Mandate.agent_id_number == person)
            )
        )
        .scalars()
        .all()
    )
    current = now()
    return [m for m in mandates if mandate_usable(expires_at=m.expires_at, revoked_at=m.revoked_at, now=current)]


async def _may_act_for(db: AsyncSession | Driver, person: str, uscc: str) -> bool:
    representatives = await _rows(db, _REPRESENTATIVE, {"uscc": uscc})
    if not representatives:
        return False
    if representatives[0]["legal_representative"] == person:
        return True
    current = now()
    terms = await _rows(db, _MANDATE_TERMS, {"uscc": uscc, "person": person})
    return any(mandate_usable(expires_at=t["expires_at"], revoked_at=t["revoked_at"], now=current) for t in terms)


async def act_as(session: AsyncSession, identity: Identity, caller: Principal, uscc: str) -> TokenPair:
    """A token for the enterprise with the person as actor (RFC 8693): legal representative or agent.

    ``name`` is the enterprise's registered name, ``act.name`` the person's; the level is the
    person's level as recorded now."""
    if caller.kind != "person":
        raise Problem(403, "forbidden", "Only a person can act for an enterprise")
    enterprise = await session.get(Enterprise, uscc)
    if enterprise is None:
        raise Problem(404, "not-found", "No such enterprise")
    person = await session.get(Person, caller.subject)
    if person is None:
        raise unauthorized("no such person")
    if enterprise.legal_representative == caller.subject:
        scopes = ["*"]
    else:
        usable = await _usable_mandates(session, caller.subject, uscc)
        if not usable:
            raise Problem(403, "no-mandate", "No valid mandate", "no unexpired, unrevoked mandate from this enterprise")
        scopes = sorted({scope for m in usable for scope in m.scopes.split()})
    hall: dict = {}
    if caller.channel != "online":
        # A token made at the counter or a kiosk stays what it is when the person acts for an
        # enterprise: same channel, same helper or device, and no longer-lived (ADR 0025).
        remaining = timedelta(seconds=max(0, int(caller.claims["exp"]) - int(now().timestamp())))
        hall = {"channel": caller.channel, "helper": caller.claims.get("hlp"), "device": caller.device,
                "ttl": min(identity.access_ttl, remaining)}  # fmt: skip
    return await _pair(
        identity,
        subject=uscc,
        kind="enterprise",
        level=min(person.level, caller.level) if hall else person.level,
        name=enterprise.name,
        session_id=caller.session_id if hall else (caller.session_id or ""),
        refresh=None,
        actor=person.id_number,
        actor_name=person.name,
        scopes=scopes,
        **hall,
    )
