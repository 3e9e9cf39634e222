"""Partners (department systems) and their HMAC keys: create, rotate, revoke, reinstate, read.

A partner pushes for one department. Its secrets are made here (32 random bytes, URL-safe base64),
shown once in the answer that made them and stored only sealed (services/exchange/secretbox.py).
Several keys may be active at once (a rotation: add a key, move the department system to it,
revoke the old one). Every change publishes ``exchange.partner.changed`` in its transaction, so
the gateways reload the keys at once. Who may do it: domain/access.py, checked first, here.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.exchange import PartnerChanged
from kit.auth import Principal
from kit.errors import Problem
from kit.events import envelope, uuid7
from kit.pagination import PageQuery
from services.exchange import scoped
from services.exchange.context import ExchangeContext
from services.exchange.domain import access
from services.exchange.models import Partner, PartnerKey, outbox

ACTIVE, REVOKED = "active", "revoked"


def new_secret() -> str:
    """A partner secret: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def new_key_id() -> str:
    """A key id: ``pk_`` and a time-ordered UUID (listed keys sort by age)."""
    return "pk_" + uuid7().hex


def key_context(key_id: str) -> str:
    """What a key's ciphertext is bound to (secretbox's associated data)."""
    return f"partner_key:{key_id}"


def partner_view(partner: Partner, keys: list[PartnerKey]) -> dict[str, Any]:
    """A partner as the admin API shows it: its keys listed without secrets."""
    return {
        "id": partner.id, "department": partner.department, "name": partner.name, "status": partner.status,
        "created_at": partner.created_at, "created_by": partner.created_by, "revoked_at": partner.revoked_at,
        "revoked_reason": partner.revoked_reason, "version": partner.version,
        "keys": [{"key_id": k.id, "status": k.status, "created_at": k.created_at, "revoked_at": k.revoked_at,
                  "last_used_at": k.last_used_at} for k in sorted(keys, key=lambda k: k.created_at)],
    }  # fmt: skip


async def _changed(session: AsyncSession, partner: Partner, change: str, at: datetime) -> None:
    data = PartnerChanged(partner=partner.id, department=partner.department, change=change, at=at)  # type: ignore[arg-type]
    await outbox.add(session, envelope(data, subject=partner.id))


async def _keys(session: AsyncSession, partner_id: str) -> list[PartnerKey]:
    return list((await session.scalars(select(PartnerKey).where(PartnerKey.partner_id == partner_id))).all())


async def _add_key(session: AsyncSession, ctx: ExchangeContext, partner_id: str, *, secret: str | None, at: datetime,
                   key_id: str | None = None) -> dict[str, str]:  # fmt: skip
    key_id = key_id or new_key_id()
    secret = secret or new_secret()
    session.add(PartnerKey(id=key_id, partner_id=partner_id, status=ACTIVE, created_at=at,
                           secret_ciphertext=ctx.box.seal(secret, context=key_context(key_id))))  # fmt: skip
    return {"key_id": key_id, "secret": secret}


