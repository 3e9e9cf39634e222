"""Raising a person's real-name level: registry (L2), face (L3), counter (L4); and making a walk-in
known (ADR 0025): a person seen at the counter or whose card a kiosk read, who never registered,
gets a record with the name the population registry confirmed and no mobile and no password — no
login opens it; the counter and kiosk tokens are the only ones made for it until it is claimed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import PersonRegistered, PersonVerified
from kit.auth import Principal
from kit.errors import Problem, field_problem
from services.identity.adapters.registry import CheckUnavailable
from services.identity.context import Identity, now, publish
from services.identity.domain import rights
from services.identity.domain.levels import Level, level_after
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


async def raise_level(session: AsyncSession, person: Person, method: str) -> Person:
    """Raise a person's level by a check made elsewhere in identity (a kiosk's card check: registry)."""
    return await _raise_level(session, person, method)


def insert_for(session: AsyncSession):
    """The dialect's INSERT (for ON CONFLICT DO NOTHING: no savepoint, which SQLite's driver would
    commit on release)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def confirmed_person(session: AsyncSession, id_number: str, confirmed_name: str, source: str) -> Person:
    """The person with this number, after the population registry confirmed ``confirmed_name`` for
    it: made known (L1, ``level_source`` ``source``, PersonRegistered published) when new; the
    recorded name becomes the confirmed one otherwise (a declared L1 name may have differed).

    Two first visits at once make one record: the second INSERT waits for the first's
    transaction and then does nothing; the record is read after it."""
    current = now()
    created = await session.execute(
        insert_for(session)(Person)
        .values(id_number=id_number, name=confirmed_name, mobile=None, password_hash=None,
                level=int(Level.REGISTERED), level_source=source, created_at=current)
        .on_conflict_do_nothing(index_elements=["id_number"])
    )  # fmt: skip
    person = (
        await session.execute(
            select(Person).where(Person.id_number == id_number).execution_options(populate_existing=True)
        )
    ).scalar_one()
    if created.rowcount == 1:
        await publish(
            session,
            PersonRegistered(id_number=id_number, level=person.level, name=confirmed_name, registered_at=current),
            subject=id_number,
        )
    else:
        person.name = confirmed_name
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
