"""The hall's 7×24 self-service kiosks (自助终端, ADR 0025): register, list, rotate, revoke, and
the gateway's key export.

A kiosk signs its requests with an HMAC secret (the ADR 0003 scheme, its device id as
``X-Partner-Id``). The secret is made here (32 random bytes, URL-safe base64), shown once in the
answer that made it and stored only sealed (kit.secretbox, bound to the device id); a rotation
replaces it at once (the kiosk is re-provisioned by the one who rotates it). Every change publishes
``identity.kiosk.changed`` in its transaction, so the gateways reload the keys at once. Who may do
it: domain/rights.py (the kiosks belong to ``settings.kiosk_department``), checked first, here.
The gateway reads the keys with its service key (``GET /kiosks/keys``): a service, not an officer,
so that check is the signature's, below.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import KioskChanged
from kit.auth import Principal
from kit.errors import Problem
from kit.logs import get_logger
from kit.secretbox import SecretBox
from kit.signing import SignatureRejected, verify_request
from services.identity.context import Identity, now, publish
from services.identity.domain import rights
from services.identity.models import Kiosk
from services.identity.officers import officer_login_of
from services.identity.schemas import KioskOut, KioskWithSecret, RegisterKiosk
from services.identity.settings import Settings

log = get_logger("identity.kiosks")

ACTIVE, REVOKED = "active", "revoked"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_context(device_id: str) -> str:
    """What a kiosk secret's ciphertext is bound to (the box's associated data)."""
    return f"kiosk:{device_id}"


def box_of(identity: Identity) -> SecretBox:
    if identity.box is None:
        raise Problem(503, "kiosks-unavailable", "Kiosks not configured",
                      "IDENTITY_SECRETS_KEY is not set: kiosk secrets cannot be stored or read")  # fmt: skip
    return identity.box


def kiosk_out(kiosk: Kiosk) -> KioskOut:
    return KioskOut(
        device_id=kiosk.device_id, hall_code=kiosk.hall_code, department=kiosk.department, name=kiosk.name,
        location=kiosk.location, status=kiosk.status, created_at=kiosk.created_at, created_by=kiosk.created_by,
        rotated_at=kiosk.rotated_at, revoked_at=kiosk.revoked_at,
    )  # fmt: skip


def _check(identity: Identity, caller: Principal, action: str) -> None:
    roles = rights.actor_roles(caller.kind, caller.roles, caller.department)
    relation = rights.relation_to_department(caller.department, identity.settings.kiosk_department)
    if caller.kind != "officer" or not rights.may(action, roles, relation):
        raise Problem(403, "forbidden", "Not allowed",
                      f"{action} needs the platform admin or the admin of {identity.settings.kiosk_department}")  # fmt: skip


async def _changed(session: AsyncSession, kiosk: Kiosk, change: str) -> None:
    data = KioskChanged(device_id=kiosk.device_id, hall_code=kiosk.hall_code, change=change, at=now())  # type: ignore[arg-type]
    await publish(session, data, subject=kiosk.device_id)


async def register(
    session: AsyncSession, identity: Identity, caller: Principal, body: RegisterKiosk
) -> KioskWithSecret:
    """A new kiosk and its secret (shown this once)."""
    _check(identity, caller, "register_kiosk")
    return await insert(session, identity.settings, box_of(identity), body, created_by=officer_login_of(caller.subject))


async def insert(
    session: AsyncSession, settings: Settings, box: SecretBox, body: RegisterKiosk, *, created_by: str,
    secret: str | None = None,
) -> KioskWithSecret:  # fmt: skip
    """Store a new kiosk (no rights check: ``register``'s, or the seed's). ``secret``: the seed's
    fixed demo secret; a fresh one otherwise. 409 when the device id is taken."""
    if await session.get(Kiosk, body.device_id) is not None:
        raise Problem(409, "kiosk-exists", "Kiosk exists", f"a kiosk {body.device_id} is registered already")
    secret = secret or new_secret()
    kiosk = Kiosk(
        device_id=body.device_id, hall_code=body.hall_code, department=settings.kiosk_department, name=body.name,
        location=body.location, status=ACTIVE, created_at=now(), created_by=created_by,
        secret_ciphertext=box.seal(secret, context=secret_context(body.device_id)),
    )  # fmt: skip
    session.add(kiosk)
    await session.flush()
    await _changed(session, kiosk, "registered")
    return KioskWithSecret(kiosk=kiosk_out(kiosk), secret=secret)


async def list_kiosks(
    session: AsyncSession, identity: Identity, caller: Principal, hall_code: str | None
) -> list[KioskOut]:
    _check(identity, caller, "list_kiosks")
    query = select(Kiosk).order_by(Kiosk.hall_code, Kiosk.device_id)
    if hall_code:
        query = query.where(Kiosk.hall_code == hall_code)
    return [kiosk_out(k) for k in (await session.scalars(query)).all()]


async def _kiosk(session: AsyncSession, identity: Identity, caller: Principal, action: str, device_id: str) -> Kiosk:
    _check(identity, caller, action)  # callers with no right learn nothing (403 before 404)
    kiosk = await session.get(Kiosk, device_id)
    if kiosk is None:
        raise Problem(404, "not-found", "No such kiosk")
    return kiosk


async def rotate(session: AsyncSession, identity: Identity, caller: Principal, device_id: str) -> KioskWithSecret:
    """A new secret replaces the old one at once (shown this once); a revoked kiosk has none."""
    kiosk = await _kiosk(session, identity, caller, "rotate_kiosk_secret", device_id)
    if kiosk.status != ACTIVE:
        raise Problem(409, "kiosk-revoked", "Kiosk revoked", "a revoked kiosk gets no new secret")
    secret = new_secret()
    kiosk.secret_ciphertext = box_of(identity).seal(secret, context=secret_context(device_id))
    kiosk.rotated_at = now()
    await _changed(session, kiosk, "secret_rotated")
    return KioskWithSecret(kiosk=kiosk_out(kiosk), secret=secret)


async def revoke(session: AsyncSession, identity: Identity, caller: Principal, device_id: str) -> KioskOut:
    """The kiosk's signatures are refused at once (identity here, the gateway on the event). Again:
    nothing changes, nothing is published."""
    kiosk = await _kiosk(session, identity, caller, "revoke_kiosk", device_id)
    if kiosk.status != REVOKED:
        kiosk.status, kiosk.revoked_at, kiosk.revoked_by = REVOKED, now(), officer_login_of(caller.subject)
        await _changed(session, kiosk, "revoked")
    return kiosk_out(kiosk)


async def active_secret(session: AsyncSession, identity: Identity, device_id: str) -> tuple[Kiosk, str] | None:
    """An active kiosk and its secret, or None (unknown or revoked)."""
    if not device_id or len(device_id) > 64:
        return None
    kiosk = await session.get(Kiosk, device_id)
    if kiosk is None or kiosk.status != ACTIVE:
        return None
    return kiosk, box_of(identity).open(kiosk.secret_ciphertext, context=secret_context(device_id))


async def export_keys(session: AsyncSession, identity: Identity, request: Request) -> dict[str, Any]:
    """Every active kiosk's secret, for the gateway only: the request must be signed with a service
    key of ``settings.service_keys`` (the gateway's route table also denies the path from outside)."""
    services = {key_id: [secret.get_secret_value()] for key_id, secret in identity.settings.service_keys.items()}
    try:
        caller, _ = verify_request(services, method="GET", path=request.url.path, query=request.url.query,
                                   headers=request.headers, body=b"", now=now().timestamp(),
                                   max_age=identity.settings.signature_max_age_seconds)  # fmt: skip
    except SignatureRejected as rejected:
        raise Problem(403, "forbidden", "Not allowed", "the gateway's service signature is required") from rejected
    if caller != "gateway":
        raise Problem(403, "forbidden", "Not allowed", "only the gateway reads the kiosks' keys")
    box = box_of(identity)
    rows = (await session.scalars(select(Kiosk).where(Kiosk.status == ACTIVE))).all()
    return {
        k.device_id: {"secrets": [box.open(k.secret_ciphertext, context=secret_context(k.device_id))],
                      "hall_code": k.hall_code}
        for k in rows
    }  # fmt: skip
