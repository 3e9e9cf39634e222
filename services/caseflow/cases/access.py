"""Who may act on a case, enforced in one place: ``authorize`` loads the case, works out the
caller's relation to it and asks domain/access.py's table. Every route and use case that touches
a case goes through here (or, without a case, through ``domain.access.require``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from kit.auth import Principal
from services.caseflow.cases.common import matter_of_case, not_found
from services.caseflow.domain import access
from services.caseflow.domain.case_number import valid_case_number
from services.caseflow.models import Case


@dataclass(frozen=True)
class Authorized:
    """A case the caller may act on, and from where (the relation the table allowed)."""

    case: Case
    relation: str


# Built once (every step and read loads its case): building it per call, with its cache key, was
# 5% of an officer step's CPU.
LOAD_CASE = (
    select(Case).options(joinedload(Case.pauses), joinedload(Case.timeline)).where(Case.case_no == bindparam("case_no"))
)


async def load_case(session: AsyncSession, case_no: str) -> Case | None:
    """The case with its pauses and timeline (one joined query), or None."""
    if not valid_case_number(case_no):
        return None
    return (await session.execute(LOAD_CASE, {"case_no": case_no})).unique().scalar_one_or_none()


def mandate_codes(case: Case) -> list[str]:
    """The matter codes an agent's mandate may name for this case (its matter, its bundle)."""
    codes = [case.matter_code]
    if case.bundle:
        codes.append(json.loads(case.bundle)["code"])
    return codes


async def relation_to(session: AsyncSession, principal: Principal, case: Case) -> str:
    """The caller's relation to the case (domain/access.py names them)."""
    matter = None
    if principal.kind == "officer" and principal.department != case.department:
        matter = await matter_of_case(session, case)
    return relation_under(principal, case, matter)


def relation_under(principal: Principal, case: Case, matter: dict | None) -> str:
    """``relation_to`` given the matter the case runs under (``matter_of_case``), which only
    an officer of another department needs (None for anyone else)."""
    branches: list[str] = []
    if principal.kind == "officer" and principal.department != case.department:
        # Parallel departments are the pinned matter's (a bundle's: its members'), known from submission.
        assert matter is not None
        branches = list(matter.get("parallel_departments", []))
    relation = access.case_relation(principal, applicant=case.applicant, department=case.department,
                                    branch_departments=branches, matter_code=case.matter_code,
                                    helped_by=case.helped_by)  # fmt: skip
    if relation == access.AGENT_OUTSIDE_MANDATE and access.mandate_covers(principal, mandate_codes(case)):
        relation = access.AGENT
    return relation


async def authorize(session: AsyncSession, principal: Principal, action: str, case_no: str) -> Authorized:
    """The case if the table lets the caller take ``action`` on it; otherwise the table's refusal
    (404 for a caller who may not even read it: an outsider learns nothing, not even existence)."""
    case = await load_case(session, case_no)
    if case is None:
        raise not_found()
    relation = await relation_to(session, principal, case)
    access.check(action, relation, principal.roles)
    return Authorized(case, relation)


async def visible_case(session: AsyncSession, principal: Principal, case_no: str) -> Case:
    """The case if the caller may read it (``case.read``); 404 otherwise."""
    return (await authorize(session, principal, "case.read", case_no)).case


def can_see_all(principal: Principal) -> bool:
    """Supervision centres and the platform admin read every department (supervision's scope)."""
    return principal.kind == "officer" and access.sees_every_department(access.own_relation(principal))
