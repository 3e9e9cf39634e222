"""Suspending, reinstating and revoking a licence (the issuing department, with a reason).

The licence row is locked for the change (FOR UPDATE on PostgreSQL), the status table of
``domain.states`` decides whether the step is possible, and the event goes to the outbox in the
same transaction. A status change does not change the licence's version: the licence (its data)
is the same; verifiers read the status from the status list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import licence as contract
from kit.auth import Principal
from kit.events import envelope
from services.licence.context import Context
from services.licence.domain import states
from services.licence.issuance import event_fields
from services.licence.models import outbox
from services.licence.reading import authorize, licence_view

_EVENTS = {"suspend": contract.LicenceSuspended, "reinstate": contract.LicenceReinstated,
           "revoke": contract.LicenceRevoked}  # fmt: skip


async def change_status(session: AsyncSession, ctx: Context, principal: Principal, identifier: str, *,
                        action: str, reason: str) -> dict[str, Any]:  # fmt: skip
    """POST /licences/{identifier}/suspend|reinstate|revoke."""
    licence, _ = await authorize(session, principal, identifier, f"licence.{action}", lock=True)
    licence.status = states.next_status(licence.status, action)
    licence.status_reason = reason
    licence.updated_at = ctx.current_time()
    await session.flush()
    event = _EVENTS[action](**event_fields(licence, ctx.current_time()), reason=reason[:500], actor=principal.subject)
    await outbox.add(session, envelope(event, subject=licence.identifier))
    return licence_view(licence)
