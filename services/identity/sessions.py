"""Logging in, refreshing, acting for an enterprise, logging out.

Refresh tokens are opaque, stored hashed, single use: each refresh returns a new one. Presenting
one that was already used means it was copied, so the whole family (the login session) is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal, unauthorized
from kit.errors import Problem
from services.identity import sms_codes
from services.identity.adapters.wechat import WeChatCodeInvalid, WeChatUnavailable
from services.identity.context import Identity, now
from services.identity.domain.claims import access_claims
from services.identity.domain.lockout import locked_until
from services.identity.domain.mandates import mandate_usable
from services.identity.models import (
    Enterprise,
    LoginFailure,
    LoginSession,
    Mandate,
    Officer,
    Person,
    RefreshToken,
    WeChatBinding,
)
from services.identity.schemas import OfficerLogin, PasswordLogin, SmsLogin, TokenPair, WeChatLogin

BAD_CREDENTIALS = "login or password is wrong"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _check_not_locked(session: AsyncSession, identity: Identity, account: str) -> None:
    policy = identity.lockout
    since = now() - policy.window - policy.duration
    failures = (
        (
            await session.execute(
                select(LoginFailure.at).where(LoginFailure.account == account, LoginFailure.at >= since)
            )
        )
        .scalars()
        .all()
    )
    until = locked_until(failures, now(), policy)
    if until is not None:
        wait = max(1, int((until - now()).total_seconds()))
        raise Problem(
            423,
            "account-locked",
            "Account locked",
            f"too many failed logins; try again in {wait}s",
            headers={"Retry-After": str(wait)},
            locked_until=until.isoformat(),
        )


async def _fail(session: AsyncSession, account: str | None) -> None:
    """Record the failure (committed, though the request fails) and refuse."""
    if account is not None:
        session.add(LoginFailure(account=account, at=now()))
        await session.commit()
    raise unauthorized(BAD_CREDENTIALS)


async def _find_person(session: AsyncSession, login: str) -> Person | None:
    login = login.strip().upper()
    column = Person.mobile if login.isdigit() and len(login) == 11 else Person.id_number
    return (await session.execute(select(Person).where(column == login))).scalar_one_or_none()


async def _password_person(session: AsyncSession, identity: Identity, login: str, password: str) -> Person:
    person = await _find_person(session, login)
    account = f"person:{person.id_number}" if person else None
    if account:
        await _check_not_locked(session, identity, account)
    if not await identity.passwords.verify(person.password_hash if person else None, password) or person is None:
        await _fail(session, account)
    await session.execute(delete(LoginFailure).where(LoginFailure.account == account))
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
    return await _pair(
        identity, subject=person.id_number, kind="person", level=person.level, session_id=session_id, refresh=refresh
    )


async def _pair(
    identity: Identity, *, subject: str, kind: str, level: int, session_id: str, refresh: str | None, **extra
) -> TokenPair:
    s = identity.settings
    claims = access_claims(
        subject=subject,
        kind=kind,
        level=level,
        session_id=session_id,
        issuer=s.token_issuer,
        audience=s.token_audience,
        now=now(),
        ttl=identity.access_ttl,
        **extra,
    )
    return TokenPair(
        access_token=await identity.keyring.sign(claims),
        expires_in=s.access_token_ttl_seconds,
        refresh_token=refresh,
        refresh_expires_in=s.refresh_token_ttl_seconds if refresh else None,
        subject=subject,
        kind=kind,
        level=level,
    )


async def login_password(session: AsyncSession, identity: Identity, body: PasswordLogin) -> TokenPair:
    person = await _password_person(session, identity, body.login, body.password)
    return await _person_tokens(session, identity, person, "password")


async def login_sms(session: AsyncSession, identity: Identity, body: SmsLogin) -> TokenPair:
    person = (await session.execute(select(Person).where(Person.mobile == body.mobile))).scalar_one_or_none()
    if person is None:
        raise unauthorized("no account uses this mobile number")
    await _check_not_locked(session, identity, f"person:{person.id_number}")
    await sms_codes.consume_code(session, identity, mobile=body.mobile, purpose="login", code=body.code, field="code")
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
    account = f"officer:{body.login}" if officer else None
    if account:
        await _check_not_locked(session, identity, account)
    if (
        not await identity.passwords.verify(officer.password_hash if officer else None, body.password)
        or officer is None
    ):
        await _fail(session, account)
    await session.execute(delete(LoginFailure).where(LoginFailure.account == account))
    session_id, refresh = await _open_session(session, identity, account=account, method="officer")
    return await _pair(
        identity,
        subject=f"officer:{officer.login}",
        kind="officer",
        level=4,
        session_id=session_id,
        refresh=refresh,
        roles=officer.roles.split(","),
        department=officer.department,
    )


async def refresh(session: AsyncSession, identity: Identity, token: str) -> TokenPair:
    record = await session.get(RefreshToken, _digest(token))
    if record is None or record.expires_at <= now():
        raise unauthorized("refresh token unknown or expired")
    login_session = await session.get(LoginSession, record.session_id)
    if login_session.revoked_at is not None:
        raise unauthorized("session revoked")
    if record.used_at is not None:
        # Reuse: someone holds a copy. Revoke the family, keep that revocation, refuse.
        login_session.revoked_at = now()
        login_session.revoked_reason = "refresh_token_reuse"
        await session.commit()
        raise unauthorized("refresh token reused; the session is revoked")
    record.used_at = now()
    new_token = await _new_refresh_token(session, identity, login_session.id)
    kind, _, key = login_session.account.partition(":")
    if kind == "officer":
        officer = await session.get(Officer, key)
        return await _pair(
            identity,
            subject=f"officer:{key}",
            kind="officer",
            level=4,
            session_id=login_session.id,
            refresh=new_token,
            roles=officer.roles.split(","),
            department=officer.department,
        )
    person = await session.get(Person, key)
    return await _pair(
        identity, subject=key, kind="person", level=person.level, session_id=login_session.id, refresh=new_token
    )


async def logout(session: AsyncSession, caller: Principal) -> None:
    if caller.session_id:
        await session.execute(
            update(LoginSession)
            .where(LoginSession.id == caller.session_id, LoginSession.revoked_at.is_(None))
            .values(revoked_at=now(), revoked_reason="logout")
        )


async def session_revoked(session: AsyncSession, session_id: str | None) -> bool:
    if not session_id:
        return False
    login_session = await session.get(LoginSession, session_id)
    return login_session is None or login_session.revoked_at is not None


async def act_as(session: AsyncSession, identity: Identity, caller: Principal, uscc: str) -> TokenPair:
    """A token for the enterprise with the person as actor (RFC 8693): legal representative or agent."""
    if caller.kind != "person":
        raise Problem(403, "forbidden", "Only a person can act for an enterprise")
    enterprise = await session.get(Enterprise, uscc)
    if enterprise is None:
        raise Problem(404, "not-found", "No such enterprise")
    if enterprise.legal_representative == caller.subject:
        scopes = ["*"]
    else:
        mandates = (
            (
                await session.execute(
                    select(Mandate).where(Mandate.enterprise_uscc == uscc, Mandate.agent_id_number == caller.subject)
                )
            )
            .scalars()
            .all()
        )
        current = now()
        usable = [m for m in mandates if mandate_usable(expires_at=m.expires_at, revoked_at=m.revoked_at, now=current)]
        if not usable:
            raise Problem(403, "no-mandate", "No valid mandate", "no unexpired, unrevoked mandate from this enterprise")
        scopes = sorted({scope for m in usable for scope in m.scopes.split()})
    return await _pair(
        identity,
        subject=uscc,
        kind="enterprise",
        level=caller.level,
        session_id=caller.session_id,
        refresh=None,
        actor=caller.subject,
        scopes=scopes,
    )
