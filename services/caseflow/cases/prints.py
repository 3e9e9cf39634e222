"""Printing a case's 办件进度单 (issue 14, ADR 0028): the applicant's side only (``case.print``), at a
kiosk, the counter or online; every print is a line on the case's timeline (``printed``: channel,
the kiosk's device id, who — never an ID number), written in the request's transaction, so there is
no print without its line. The public progress page does not list prints (reading.NOT_STEPS)."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.masking import mask_id_number, mask_name
from services.caseflow import steps
from services.caseflow.cases.access import authorize
from services.caseflow.cases.common import Context, dumps
from services.caseflow.domain import access
from services.caseflow.domain.progress_sheet import ProgressSheet, progress_url, render_progress_sheet

DOCUMENT = "progress_sheet"


def printed_by(principal: Principal, relation: str) -> str:
    """The timeline's actor of a print: the kiosk, the counter officer, or the applicant's side
    (an agent's ID number masked)."""
    if principal.channel == "kiosk" and principal.device:
        return f"kiosk:{principal.device}"[:80]
    if principal.channel == "counter" and principal.helper:
        return principal.helper[:80]
    if relation == access.AGENT and principal.actor:
        return f"agent:{mask_id_number(principal.actor)}"[:80]
    return relation


async def print_progress_sheet(session: AsyncSession, ctx: Context, principal: Principal, case_no: str) -> bytes:
    """The case's progress sheet as a PDF, and its ``printed`` line on the timeline."""
    allowed = await authorize(session, principal, "case.print", case_no)
    case = allowed.case
    now = ctx.current_time()
    sheet = ProgressSheet(
        case_no=case.case_no, matter=case.matter_name, department=case.department,
        applicant=mask_name(case.applicant_name) if case.applicant_name else "—", state=case.state,
        received_on=case.received_on, accepted_on=case.accepted_on, due_on=case.due_on, decided_on=case.decided_on,
        completed_on=case.completed_on, printed_at=now.astimezone(ZoneInfo(ctx.settings.timezone)),
        channel=principal.channel, device=principal.device,
        progress_url=progress_url(ctx.settings.public_progress_url, case.case_no, case.query_code),
    )  # fmt: skip
    document = await asyncio.to_thread(render_progress_sheet, sheet)
    detail = dumps({"document": DOCUMENT, "channel": principal.channel, "device": principal.device})
    line = steps.line(case, now, "printed", printed_by(principal, allowed.relation), case.state, case.state, detail)
    await steps.write(session, case, steps.Step(line))
    return document
