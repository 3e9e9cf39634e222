"""A plain submission on the driver (kit.driver, issue 15).

The session-per-request unit of work (BEGIN and COMMIT through SQLAlchemy, the ORM's flush and
identity map) cost more CPU than every rule of a submission together. A submission of a matter
(not a bundle) without instant rules — the common one — is checked by ``submission``'s own
rules (its e-licences with the licence service, with no transaction open) and written, on
PostgreSQL, as one statement in autocommit (``steps.writing``: the case, its line, its message,
its events and its fees row when it owes fees; no BEGIN or COMMIT round trip), then answered from
what it wrote. Without e-licences that statement is the submission's only round trip: it inserts
the case only if every upload it references is the applicant's own (checked beforehand as if they
were). Everything else takes ``submission.submit`` on the session: a bundle, 秒批, a refusal
(which may be a retry of a submission accepted before; an upload not the applicant's own) and a
taken Idempotency-Key (a retry, or a concurrent duplicate that committed first) — that path gives
the same refusal, or the case the key made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, select

from kit.auth import Principal
from kit.driver import Driver, Query
from kit.errors import Problem
from services.caseflow import calendars, steps
from services.caseflow.adapters.licences import CheckedLicence
from services.caseflow.cases import case_rows, fees, instant, licences, reading
from services.caseflow.cases.common import Context, set_clocks
from services.caseflow.cases.submission import (
    BLOB_OWNERS,
    BLOB_OWNERS_PG,
    Valid,
    first_step,
    new_case,
    release,
    request_hash,
    valid_submission,
)
from services.caseflow.domain import access
from services.caseflow.domain.case_number import make_case_number
from services.caseflow.matters import get_matter_on
from services.caseflow.models import Case
from services.caseflow.schemas import MaterialIn, SubmitRequest

_KEY_TAKEN = Query(
    select(Case.id).where(Case.applicant == bindparam("subject"), Case.idempotency_key == bindparam("key"))
)
_BLOB_OWNERS = {"postgresql": Query(BLOB_OWNERS_PG), "sqlite": Query(BLOB_OWNERS)}


@dataclass
class Created:
    """The new case's answer (schemas.CaseDetail) and its version (the ETag)."""

    answer: dict[str, Any]
    version: int


class _OnSession(Exception):
    """Raised where this submission turns out to be the session path's: nothing is written."""


@dataclass
class _Number:
    """The case number drawn for the submission, given back if it is not used."""

    division: str
    day: date
    sequence: int

    @property
    def case_no(self) -> str:
        return make_case_number(self.division, self.day, self.sequence)


async def own_blobs_on(db: Driver, principal: Principal, materials: list[MaterialIn]) -> set[str]:
    """``submission.own_blobs`` on the driver (a read outside any transaction)."""
    ids = _blob_ids(materials)
    if not ids:
        return set()
    rows = await db.fetch(_BLOB_OWNERS[db.dialect.name], {"ids": ids})
    return {row["id"] for row in rows if row["owner"] == principal.subject}


def _blob_ids(materials: list[MaterialIn]) -> list[str]:
    return [m.blob_id for m in materials if m.blob_id is not None]


async def submit_on(
    db: Driver, ctx: Context, principal: Principal, body: SubmitRequest, idempotency_key: str
) -> Created | None:
    """The new case, or None when this submission takes the session path (see the module)."""
    if body.matter_code is None:
        return None  # a bundle
    definition = await get_matter_on(db, body.matter_code, body.matter_version)
    if definition is None:
        return None  # refused there (422), unless it is the retry of an earlier submission
    matter = definition.definition
    if instant.rules_of(matter):
        return None
    wanted = licences.wanted(matter, body.materials)
    try:
        if not wanted:
            # Checked as if every upload it references were the applicant's own; the insert makes
            # sure they are (it writes nothing otherwise, and the session path gives the refusal).
            ids = _blob_ids(body.materials)
            valid = _valid(principal, body, definition, set(ids))
            owned = (principal.subject, ids) if ids else None
            return await _insert(
                db, ctx, principal, body, idempotency_key, valid, await _draw(ctx, matter), owned=owned
            )
        valid = _valid(principal, body, definition, await own_blobs_on(db, principal, body.materials))
        if await db.fetchrow(_KEY_TAKEN, {"subject": principal.subject, "key": idempotency_key}):
            return None  # a retry: its case is answered there without asking licence again
        number = await _draw(ctx, matter)
        try:  # asked with no transaction open (nothing is written yet)
            checked = await licences.check_all(ctx.licences, wanted, holder=principal.subject,
                                               case_no=number.case_no)  # fmt: skip
        except licences.LicencesRefused as refused:
            release(ctx, number.division, number.day, number.sequence, read=refused.read)
            raise refused.problem from None
        return await _insert(db, ctx, principal, body, idempotency_key, valid, number, checked)
    except _OnSession:
        return None


def _valid(principal: Principal, body: SubmitRequest, definition: Any, own: set[str]) -> Valid:
    try:
        matter = definition.definition
        return valid_submission(principal, body, definition, matter, [matter["code"]], own=own)
    except Problem:
        raise _OnSession from None  # refused there, unless it is the retry of an earlier submission


async def _draw(ctx: Context, matter: dict[str, Any]) -> _Number:
    today = ctx.today()
    division = matter.get("division_code") or ctx.settings.default_division
    return _Number(division, today, await ctx.numbers.next(division, today))


async def _insert(db: Driver, ctx: Context, principal: Principal, body: SubmitRequest, idempotency_key: str,
                  valid: Valid, number: _Number, checked: dict[int, CheckedLicence] | None = None, *,
                  owned: tuple[str, list[str]] | None = None) -> Created:  # fmt: skip
    """Write the case — on PostgreSQL one statement in autocommit, with its fees row when it owes
    fees — and answer it. A taken Idempotency-Key (a retry, or a concurrent duplicate that
    committed first), or an upload in ``owned`` that is not the applicant's, writes nothing: the
    number goes back, unless licence may have logged a read under it."""
    matter, now = valid.matter, ctx.current_time()
    case = new_case(principal, body, valid, case_no=number.case_no, today=number.day, now=now,
                    idempotency_key=idempotency_key, digest=request_hash(body), checked=checked or {},
                    make=case_rows.plain_case)  # fmt: skip
    set_clocks(await calendars.load_on(db), case, matter, [])
    owed = fees.new_row(case, matter, valid.fees_due, now) if valid.fees_due else None
    step = first_step(case, principal, body, valid, owed, now)
    async with steps.writing(db) as tx:
        case_id = await steps.insert_case_on(db, tx, case, step, fees=owed, owned=owned)
    if case_id is None:
        release(ctx, number.division, number.day, number.sequence, read=bool(checked))
        raise _OnSession
    relation = access.case_relation(principal, applicant=case.applicant, department=case.department,
                                    branch_departments=[], matter_code=case.matter_code,
                                    helped_by=case.helped_by)  # fmt: skip
    # The matter it runs under is the version just applied for (matter_of_case's, for a case of no bundle).
    answer = reading.detail_of(case, matter=matter, relation=relation,
                               roles=principal.roles, pauses=[], timeline=[step.line], branches=[], evaluation=None,
                               with_query_code=True, fees_row=owed)  # fmt: skip
    return Created(answer, case.version)
