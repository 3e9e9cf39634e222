"""Events licence consumes: ``caseflow.case.approved`` → the case's result licence is issued.

The consumer (kit.consumer.EventConsumer) applies each event in one transaction with its inbox row,
so a redelivery changes nothing; ``issuance.issue_for_case`` adds the per-case uniqueness that holds
when the same approval arrives under two event ids or in two replicas at once.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.caseflow import CaseApproved
from kit.events import CloudEvent
from services.licence.context import Context
from services.licence.issuance import issue_for_case

CASE_APPROVED = CaseApproved.event_type


def case_approved_handler(context: Callable[[], Context]):
    """The handler for ``yiwang.caseflow.case.approved.v1`` (``context`` is read when it runs)."""

    async def on_case_approved(session: AsyncSession, event: CloudEvent) -> None:
        approved = CaseApproved.model_validate(event.data)
        await issue_for_case(session, context(), approved)

    return on_case_approved