async def create_partner(
    session: AsyncSession, ctx: ExchangeContext, caller: Principal, *, partner_id: str, department: str, name: str,
    secret: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A new partner with its first key; ``{"partner": …, "key": {key_id, secret}}`` (the only time
    the secret is shown). 409 when the id is taken. ``secret``: the seed's fixed demo secret."""
    access.check("partner.create", access.relation_to(caller, department), caller.roles)
    if await session.get(Partner, partner_id) is not None:
        raise Problem(409, "partner-exists", "Partner exists", f"a partner {partner_id} exists already")
    now = ctx.current_time()
    partner = Partner(id=partner_id, department=department, name=name, status=ACTIVE, created_at=now,
                      created_by=caller.subject[:64], version=1)  # fmt: skip
    session.add(partner)
    await session.flush()  # the partner row before its key (foreign key)
    key = await _add_key(session, ctx, partner_id, secret=secret, at=now)
    await _changed(session, partner, "created", now)
    await session.flush()
    return {"partner": partner_view(partner, await _keys(session, partner_id)), "key": key}


async def read_partner(session: AsyncSession, caller: Principal, *, partner_id: str) -> dict[str, Any]:
    """One partner with its keys (no secrets)."""
    partner = await scoped.visible(session, caller, Partner, partner_id, "partner.read")
    return partner_view(partner, await _keys(session, partner_id))


async def list_partners(
    session: AsyncSession, caller: Principal, page: PageQuery, *, department: str | None, status: str | None
) -> dict[str, Any]:
    """The partners of one department (a department's admin: its own) or of all (the platform's)."""
    total, rows = await scoped.department_page(session, caller, page, action="partner.list", model=Partner,
                                               department=department, filters=[(Partner.status, status)],
                                               order_by=[Partner.department, Partner.id])  # fmt: skip
    keys: dict[str, list[PartnerKey]] = {p.id: [] for p in rows}
    if rows:
        for key in (await session.scalars(select(PartnerKey).where(PartnerKey.partner_id.in_(keys)))).all():
            keys[key.partner_id].append(key)
    return page.answer(total, [partner_view(p, keys[p.id]) for p in rows])


async def add_key(session: AsyncSession, ctx: ExchangeContext, caller: Principal, *, partner_id: str) -> dict[str, Any]:
    """Rotation's first step: a new active key beside the old ones (shown once)."""
    partner = await scoped.visible(session, caller, Partner, partner_id, "partner.key_add")
    now = ctx.current_time()
    key = await _add_key(session, ctx, partner_id, secret=None, at=now)
    partner.version += 1
    await _changed(session, partner, "key_added", now)
    await session.flush()
    return {"partner": partner_view(partner, await _keys(session, partner_id)), "key": key}


async def revoke_key(
    session: AsyncSession, ctx: ExchangeContext, caller: Principal, *, partner_id: str, key_id: str
) -> dict[str, Any]:
    """A key stops signing at once (again: nothing changes)."""
    partner = await scoped.visible(session, caller, Partner, partner_id, "partner.key_revoke")
    key = await session.get(PartnerKey, key_id)
    if key is None or key.partner_id != partner_id:
        raise Problem(404, "not-found", "Not found", "no such key")
    if key.status != REVOKED:
        now = ctx.current_time()
        key.status, key.revoked_at = REVOKED, now
        partner.version += 1
        await _changed(session, partner, "key_revoked", now)
        await session.flush()
    return partner_view(partner, await _keys(session, partner_id))


async def set_status(
    session: AsyncSession, ctx: ExchangeContext, caller: Principal, *, partner_id: str, revoke: bool,
    reason: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Revoke a partner (every key stops at once; its keys are kept for a reinstatement) or
    reinstate it. Doing it again changes nothing and publishes nothing."""
    action = "partner.revoke" if revoke else "partner.reinstate"
    partner = await scoped.visible(session, caller, Partner, partner_id, action)
    wanted = REVOKED if revoke else ACTIVE
    if partner.status != wanted:
        now = ctx.current_time()
        partner.status = wanted
        partner.revoked_at = now if revoke else None
        partner.revoked_reason = reason if revoke else None
        partner.version += 1
        await _changed(session, partner, "revoked" if revoke else "reinstated", now)
        await session.flush()
    return partner_view(partner, await _keys(session, partner_id))


# Built once: every push asks it (SQLAlchemy then reuses the compiled form).
_ACTIVE_KEYS = (
    select(Partner.department, PartnerKey.id, PartnerKey.secret_ciphertext)
    .join(PartnerKey, PartnerKey.partner_id == Partner.id)
    .where(Partner.id == bindparam("b_partner"), Partner.status == ACTIVE, PartnerKey.status == ACTIVE)
)


async def active_secrets(
    session: AsyncSession, ctx: ExchangeContext, *, partner_id: str
) -> tuple[str, list[tuple[str, str]]] | None:
    """An active partner's department and its active keys ``[(key_id, secret)]``, in one query;
    None when it is unknown, revoked or without an active key (its pushes are then refused,
    whatever the gateway still believes)."""
    rows = (await session.execute(_ACTIVE_KEYS, {"b_partner": partner_id})).all()
    if not rows:
        return None
    return rows[0][0], [(key_id, ctx.box.open(sealed, context=key_context(key_id))) for _, key_id, sealed in rows]


async def export_keys(session: AsyncSession, ctx: ExchangeContext) -> dict[str, Any]:
    """Every active partner's active secrets and the one path it may push to, for the gateway:
    ``{partner_id: {"secrets": […], "paths": ["/api/v1/departments/<department>/events"]}}``."""
    rows = (await session.execute(
        select(Partner.id, Partner.department, PartnerKey.id, PartnerKey.secret_ciphertext)
        .join(PartnerKey, PartnerKey.partner_id == Partner.id)
        .where(Partner.status == ACTIVE, PartnerKey.status == ACTIVE)
        .order_by(Partner.id, PartnerKey.created_at)
    )).all()  # fmt: skip
    prefix = ctx.settings.signed_path_prefix.rstrip("/")
    partners: dict[str, Any] = {}
    for partner_id, department, key_id, sealed in rows:
        entry = partners.setdefault(partner_id, {"secrets": [], "paths": [f"{prefix}/departments/{department}/events"]})
        entry["secrets"].append(ctx.box.open(sealed, context=key_context(key_id)))
    return partners
