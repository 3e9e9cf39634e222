"""Issuing licences: from an approved case (``caseflow.case.approved``) or by an issuing officer
(and the insert that a department's pushed certificate shares, licence.department_certificates).

Exactly once per case: the consumer's inbox drops a redelivered event, and ``UNIQUE (case_no,
type_code)`` drops the same approval arriving under another event id or in two replicas at once
(the second insert fails inside a savepoint and the licence already issued stands). Numbers and
identifier serials come from ``licence_serials`` (a row per issuer and year, bumped with
``UPDATE … RETURNING``: concurrent issuers of one department queue on that row for the length
of a transaction, and a rolled-back issue gives its serial back).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import licence as contract
from contracts.events.caseflow import CaseApproved
from kit.auth import Principal
from kit.errors import Problem, field_problem
from kit.events import envelope
from services.licence import catalogue
from services.licence.catalogue import TypeInfo
from services.licence.context import Context
from services.licence.domain import access, rules
from services.licence.domain.holders import CODE_TYPES, code_type_for, holder_kind_of
from services.licence.domain.identifier import build_identifier
from services.licence.models import Issuer, Licence, LicenceSerial, outbox

log = logging.getLogger("yiwang.licence.issuance")


def insert_for(session: AsyncSession):
    """The dialect's INSERT (for ON CONFLICT DO NOTHING)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def reserve_serials(session: AsyncSession, *, issuer: str, year: int, count: int = 1) -> int:
    """Reserve ``count`` consecutive serials of ``issuer`` in ``year``; returns the first. One
    statement (an upsert bumping the row), so the row is locked for the shortest time."""
    statement = insert_for(session)(LicenceSerial).values(issuer=issuer, year=year, last=count)
    statement = statement.on_conflict_do_update(
        index_elements=[LicenceSerial.issuer, LicenceSerial.year],
        set_={"last": LicenceSerial.last + count},
    ).returning(LicenceSerial.last)
    last = (await session.execute(statement)).scalar_one()
    return last - count + 1


def identifier_serial(year: int, serial: int) -> str:
    """The identifier's 顺序号: year and the 7-digit serial (2026 0000001)."""
    return f"{year:04d}{serial:0{rules.SERIAL_DIGITS}d}"


@dataclass(frozen=True)
class Draft:
    """Everything a new licence needs beyond its serial."""

    info: TypeInfo
    issuer: Issuer
    holder: str
    holder_code_type: str
    holder_name: str
    data: dict[str, Any]
    issued_on: date
    valid_from: date
    valid_until: date | None
    source: str
    case_no: str | None
    issued_by: str


def licence_row(draft: Draft, *, serial: int, identifier: str | None = None, number: str | None = None,
                now=None) -> dict[str, Any]:  # fmt: skip
    """The ``licences`` row of a draft with its serial (identifier and number built unless given)."""
    year = draft.issued_on.year
    holder_kind = CODE_TYPES[draft.holder_code_type]
    if identifier is None:
        identifier = str(
            build_identifier(
                type_code=draft.info.national_type_code,
                issuer_code=draft.issuer.issuer_code,
                serial=identifier_serial(year, serial),
            )
        )
    if number is None:
        number = rules.licence_number(
            rule=draft.info.number_rule, holder=draft.holder, holder_kind=holder_kind,
            division_code=draft.issuer.division_code, year=year, serial=serial,
        )  # fmt: skip
    return {
        "identifier": identifier,
        "name": draft.info.name,
        "type_code": draft.info.code,
        "number": number,
        "issuer": draft.issuer.department,
        "issuer_code": draft.issuer.issuer_code,
        "issuer_name": draft.issuer.name,
        "issued_on": draft.issued_on,
        "valid_from": draft.valid_from,
        "valid_until": draft.valid_until,
        "holder": draft.holder,
        "holder_name": draft.holder_name,
        "holder_code_type": draft.holder_code_type,
        "jurisdiction": draft.issuer.division_code,
        "data": json.dumps(draft.data, ensure_ascii=False, sort_keys=True),
        "status": "valid",
        "version": 1,
        "source": draft.source,
        "case_no": draft.case_no,
        "issued_by": draft.issued_by,
        "created_at": now,
        "updated_at": now,
    }


def event_fields(row: Licence | dict[str, Any], at) -> dict[str, Any]:
    """The fields every licence event carries, from a licence (row object or dict)."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    return {
        "identifier": get("identifier"),
        "licence_type": get("type_code"),
        "number": get("number"),
        "holder": get("holder"),
        "holder_kind": CODE_TYPES[get("holder_code_type")],
        "issuer": get("issuer"),
        "version": get("version"),
        "at": at,
    }


def issued_event(row: Licence | dict[str, Any], at):
    """The ``licence.licence.issued`` envelope of a new licence."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    data = contract.LicenceIssued(
        **event_fields(row, at), issued_on=get("issued_on"), valid_until=get("valid_until"),
        case_no=get("case_no"), source=get("source"),
    )  # fmt: skip
    return envelope(data, subject=get("identifier"))


def check_data(info: TypeInfo, data: Any) -> None:
    """422 naming the first field of ``data`` that breaks the type's schema."""
    errors = rules.data_errors(info.data_schema_json, data)
    if errors:
        raise Problem(
            422, "validation", "Request is not valid", f"{errors[0][0]}: {errors[0][2]}",
            errors=[{"field": f, "rule": r, "message": m} for f, r, m in errors],
        )  # fmt: skip


