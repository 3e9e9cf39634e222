"""One-time SMS codes: 6 digits, 5 minutes, single use, a few attempts."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Problem, field_problem
from services.identity.context import Identity, now
from services.identity.models import SmsCode

TEXTS = {
    "register": "【一网通办】您的注册验证码为{code},5分钟内有效。请勿告诉他人。",
    "login": "【一网通办】您的登录验证码为{code},5分钟内有效。请勿告诉他人。",
}


def _digest(mobile: str, code: str) -> str:
    return hashlib.sha256(f"{mobile}:{code}".encode()).hexdigest()


async def send_code(session: AsyncSession, identity: Identity, *, mobile: str, purpose: str) -> int:
    """Send a fresh code; refuse a resend inside a minute. Returns its lifetime in seconds."""
    current = now()
    latest = (
        await session.execute(
            select(SmsCode)
            .where(SmsCode.mobile == mobile, SmsCode.purpose == purpose)
            .order_by(SmsCode.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    ttl = identity.settings.sms_code_ttl_seconds
    resend_interval = timedelta(seconds=identity.settings.sms_resend_interval_seconds)
    if latest is not None:
        sent_at = latest.expires_at - timedelta(seconds=ttl)
        if current - sent_at < resend_interval:
            wait = int((resend_interval - (current - sent_at)).total_seconds()) + 1
            raise Problem(
                429, "sms-too-soon", "Code sent recently", f"try again in {wait}s", headers={"Retry-After": str(wait)}
            )
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(
        SmsCode(
            mobile=mobile, purpose=purpose, code_hash=_digest(mobile, code), expires_at=current + timedelta(seconds=ttl)
        )
    )
    await session.flush()
    await identity.adapters.sms.send(mobile, TEXTS[purpose].format(code=code))
    return ttl


async def consume_code(
    session: AsyncSession, identity: Identity, *, mobile: str, purpose: str, code: str, field: str
) -> None:
    """Accept the newest live code once; a wrong guess counts and is committed even though we refuse."""
    current = now()
    record = (
        await session.execute(
            select(SmsCode)
            .where(SmsCode.mobile == mobile, SmsCode.purpose == purpose, SmsCode.used_at.is_(None))
            .order_by(SmsCode.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if record is None or record.expires_at <= current or record.attempts >= identity.settings.sms_code_max_attempts:
        raise field_problem(field, "sms_code_expired", "no valid code for this mobile: request a new one")
    if not secrets.compare_digest(record.code_hash, _digest(mobile, code)):
        await session.execute(update(SmsCode).where(SmsCode.id == record.id).values(attempts=SmsCode.attempts + 1))
        await session.commit()
        raise field_problem(field, "sms_code_mismatch", "the code does not match")
    record.used_at = current
