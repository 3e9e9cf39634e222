"""What every step of a case writes besides the case row: its line on the timeline, the message
to the applicant and the events it publishes.

Each is an INSERT built once and executed with parameters, so SQLAlchemy compiles it once. (One
statement with the line and the message as CTEs of the outbox INSERT was tried and measured
slower: SQLAlchemy compiled it afresh on every call.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import attributes

from kit.events import CloudEvent
from services.caseflow.models import Case, CaseEvent, Notification, outbox

EVENTS = CaseEvent.__table__
MESSAGES = Notification.__table__
_LINE_COLUMNS = [c.key for c in EVENTS.columns if c.key != "id"]
INSERT_LINE = insert(EVENTS)
INSERT_MESSAGE = insert(MESSAGES)


@dataclass
class Step:
    """One step's writes: its timeline line, the applicant's message (if any), its events."""

    line: CaseEvent
    message: dict[str, Any] | None = None
    events: list[CloudEvent] = field(default_factory=list)


def line(case: Case, at: Any, action: str, actor: str, from_state: str | None, to_state: str, detail: str) -> CaseEvent:
    """A timeline line of the case (not added to the session: ``write`` inserts it)."""
    return CaseEvent(case_id=case.id, at=at, action=action, actor=actor, from_state=from_state, to_state=to_state,
                     detail=detail)  # fmt: skip


async def write(session: AsyncSession, case: Case, step: Step) -> None:
    """Insert the step's line, message and events in the caller's transaction, and show the line
    on the case's timeline if it is loaded (so a response needs no read-back)."""
    await session.execute(INSERT_LINE, {column: getattr(step.line, column) for column in _LINE_COLUMNS})
    if step.message is not None:
        await session.execute(INSERT_MESSAGE, step.message)
    for event in step.events:
        await outbox.add(session, event)
    if "timeline" not in attributes.instance_state(case).unloaded:
        attributes.set_committed_value(case, "timeline", [*case.timeline, step.line])
