"""Events payment consumes: caseflow's fees_due (orders) and a case's end (close or refund).

The consumer (kit.consumer.EventConsumer) applies each event in one transaction with its inbox row,
so a redelivery changes nothing; orders.py adds the per-case uniqueness that holds when the same
fees arrive under two event ids.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.caseflow import CaseDenied, CaseFeesDue, CaseRejected, CaseWithdrawn
from kit.events import CloudEvent
from services.payment.context import Context
from services.payment.orders import on_case_ended, on_fees_due

FEES_DUE = CaseFeesDue.event_type
ENDINGS = {CaseWithdrawn.event_type: ("withdrawn", CaseWithdrawn), CaseRejected.event_type: ("rejected", CaseRejected),
           CaseDenied.event_type: ("denied", CaseDenied)}  # fmt: skip
# durable name → (subject, event type)
SUBJECTS = {
    "fees-due": (CaseFeesDue.nats_subject, FEES_DUE),
    "withdrawn": (CaseWithdrawn.nats_subject, CaseWithdrawn.event_type),
    "rejected": (CaseRejected.nats_subject, CaseRejected.event_type),
    "denied": (CaseDenied.nats_subject, CaseDenied.event_type),
}


def case_handlers(context: Callable[[], Context]):
    """Event type → handler (``context`` is read when a handler runs, after start-up)."""

    async def on_fees(session: AsyncSession, event: CloudEvent) -> None:
        await on_fees_due(session, context(), CaseFeesDue.model_validate(event.data))

    def ending(outcome: str, model):
        async def on_ending(session: AsyncSession, event: CloudEvent) -> None:
            data = model.model_validate(event.data)
            await on_case_ended(session, context(), case_no=data.case_no, outcome=outcome)

        return on_ending

    handlers = {FEES_DUE: on_fees}
    handlers.update({event_type: ending(outcome, model) for event_type, (outcome, model) in ENDINGS.items()})
    return handlers
