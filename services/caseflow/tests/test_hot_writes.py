"""The hot writes' round trips (issue 15): a common submission is one statement that inserts the
case only if its uploads are the applicant's own, with its fees row when it owes fees; a step that
starts or ends no pause and reveals no anomaly is one statement — on PostgreSQL neither opens a
transaction. Refusals, the answers and the concurrency guarantees stay what they were (both
databases)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from kit.driver import Driver
from services.caseflow.models import Case, CaseFees, CasePause
from services.caseflow.tests.conftest import (
    LI_SI,
    add_matter,
    keyed,
    matter_definition,
    officer,
    person,
    submission,
    upload,
)
from services.caseflow.tests.test_hot_paths import events_of, messages_of, plain_body, published, step

ACCEPTOR = officer("acceptor")
LEASE = [{"name": "经营场所租赁合同", "required": True, "forms": ["copy"], "count": 1}]


async def count(client, model) -> int:
    async with client.app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def transactions_of_requests(monkeypatch) -> list[str]:
    """The driver transactions opened by the requests this test task makes (not by the relay's or
    another task's): one entry each."""
    opened: list[str] = []
    original = Driver.transaction
    mine = asyncio.current_task()

    def counting(self: Driver):
        if asyncio.current_task() is mine:
            opened.append("transaction")
        return original(self)

    monkeypatch.setattr(Driver, "transaction", counting)
    return opened


async def test_an_upload_not_the_applicants_own_writes_nothing_and_is_refused_as_before(caseflow):
    body = await plain_body(caseflow)
    theirs = await upload(caseflow, person(LI_SI))
    for blob in (theirs, "00000000-0000-0000-0000-000000000000"):  # another's upload; none at all
        refused = await caseflow.post("/cases", headers=keyed(person()),
                                      json={**body, "materials": [{"name": "经营场所租赁合同", "blob_id": blob}]})  # fmt: skip
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [
            {"field": "materials.0.blob_id", "rule": "exists", "message": "no such upload of yours"}
        ]
    assert await count(caseflow, Case) == 0
    created = await caseflow.post("/cases", json=body, headers=keyed(person()))
    assert created.status_code == 201, created.text
    assert created.json()["case_no"][14:20] == "000001"  # the refused submissions' numbers went back
    assert await events_of(caseflow, created.json()["case_no"]) != []


async def test_a_submission_owing_fees_writes_its_fees_row_with_the_case(caseflow):
    await add_matter(caseflow, matter_definition("FEE-HOT", materials=LEASE, payment={"due_before": "decision"},
                                                 fees=[{"item": "工本费", "amount_yuan": "80"}]))  # fmt: skip
    blob = await upload(caseflow, person())
    body = submission(matter_code="FEE-HOT", materials=[{"name": "经营场所租赁合同", "blob_id": blob}])
    created = await caseflow.post("/cases", json=body, headers=keyed(person()))
    assert created.status_code == 201, created.text
    case_no = created.json()["case_no"]
    assert created.json()["fees"]["total_fen"] == 8000 and created.json()["fees"]["status"] == "due"
    assert created.json() == (await caseflow.get(f"/cases/{case_no}", headers=person())).json()
    assert await count(caseflow, CaseFees) == 1
    assert [kind for kind, _ in await published(caseflow, case_no, 2)] == ["submitted", "fees_due"]
    retried = await caseflow.post("/cases", json=body, headers={**keyed(person()), "Idempotency-Key": "fee-hot-1"})
    again = await caseflow.post("/cases", json=body, headers={**keyed(person()), "Idempotency-Key": "fee-hot-1"})
    assert (retried.status_code, again.status_code) == (201, 200) and again.json() == retried.json()
    assert await count(caseflow, CaseFees) == 2


async def test_the_common_submission_and_step_open_no_transaction_on_postgresql(caseflow, monkeypatch):
    body = await plain_body(caseflow)
    other = (await caseflow.post("/cases", json=body, headers=keyed(person()))).json()["case_no"]  # numbers drawn
    opened = transactions_of_requests(monkeypatch)
    created = await caseflow.post("/cases", json=body, headers=keyed(person()))
    assert created.status_code == 201, created.text
    case_no = created.json()["case_no"]
    accepted = await step(caseflow, case_no, ACCEPTOR, "accept", 1)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == (await caseflow.get(f"/cases/{case_no}", headers=ACCEPTOR)).json()
    postgresql = caseflow.app.state.driver.is_postgresql
    assert len(opened) == (0 if postgresql else 2)  # SQLite: each write is a transaction of its own
    opened.clear()
    items = [{"material": "经营场所租赁合同", "problem": "复印件不清晰"}]
    corrected = await step(caseflow, other, ACCEPTOR, "request_correction", 1, items=items)
    assert corrected.status_code == 200, corrected.text
    assert len(opened) == 1  # a step that starts a pause writes it in one transaction with the step
    assert corrected.json() == (await caseflow.get(f"/cases/{other}", headers=ACCEPTOR)).json()


async def test_a_step_with_a_pause_and_one_without_at_once_one_wins_and_the_other_writes_nothing(caseflow):
    body = await plain_body(caseflow)
    items = [{"material": "经营场所租赁合同", "problem": "复印件不清晰"}]
    for _ in range(3):
        case_no = (await caseflow.post("/cases", json=body, headers=keyed(person()))).json()["case_no"]
        pauses_before = await count(caseflow, CasePause)
        accepted, corrected = await asyncio.gather(
            step(caseflow, case_no, ACCEPTOR, "accept", 1),
            step(caseflow, case_no, officer("acceptor"), "request_correction", 1, items=items),
        )
        assert sorted([accepted.status_code, corrected.status_code]) == [200, 409]
        winner = accepted if accepted.status_code == 200 else corrected
        detail = (await caseflow.get(f"/cases/{case_no}", headers=ACCEPTOR)).json()
        assert detail == winner.json() and detail["version"] == 2 and len(detail["timeline"]) == 2
        assert await count(caseflow, CasePause) == pauses_before + (winner is corrected)
        taken = "accept" if winner is accepted else "request_correction"
        assert await messages_of(caseflow, case_no) == ["submit", taken]
        assert len(await events_of(caseflow, case_no)) == 2
