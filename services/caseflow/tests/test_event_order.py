"""Events of one entity applied out of their stream's order (docs/adr/0030-replica-safety.md):
replicas share a durable and apply at once, two relays publish at once, a failed attempt is retried
after later messages. The handlers whose outcome depended on the order now do not."""

from __future__ import annotations

from datetime import UTC, date, datetime

from contracts.events.catalog import MatterRetired
from kit.consumer import EventConsumer
from kit.events import envelope
from services.caseflow import matters
from services.caseflow.cases import fees
from services.caseflow.models import inbox
from services.caseflow.tests.conftest import add_matter, matter_definition, person, submit
from services.caseflow.tests.test_hall import WINDOW, deliver, fee_matter, paid, refunded, warnings_of


async def test_a_refund_applied_before_its_payment_leaves_the_fees_refunded(caseflow):
    await fee_matter(caseflow)
    case = await submit(caseflow, matter_code="FEE-1", materials=[], delivery=WINDOW)
    no = case["case_no"]
    assert (await caseflow.post(f"/cases/{no}/withdraw", headers=person())).status_code == 200
    assert await deliver(caseflow, refunded(no, order="ORD-R"))
    assert await deliver(caseflow, paid(no, order="ORD-R"))  # the same order's payment, applied late
    detail = (await caseflow.get(f"/cases/{no}", headers=person())).json()
    assert detail["fees"]["status"] == "refunded" and detail["fees"]["refunded_fen"] == 8950
    caseflow.clock.set(date(2026, 11, 20))  # long past the five working days
    assert await fees.raise_unrefunded(caseflow.app.state.sessionmaker, caseflow.app.state.caseflow) == 0
    assert await warnings_of(caseflow, no) == []  # not "paid, not refunded"


async def test_a_retirement_applied_after_the_next_versions_publication_leaves_that_version_open(caseflow):
    await add_matter(caseflow, matter_definition("RE-1"))
    await add_matter(caseflow, {**matter_definition("RE-1"), "version": 2})  # published after the retirement
    retired = MatterRetired(code="RE-1", version=1, department="SCJGJ", retired_at=datetime(2026, 11, 1, tzinfo=UTC),
                            retired_by="officer:scjgj.admin")  # fmt: skip
    consumer = EventConsumer(bus=None, sessionmaker=caseflow.app.state.sessionmaker, inbox=inbox,  # type: ignore[arg-type]
                             durable="caseflow-matters", stream="CATALOG", filter_subject="catalog.matter.>",
                             handlers={})  # fmt: skip
    assert await consumer._apply_once(envelope(retired, subject="RE-1"), matters.on_matter_retired)  # noqa: SLF001
    async with caseflow.app.state.sessionmaker() as session:
        open_now = await matters.get_matter(session, "RE-1")
        first = await matters.get_matter(session, "RE-1", 1, include_retired=True)
    assert open_now is not None and open_now.version == 2 and not open_now.retired
    assert first is not None and first.retired