async def insert_licence(session: AsyncSession, ctx: Context, draft: Draft, *, number: str | None = None
                         ) -> Licence | None:  # fmt: skip
    """Insert the licence and its ``issued`` event; None when this case already has its licence of
    the type. ``number``: the number printed by a department's own system (else the type's rule).

    A generated identifier that collides with an imported one (imports bring their own serials)
    draws the next serial."""
    for _attempt in range(5):
        try:
            async with session.begin_nested():
                serial = await reserve_serials(session, issuer=draft.issuer.department, year=draft.issued_on.year)
                licence = Licence(**licence_row(draft, serial=serial, number=number, now=ctx.current_time()))
                session.add(licence)
                await session.flush()
        except IntegrityError:
            if draft.case_no is not None and await _issued_for_case(session, draft.case_no, draft.info.code):
                return None
            continue
        await outbox.add(session, issued_event(licence, ctx.current_time()))
        return licence
    raise Problem(409, "conflict", "Could not allocate a licence number", "try again")


async def _issued_for_case(session: AsyncSession, case_no: str, type_code: str) -> Licence | None:
    return (
        await session.execute(select(Licence).where(Licence.case_no == case_no, Licence.type_code == type_code))
    ).scalar_one_or_none()


# ---- from an approved case -------------------------------------------------------------------
async def issue_for_case(session: AsyncSession, ctx: Context, approved: CaseApproved) -> Licence | None:
    """Issue the case's result licence once; None when there is nothing (more) to issue."""
    type_code = approved.result_licence_type
    if not type_code:
        return None
    info = await catalogue.type_info(session, type_code)
    if info is None:
        log.warning("case %s: result licence type %s is not in the catalogue; nothing issued", approved.case_no,
                    type_code)  # fmt: skip
        return None
    department = approved.department if approved.department in info.issuers else info.default_issuer
    issuer = await session.get(Issuer, department) if department else None
    if issuer is None:
        log.warning("case %s: department %s does not issue %s and the type has no default issuer",
                    approved.case_no, approved.department, type_code)  # fmt: skip
        return None
    # (Issued already — the same approval under another event id — is found by the insert's
    # UNIQUE (case_no, type_code), not by a query of its own on every approval.)
    kind = approved.applicant_kind or holder_kind_of(approved.applicant)
    if kind not in info.holder_kinds:
        log.error("case %s: %s is not issued to a %s; nothing issued", approved.case_no, type_code, kind)
        return None
    if not approved.applicant_name:
        # The name printed on the licence comes from identity's verified name through caseflow; no
        # name, no licence (retried, then dead-lettered for an operator to look at).
        raise ValueError(f"case {approved.case_no}: approval without the holder's verified name")
    data = rules.pick_data(info.data_schema, approved.form)
    errors = rules.data_errors(info.data_schema_json, data)
    if errors:
        # The case was decided: the licence is issued; a form value the licence cannot print is left off.
        bad = {field.split(".")[1] for field, _, _ in errors if field.count(".") >= 1}
        data = {name: value for name, value in data.items() if name not in bad}
        if rules.data_errors(info.data_schema_json, data):
            raise ValueError(f"case {approved.case_no}: the form lacks data the {type_code} needs")
    today = ctx.today()
    draft = Draft(
        info=info, issuer=issuer, holder=approved.applicant, holder_code_type=code_type_for(kind),
        holder_name=approved.applicant_name, data=data, issued_on=today, valid_from=today,
        valid_until=rules.valid_until(today, info.validity_years), source="case", case_no=approved.case_no,
        issued_by="caseflow",
    )  # fmt: skip
    return await insert_licence(session, ctx, draft)


# ---- by an officer ---------------------------------------------------------------------------
async def issue_by_officer(
    session: AsyncSession,
    ctx: Context,
    principal: Principal,
    *,
    licence_type: str,
    holder: str,
    holder_code_type: str,
    holder_name: str,
    data: dict[str, Any],
    valid_from: date | None,
    case_no: str | None,
) -> Licence:
    """POST /licences: an officer of a department that issues the type issues one directly."""
    info = await catalogue.type_info(session, licence_type)
    if info is None:
        raise field_problem("licence_type", "unknown", "no such licence type")
    access.check("licence.issue", access.issuing_relation(principal, issuers=info.issuers), principal.roles)
    issuer = await session.get(Issuer, principal.department)
    assert issuer is not None  # issuing_relation found the department among the type's issuers
    kind = CODE_TYPES[holder_code_type]
    if kind not in info.holder_kinds:
        raise field_problem("holder_code_type", "holder_kind", f"{info.name} is not issued to a {kind}")
    check_data(info, data)
    today = ctx.today()
    start = valid_from or today
    draft = Draft(
        info=info, issuer=issuer, holder=holder, holder_code_type=holder_code_type, holder_name=holder_name,
        data=data, issued_on=today, valid_from=start, valid_until=rules.valid_until(start, info.validity_years),
        source="officer", case_no=case_no, issued_by=principal.subject,
    )  # fmt: skip
    licence = await insert_licence(session, ctx, draft)
    if licence is None:
        raise field_problem("case_no", "duplicate", f"case {case_no} already has its {info.name}", status=409)
    return licence
