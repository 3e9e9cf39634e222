"""Registering persons and enterprises (一号): one subject id, once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import EnterpriseRegistered, PersonRegistered
from kit.auth import Principal
from kit.errors import Problem
from services.identity import sms_codes
from services.identity.context import Identity, now, publish
from services.identity.domain.levels import Level
from services.identity.models import Enterprise, Person
from services.identity.schemas import RegisterEnterprise, RegisterPerson


def duplicate(field: str, what: str) -> Problem:
    return Problem(
        409,
        "duplicate",
        "Already registered",
        f"{field}: {what} is already registered",
        errors=[{"field": field, "rule": "unique", "message": f"{what} is already registered"}],
    )


async def register_person(session: AsyncSession, identity: Identity, body: RegisterPerson) -> Person:
    if await session.get(Person, body.id_number) is not None:
        raise duplicate("id_number", "this ID number")
    if (await session.execute(select(Person.id_number).where(Person.mobile == body.mobile))).first():
        raise duplicate("mobile", "this mobile number")
    await sms_codes.consume_code(
        session, identity, mobile=body.mobile, purpose="register", code=body.sms_code, field="sms_code"
    )
    current = now()
    person = Person(
        id_number=body.id_number,
        name=body.name,
        mobile=body.mobile,
        password_hash=await identity.passwords.hash(body.password),
        level=int(Level.REGISTERED),
        level_source="registration",
        created_at=current,
    )
    session.add(person)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise duplicate("id_number", "this ID number or mobile") from exc
    await publish(
        session,
        PersonRegistered(id_number=person.id_number, level=person.level, registered_at=current),
        subject=person.id_number,
    )
    return person


async def register_enterprise(session: AsyncSession, caller: Principal, body: RegisterEnterprise) -> Enterprise:
    """The caller registers the enterprise as its legal representative; that needs real-name L2."""
    if caller.kind != "person":
        raise Problem(403, "forbidden", "Only a person can register an enterprise")
    if caller.level < Level.REGISTRY_VERIFIED:
        raise Problem(
            403, "level-required", "Real-name level too low", "a legal representative needs level L2 or above"
        )
    if await session.get(Enterprise, body.uscc) is not None:
        raise duplicate("uscc", "this credit code")
    current = now()
    enterprise = Enterprise(uscc=body.uscc, name=body.name, legal_representative=caller.subject, created_at=current)
    session.add(enterprise)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise duplicate("uscc", "this credit code") from exc
    await publish(
        session,
        EnterpriseRegistered(
            uscc=enterprise.uscc, name=enterprise.name, legal_representative=caller.subject, registered_at=current
        ),
        subject=enterprise.uscc,
    )
    return enterprise
