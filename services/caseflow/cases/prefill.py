"""零填报 (zero-fill): a matter's application form filled from what the government already knows
about the caller (docs/adr/0027-instant-approval-and-zero-fill.md).

``GET /matters/{code}/prefill`` answers ``{form, sources}`` for the fields the matter's form marks
``prefill``: values from the verified token (the subject's name, ID number or credit code, kind,
division) and from the caller's e-licences as the licence service reports them (number, end date,
data keys) — never from anything in the request. An agent acting for an enterprise gets the
enterprise's. The form still goes through the normal validation when submitted: prefill only
spares typing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import Problem
from services.caseflow.adapters.licences import LicenceUnavailable
from services.caseflow.cases.common import Context
from services.caseflow.cases.submission import verified_names
from services.caseflow.domain import access
from services.caseflow.domain.application import check_applicant
from services.caseflow.domain.instant import Holding, applicant_facts, prefill, prefill_licence_types
from services.caseflow.matters import get_matter


async def prefill_for(session: AsyncSession, ctx: Context, principal: Principal, code: str) -> dict[str, Any]:
    definition = await get_matter(session, code)
    if definition is None:
        raise Problem(404, "not-found", "Not found", "no published matter with this code")
    access.require(principal, "matter.prefill", matter_codes=[code])
    matter = definition.definition
    check_applicant(kind=principal.kind, level=principal.level, matter=matter)
    fields = [f for f in matter.get("form_fields", []) if isinstance(f, dict)]
    types = sorted(prefill_licence_types(fields))
    holdings: list[Holding] = []
    unavailable = False
    if types:
        await session.commit()  # no transaction held while the licence service answers
        try:
            holdings = await ctx.licences.holdings(principal.subject, types, purpose=f"prefill:{code}")
        except LicenceUnavailable:
            unavailable = True
    today = ctx.today()
    applicant = applicant_facts(subject=principal.subject, kind=principal.kind, level=principal.level,
                                name=verified_names(principal)[0], today=today)  # fmt: skip
    form, sources = prefill(fields, subject=principal.subject, applicant=applicant, holdings=holdings, today=today)
    return {"matter_code": definition.code, "matter_version": definition.version, "form": form, "sources": sources,
            "licences_unavailable": unavailable}  # fmt: skip
