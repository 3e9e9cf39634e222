"""E-licences and cases (docs/adr/0016-licence-reuse-in-caseflow.md).

- Reuse as a material (电子证照复用): each material given by ``licence_id`` is checked with the
  licence service (adapters/licences.py) for the case's applicant — the holder — and the type the
  matter asks for, all at once and outside any database transaction. A refusal is a 422 naming
  ``materials.<i>.licence_id`` and the rule; no answer is a 503 ``licence-unavailable``. The case
  keeps {name, licence_id, licence_version, number, licence_type, verified: true}.
- The licence issued for an approved case (``licence.licence.issued`` with its case_no) is recorded
  once (unique identifier; the consumer's inbox already drops redeliveries), noted on the timeline
  and told to the applicant.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.licence import LicenceExpiring, LicenceIssued
from kit.consumer import PoisonEvent
from kit.errors import Problem
from kit.events import CloudEvent
from services.caseflow import notifications, steps
from services.caseflow.adapters.licences import (
    CheckedLicence,
    LicenceCheck,
    LicenceRefused,
    LicenceService,
    LicenceUnavailable,
)
from services.caseflow.cases.common import Context, _insert, dumps, matter_of_case
from services.caseflow.models import Case, CaseLicence
from services.caseflow.schemas import MaterialIn

log = logging.getLogger("yiwang.caseflow.licences")

REFUSAL_TEXT = {
    "not_found": "no e-licence with this identifier",
    "holder": "this e-licence is not held by the applicant",
    "licence_type": "this e-licence is not of the type this material needs ({licence_type})",
    "status": "this e-licence is not valid now (suspended, revoked or expired)",
}


@dataclass(frozen=True)
class Wanted:
    """A material given by licence: its place in the request and the type the matter asks for."""

    index: int
    material: str
    identifier: str
    licence_type: str


def wanted(matter: dict[str, Any], materials: list[MaterialIn]) -> list[Wanted]:
    """The licence materials to check. A material the matter does not know, or that no licence
    satisfies, is not asked about: the material rules refuse it anyway."""
    types = {m["name"]: m.get("licence_type") for m in matter.get("materials", [])}
    return [
        Wanted(index, m.name, m.licence_id, types[m.name])
        for index, m in enumerate(materials)
        if m.licence_id is not None and types.get(m.name)
    ]


class LicencesRefused(Exception):
    """The checks' verdict when it is no: ``problem`` to answer, and whether the licence service may
    have logged a read (under the case number asked with) before the no."""

    def __init__(self, problem: Problem, *, read: bool) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.read = read


async def check_all(service: LicenceService, items: list[Wanted], *, holder: str,
                    case_no: str | None) -> dict[int, CheckedLicence]:  # fmt: skip
    """Ask about every licence material at once; the licences by material index, or
    ``LicencesRefused``: every refusal in one 422 (一次性告知), else 503 if any went unanswered."""
    if not items:
        return {}
    answers = await asyncio.gather(
        *(service.check(LicenceCheck(w.identifier, w.licence_type, holder, w.material, case_no)) for w in items),
        return_exceptions=True,
    )
    checked: dict[int, CheckedLicence] = {}
    errors: list[dict[str, str]] = []
    unavailable: list[LicenceUnavailable] = []
    for item, answer in zip(items, answers, strict=True):
        if isinstance(answer, CheckedLicence):
            checked[item.index] = answer
        elif isinstance(answer, LicenceRefused):
            message = REFUSAL_TEXT[answer.rule].format(licence_type=item.licence_type)
            errors.append({"field": f"materials.{item.index}.licence_id", "rule": answer.rule, "message": message})
        elif isinstance(answer, LicenceUnavailable):
            unavailable.append(answer)
        else:  # a bug in an adapter: no answer, and not swallowed
            raise answer
    read = bool(checked) or any(u.maybe_read for u in unavailable)
    if errors:
        problem = Problem(422, "validation", "Request is not valid", f"{errors[0]['field']}: {errors[0]['message']}",
                          errors=errors)  # fmt: skip
        raise LicencesRefused(problem, read=read)
    if unavailable:
        log.warning("licence service unavailable for %d of %d checks: %s", len(unavailable), len(items),
                    unavailable[0])  # fmt: skip
        problem = Problem(503, "licence-unavailable", "Licence service unavailable",
                          "the e-licences given as materials could not be checked now; nothing was submitted, "
                          "try again shortly", headers={"Retry-After": "5"})  # fmt: skip
        raise LicencesRefused(problem, read=read)
    return checked


def verified_material(item: dict[str, Any], licence: CheckedLicence) -> dict[str, Any]:
    """A licence material as the case keeps it: the reference the licence service confirmed."""
    return {**item, "licence_id": licence.identifier, "licence_version": licence.version, "number": licence.number,
            "licence_type": licence.licence_type, "verified": True}  # fmt: skip


# ---- the licence issued for a case ------------------------------------------------------------
def licence_out(row: CaseLicence | None) -> dict[str, Any] | None:
    """The issued licence as the case detail shows it."""
    if row is None:
        return None
    return {
        "identifier": row.identifier,
        "number": row.number,
        "licence_type": row.licence_type,
        "version": row.version,
        "issued_on": row.issued_on.isoformat(),
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
    }


def public_licence_out(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the public progress page shows (from a row read by column name): the identifier and
    type, not the number (number and identifier together let anyone verify the licence and see its
    disclosed claims)."""
    return None if row is None else {"identifier": row["identifier"], "licence_type": row["licence_type"]}


