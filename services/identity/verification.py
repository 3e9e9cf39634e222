"""Raising a person's real-name level: registry (L2), face (L3), counter (L4)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import PersonVerified
from kit.auth import Principal
from kit.errors import Problem, field_problem
from services.identity.adapters.registry import CheckUnavailable
from services.identity.context import Identity, now, publish
from services.identity.domain import rights
from services.identity.domain.levels import level_after
from services.identity.models import Person
from services.identity.schemas import VerificationRequest


async def _raise_level(session: AsyncSession, person: Person, method: str, officer: str | None = None) -> Person:
    new_level = level_after(person.level, method)
    if new_level == person.level:
        return person
    person.level = new_level
    person.level_source = method
    person.verified_at = now()
    await publish(
        session,
        PersonVerified(
            id_number=person.id_number,
            level=new_level,
            method=method,
            verified_by=officer,
            name=person.name,
            verified_at=person.verified_at,
        ),
        subject=person.id_number,
    )
    return person


async def verify_self(
    session: AsyncSession, identity: Identity, caller: Principal, body: VerificationRequest
) -> Person:
    if caller.kind != "person":
        raise Problem(403, "forbidden", "Only a person verifies their real name")
    person = await session.get(Person, caller.subject)
    level_after(person.level, body.method)  # refuse out-of-order checks before calling anyone
    try:
        if body.method == "registry":
            result = await identity.adapters.registry.verify(person.id_number, person.name)
        else:
            if not body.liveness_token:
                raise field_problem("liveness_token", "required", "the face check needs a liveness token")
            result = await identity.adapters.face.verify(person.id_number, body.liveness_token)
    except CheckUnavailable as exc:
        raise Problem(503, "check-unavailable", "Verification service did not answer", "try again shortly") from exc
    if not result.passed:
        raise Problem(422, "verification-failed", "Verification failed", result.reason)
    return await _raise_level(session, person, body.method)


async def verify_at_counter(session: AsyncSession, officer: Principal, id_number: str) -> Person:
    """A counter officer (一窗受理, role ``counter``) saw the person and their ID card: L4."""
    roles = rights.actor_roles(officer.kind, officer.roles, officer.department)
    if not rights.may("counter_verification", roles, rights.PERSON):
        raise Problem(403, "forbidden", "Not allowed", "counter verification needs the counter role")
    person = await session.get(Person, id_number)
    if person is None:
        raise Problem(404, "not-found", "No such person")
    return await _raise_level(session, person, "counter", officer.subject.removeprefix("officer:"))
