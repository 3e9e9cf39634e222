"""The result licence of an approved EMS case is issued: its delivery is requested at once (ADR 0022).

Before, an officer took a separate ``deliver`` step after the licence came back; for a case whose
result goes by EMS there is nothing left to decide at that point, so the system takes the same
step — the same transition (domain/states.py allows it to the system), the same
``caseflow.case.delivery_requested`` event express creates the shipment from, the Art. 44 delivery
clock untouched (it runs from the decision). Everything else keeps the officer's step: a case
without a licence result, a licence other than the matter's result, delivery at the window, or a
case no longer approved (an officer delivered already, or it was withdrawn: nothing happens).
"""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.licence import LicenceIssued
from kit.events import CloudEvent
from services.caseflow.cases import licences
from services.caseflow.cases.common import Context, matter_of_case
from services.caseflow.cases.transitions import complete_by_event
from services.caseflow.models import Case


def delivers_itself(case: Case, matter: dict, licence_type: str) -> bool:
    """True when the issued licence is what the approved case waits for before EMS delivery."""
    if case.state != "approved":
        return False
    if json.loads(case.delivery or "{}").get("method") != "ems":
        return False
    return bool(licence_type) and (matter.get("result") or {}).get("licence_type") == licence_type


async def deliver_result(session: AsyncSession, ctx: Context, case: Case, licence: LicenceIssued) -> None:
    """Request the EMS delivery of the case's result as the system, if nothing else must come first."""
    if not delivers_itself(case, await matter_of_case(session, case), licence.licence_type):
        return
    note = {"licence": licence.identifier, "trigger": "result_licence_issued"}
    await complete_by_event(session, ctx, case.case_no, action="deliver", note=note)


async def on_licence_issued(session: AsyncSession, ctx: Context, event: CloudEvent) -> None:
    """``licence.licence.issued``: record it on its case (cases.licences), then deliver the result."""
    recorded = await licences.on_licence_issued(session, ctx, event)
    if recorded is not None:
        await deliver_result(session, ctx, *recorded)
