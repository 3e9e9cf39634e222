"""Counter tokens (一窗受理, ADR 0025): an officer with the role ``counter`` verifies a person in
person and gets a short-lived token FOR that person, to apply on their behalf.

The population registry confirms the number and the name on the card the officer saw; the person
is raised to L4 exactly as ``POST /persons/{id}/counter-verification`` does (the same function),
and is made known first if they never registered (verification.confirmed_person). The token is
the person's (``sub``, ``name``, ``lvl`` 4) with ``chn: counter`` and the officer in ``hlp``
(``sub``, ``name``, ``dept`` and the officer's login session ``sid``): it lives 30 minutes, nothing
refreshes it, and the officer's logout, change or disabling revokes it (kit.revocation matches
``hlp``). The registry being away answers 503 and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import Problem
from kit.logs import get_logger
from kit.masking import mask_id_number
from services.identity import verification
from services.identity.adapters.registry import CheckUnavailable
from services.identity.context import Identity, now
from services.identity.domain import rights
from services.identity.domain.claims import access_claims
from services.identity.models import Officer
from services.identity.schemas import CounterSessionRequest, TokenPair

log = get_logger("identity.counter")


def check_unavailable(what: str) -> Problem:
    return Problem(503, "check-unavailable", "Verification service did not answer",
                   f"{what} did not answer; nothing was changed; try again shortly",
                   headers={"Retry-After": "5"})  # fmt: skip


async def counter_session(
    session: AsyncSession, identity: Identity, officer: Principal, body: CounterSessionRequest
) -> TokenPair:
    roles = rights.actor_roles(officer.kind, officer.roles, officer.department)
    if not rights.may("counter_session", roles, rights.PERSON):
        raise Problem(403, "forbidden", "Not allowed", "a counter token needs the counter role")
    record = await session.get(Officer, officer.subject.removeprefix("officer:"))
    if record is None or record.disabled_at is not None:
        raise Problem(403, "forbidden", "Not allowed", "officer disabled")
    try:
        result = await identity.adapters.registry.verify(body.id_number, body.name)
    except CheckUnavailable as exc:
        raise check_unavailable("the population registry") from exc
    if not result.passed:
        raise Problem(422, "verification-failed", "Verification failed",
                      f"the population registry refused the card's number and name: {result.reason}",
                      rule="registry_check")  # fmt: skip
    person = await verification.confirmed_person(session, body.id_number, body.name, "counter")
    person = await verification.verify_at_counter(session, officer, person.id_number)
    s = identity.settings
    ttl = s.counter_token_ttl_seconds
    helper = {"sub": officer.subject, "name": record.name, "dept": record.department}
    if officer.session_id:
        helper["sid"] = officer.session_id
    claims = access_claims(
        subject=person.id_number, kind="person", level=person.level, name=person.name, session_id=None,
        issuer=s.token_issuer, audience=s.token_audience, now=now(), ttl=timedelta(seconds=ttl),
        channel="counter", helper=helper,
    )  # fmt: skip
    log.info("counter token made", person=mask_id_number(person.id_number), officer=officer.subject)
    return TokenPair(access_token=await identity.keyring.sign(claims), expires_in=ttl, subject=person.id_number,
                     kind="person", level=person.level, name=person.name)  # fmt: skip
