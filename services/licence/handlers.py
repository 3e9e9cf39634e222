"""Events licence consumes: ``caseflow.case.approved`` → the case's result licence is issued;
``exchange.department.licence_issued`` → a department's certificate is stored (or refused) and
answered with ``licence.push.settled`` (licence.department_certificates).

The consumer (kit.consumer.EventConsumer) applies each event in one transaction with its inbox row,
so a redelivery changes nothing; ``issuance.issue_for_case`` adds the per-case uniqueness that holds
when the same approval arrives under two event ids or in two replicas at once.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.caseflow import CaseApproved
from contracts.events.exchange import DepartmentLicenceIssued
from kit.events import CloudEvent
from services.licence.context import Context
from services.licence.department_certificates import on_department_licence_issued
from services.licence.issuance import issue_for_case

CASE_APPROVED = CaseApproved.event_type
DEPARTMENT_LICENCE_ISSUED = DepartmentLicenceIssued.event_type


def case_approved_handler(context: Callable[[], Context]):
    """The handler for ``yiwang.caseflow.case.approved.v1`` (``context`` is read when it runs)."""

    async def on_case_approved(session: AsyncSession, event: CloudEvent) -> None:
        approved = CaseApproved.model_validate(event.data)
        await issue_for_case(session, context(), approved)

    return on_case_approved


def department_licence_handler(context: Callable[[], Context]):
    """The handler for ``yiwang.exchange.department.licence_issued.v1``."""

    async def on_department_licence(session: AsyncSession, event: CloudEvent) -> None:
        await on_department_licence_issued(session, context(), event)

    return on_department_licence