async def issued_licence(session: AsyncSession, case_id: int) -> CaseLicence | None:
    """The latest licence issued for the case, if any."""
    query = select(CaseLicence).where(CaseLicence.case_id == case_id).order_by(CaseLicence.id.desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def on_licence_issued(
    session: AsyncSession, ctx: Context, event: CloudEvent
) -> tuple[Case, LicenceIssued] | None:
    """``licence.licence.issued``: record a case's licence once, note it, tell the applicant; the case
    and the licence when it was recorded now (None: no case of ours, or recorded before)."""
    try:
        data = LicenceIssued.model_validate(event.data)
    except ValidationError as exc:
        raise PoisonEvent(f"not a LicenceIssued: {exc.error_count()} errors") from exc
    if not data.case_no:
        return None  # issued by an officer or imported: no case of ours
    case = (await session.execute(select(Case).where(Case.case_no == data.case_no))).scalar_one_or_none()
    if case is None:
        log.warning("licence issued for an unknown case %s", data.case_no)
        return None
    now = ctx.current_time()
    recorded = await session.execute(
        _insert(session)(CaseLicence)
        .values(case_id=case.id, identifier=data.identifier, number=data.number, licence_type=data.licence_type,
                version=data.version, issued_on=data.issued_on, valid_until=data.valid_until, recorded_at=now)
        .on_conflict_do_nothing()
    )  # fmt: skip
    if not recorded.rowcount:
        return None  # the same licence announced again (another event id): recorded already
    note = {"identifier": data.identifier, "licence_type": data.licence_type}
    step = steps.Step(
        steps.line(case, now, "licence_issued", "system", case.state, case.state, dumps(note)),
        message=notifications.message(
            case, "licence_issued", {"licence": await _result_name(session, case, data)}, now
        ),
    )
    await steps.write(session, case, step)
    return case, data


async def _result_name(session: AsyncSession, case: Case, data: LicenceIssued | LicenceExpiring) -> str:
    """The licence's name for the applicant's SMS: the matter's result (营业执照) when it is this
    type, else the type code."""
    result = (await matter_of_case(session, case)).get("result") or {}
    return (
        result.get("name")
        if result.get("licence_type") == data.licence_type and result.get("name")
        else data.licence_type
    )


async def on_licence_expiring(session: AsyncSession, ctx: Context, event: CloudEvent) -> None:
    """``licence.licence.expiring``: remind the applicant of the case that obtained the licence (the
    case's contact phone; a licence from no case of ours has no one here to tell). Once per event:
    the inbox drops a redelivery, and licence announces each reminder window once."""
    try:
        data = LicenceExpiring.model_validate(event.data)
    except ValidationError as exc:
        raise PoisonEvent(f"not a LicenceExpiring: {exc.error_count()} errors") from exc
    row = (
        await session.execute(select(CaseLicence).where(CaseLicence.identifier == data.identifier))
    ).scalar_one_or_none()
    if row is None:
        return
    case = (await session.execute(select(Case).where(Case.id == row.case_id))).scalar_one()
    now = ctx.current_time()
    note = {"identifier": data.identifier, "valid_until": data.valid_until.isoformat(), "days_left": data.days_left}
    result = {"licence": await _result_name(session, case, data), "valid_until": data.valid_until.isoformat()}
    step = steps.Step(
        steps.line(case, now, "licence_expiring", "system", case.state, case.state, dumps(note)),
        message=notifications.message(case, "licence_expiring", result, now),
    )
    await steps.write(session, case, step)
