"""Kiosk tokens (7×24 自助, ADR 0025): a kiosk read a person's ID card and asks for a 10-minute
token for that person.

The request is signed by the kiosk device (ADR 0003 scheme, device id in ``X-Partner-Id``, over
the gateway's path ``/api/v1/identity/kiosk-sessions``). Identity verifies the signature again
itself against its own registry (an active kiosk, its secret) and remembers the nonce in its
database (a replay is refused on every replica) — it never trusts a header the gateway set. The
card read goes to the ID-card check (身份证核验, adapters/idcards.py) after identity's own date
rules; a pass raises the person to at least L2 (the check is the population registry's, as the
L2 check is) and makes a walk-in known as the counter does. The token: the person's ``sub``,
``name``, ``lvl`` (their level, at least 2), ``chn: kiosk``, ``dev: <device id>``; no refresh.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from kit.bodyguard import load_json_body
from kit.errors import Problem, field_problem
from kit.logs import get_logger
from kit.masking import mask_id_number
from kit.signing import SignatureRejected, verify_request
from services.identity import kiosks, verification
from services.identity.adapters.idcards import CardRead
from services.identity.adapters.registry import CheckUnavailable
from services.identity.context import Identity, now
from services.identity.counter import check_unavailable
from services.identity.domain.claims import access_claims
from services.identity.domain.idcards import card_date_refusal, today_in_china
from services.identity.domain.levels import Level
from services.identity.models import Kiosk, KioskNonce
from services.identity.schemas import KioskSessionRequest, TokenPair

log = get_logger("identity.kiosk_sessions")

MAX_BODY = 16 * 1024


def bad_signature(reason: str, detail: str) -> Problem:
    return Problem(401, "bad-signature", "Signature not accepted", detail, reason=reason,
                   headers={"WWW-Authenticate": "HMAC-SHA256"})  # fmt: skip


async def signed_kiosk(session: AsyncSession, identity: Identity, request: Request, body: bytes) -> Kiosk:
    """The active kiosk that signed this request, its nonce now spent (committed); 401 otherwise."""
    headers = request.headers
    device_id = headers.get("x-partner-id", "")
    found = await kiosks.active_secret(session, identity, device_id)
    settings = identity.settings
    try:
        _, nonce = verify_request(
            {device_id: [found[1]]} if found else {}, method=request.method,
            path=settings.signed_path_prefix + request.url.path, query=request.url.query, headers=headers,
            body=body, now=now().timestamp(), max_age=settings.signature_max_age_seconds,
        )  # fmt: skip
    except SignatureRejected as rejected:
        reason = "unknown-device" if rejected.reason == "unknown-partner" else rejected.reason
        log.warning("kiosk request refused", reason=reason, device=device_id[:64])
        raise bad_signature(reason, rejected.detail.replace("partner", "kiosk")) from rejected
    assert found is not None
    current = now()
    window = timedelta(seconds=2 * settings.signature_max_age_seconds)
    claimed = await session.execute(
        verification.insert_for(session)(KioskNonce)
        .values(key=f"{device_id}:{nonce}", expires_at=current + window)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    if claimed.rowcount != 1:
        await session.rollback()
        log.warning("kiosk request replayed", device=device_id)
        raise bad_signature("replay", "nonce already used")
    await session.execute(delete(KioskNonce).where(KioskNonce.expires_at < current))
    await session.commit()  # the nonce is spent whatever the card check says
    return found[0]


def card_of(raw: bytes, max_depth: int) -> CardRead:
    data = load_json_body(raw, max_depth=max_depth)
    try:
        body = KioskSessionRequest.model_validate(data)
    except ValidationError as exc:  # answered like any request body's (kit.errors): field and rule
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    return CardRead(body.id_number, body.name, body.valid_from, body.valid_until, body.card_serial)


async def kiosk_session(session: AsyncSession, identity: Identity, request: Request) -> TokenPair:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise Problem(413, "body-too-large", "Request body too large", f"at most {MAX_BODY} bytes")
    kiosk = await signed_kiosk(session, identity, request, raw)
    card = card_of(raw, identity.settings.json_max_depth)
    refusal = card_date_refusal(card.valid_from, card.valid_until, today_in_china(now()))
    if refusal is not None:
        field = "valid_from" if refusal[0] == "card_not_yet_valid" else "valid_until"
        raise field_problem(field, refusal[0], refusal[1])
    try:
        result = await identity.adapters.id_cards.check(card)
    except CheckUnavailable as exc:
        raise check_unavailable("the ID card check") from exc
    if not result.passed:
        raise Problem(422, "id-card-refused", "ID card not accepted", result.reason or result.rule,
                      rule=result.rule)  # fmt: skip
    person = await verification.confirmed_person(session, card.id_number, card.name, "kiosk")
    if person.level < Level.REGISTRY_VERIFIED:
        person = await verification.raise_level(session, person, "registry")
    s = identity.settings
    ttl = s.kiosk_token_ttl_seconds
    claims = access_claims(
        subject=person.id_number, kind="person", level=max(person.level, int(Level.REGISTRY_VERIFIED)),
        name=person.name, session_id=None, issuer=s.token_issuer, audience=s.token_audience, now=now(),
        ttl=timedelta(seconds=ttl), channel="kiosk", device=kiosk.device_id,
    )  # fmt: skip
    log.info("kiosk token made", person=mask_id_number(person.id_number), device=kiosk.device_id)
    return TokenPair(access_token=await identity.keyring.sign(claims), expires_in=ttl, subject=person.id_number,
                     kind="person", level=claims["lvl"], name=person.name)  # fmt: skip
