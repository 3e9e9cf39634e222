"""Registering persons and enterprises (一号): one subject id, once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import EnterpriseRegistered, PersonRegistered
from kit.auth import Principal
from kit.errors import Problem, field_problem
from services.identity import sms_codes
from services.identity.adapters.enterprises import RegistryUnavailable
from services.identity.context import Identity, now, publish
from services.identity.domain.enterprises import check_binding
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
    """Register a person at L1. The SMS code is checked before anything about the mobile or the ID
    number is revealed: a wrong code answers the same whether or not either is registered."""
    await sms_codes.consume_code(
        session, identity, mobile=body.mobile, purpose="register", code=body.sms_code, field="sms_code"
    )
    taken = None
    if await session.get(Person, body.id_number) is not None:
        taken = duplicate("id_number", "this ID number")
    elif (await session.execute(select(Person.id_number).where(Person.mobile == body.mobile))).first():
        taken = duplicate("mobile", "this mobile number")
    if taken is not None:
        # The code is spent even so: each probe of an ID number costs a fresh code to a phone one holds.
        await session.commit()
        raise taken
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
        PersonRegistered(id_number=person.id_number, level=person.level, name=person.name, registered_at=current),
        subject=person.id_number,
    )
    return person


async def register_enterprise(
    session: AsyncSession, identity: Identity, caller: Principal, body: RegisterEnterprise
) -> Enterprise:
    """Bind an enterprise to the caller, who must be its legal representative as the enterprise
    registry records it (and at real-name L2). The registered name is kept, never the body's."""
    if caller.kind != "person":
        raise Problem(403, "forbidden", "Only a person can register an enterprise")
    person = await session.get(Person, caller.subject)
    if person is None or person.level < Level.REGISTRY_VERIFIED:
        raise Problem(
            403, "level-required", "Real-name level too low", "a legal representative needs level L2 or above"
        )
    try:
        record = await identity.adapters.enterprises.lookup(body.uscc)
    except RegistryUnavailable as exc:
        raise Problem(
            503,
            "registry-unavailable",
            "Enterprise registry did not answer",
            "try again shortly",
            headers={"Retry-After": "5"},
        ) from exc
    if record is None:
        raise field_problem("uscc", "registered", "the enterprise register has no enterprise with this code")
    check_binding(
        caller=caller.subject,
        legal_representative=record.legal_representative,
        status=record.status,
        registered_name=record.name,
        stated_name=body.name,
    )
    if await session.get(Enterprise, body.uscc) is not None:
        raise duplicate("uscc", "this credit code")
    current = now()
    enterprise = Enterprise(
        uscc=body.uscc,
        name=record.name,
        registry_status=record.status,
        legal_representative=caller.subject,
        created_at=current,
    )
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
