"""Submissions and officers' steps with their whole transaction on the driver (issue 15): the
answer built from what was read and written is the one the case's read gives; a key used twice
at once makes one case, two officers at once one step; each writes its events once, and the relay
publishes them (both databases)."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from services.caseflow import reference
from services.caseflow.models import Case, Notification, outbox
from services.caseflow.tests.conftest import (
    add_matter,
    keyed,
    matter_definition,
    officer,
    person,
    running_caseflow,
    submission,
    upload,
)

ACCEPTOR, REVIEWER, DECIDER = officer("acceptor"), officer("reviewer"), officer("decider")
PLAIN = "SCJG-PLAIN"  # no e-licence material


async def plain_body(client) -> dict:
    await add_matter(client, matter_definition(PLAIN, materials=[
        {"name": "经营场所租赁合同", "required": True, "forms": ["copy"], "count": 1}]))  # fmt: skip
    blob = await upload(client, person())
    return submission(matter_code=PLAIN, materials=[{"name": "经营场所租赁合同", "blob_id": blob}])


async def events_of(client, case_no: str) -> list[tuple[str, bool]]:
    """(event kind, published) of the case's outbox rows, oldest first."""
    table = outbox.table
    async with client.app.state.sessionmaker() as session:
        query = select(table.c.event_type, table.c.payload, table.c.published_at).order_by(table.c.id)
        rows = (await session.execute(query)).all()
    return [(kind.split(".")[3], published is not None) for kind, payload, published in rows
            if json.loads(payload)["subject"] == case_no]  # fmt: skip


async def published(client, case_no: str, count: int) -> list[tuple[str, bool]]:
    """The case's events once the relay has published ``count`` of them (it is woken at commit)."""
    for _ in range(200):
        events = await events_of(client, case_no)
        if sum(done for _, done in events) >= count:
            return events
        await asyncio.sleep(0.05)
    return await events_of(client, case_no)


async def messages_of(client, case_no: str) -> list[str]:
    """The templates of the messages to the case's applicant, oldest first."""
    async with client.app.state.sessionmaker() as session:
        query = (select(Notification.template).join(Case, Case.id == Notification.case_id)
                 .where(Case.case_no == case_no).order_by(Notification.id))  # fmt: skip
        return list((await session.execute(query)).scalars())


async def step(client, case_no: str, headers: dict, action: str, version: int, **body):
    return await client.post(f"/cases/{case_no}/actions", json={"action": action, **body},
                             headers={**headers, "If-Match": f'"{version}"'})  # fmt: skip


async def test_one_key_at_once_makes_one_case_one_event_and_the_same_answer(caseflow):
    body = await plain_body(caseflow)
    headers = keyed(person())
    answers = await asyncio.gather(*(caseflow.post("/cases", json=body, headers=headers) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 200, 201]
    created = next(a for a in answers if a.status_code == 201)
    for answer in answers:  # a retry gets the case back as it was made, with its ETag
        assert answer.json() == created.json()
        assert answer.headers["ETag"] == '"1"'
    case_no = created.json()["case_no"]
    assert await published(caseflow, case_no, 1) == [("submitted", True)]
    mine = (await caseflow.get("/cases", headers=person())).json()
    assert [c["case_no"] for c in mine["items"]] == [case_no]


async def test_a_submission_answers_what_its_case_then_reads(caseflow):
    body = await plain_body(caseflow)
    created = await caseflow.post("/cases", json=body, headers=keyed(person()))
    assert created.status_code == 201, created.text
    read = await caseflow.get(f"/cases/{created.json()['case_no']}", headers=person())
    assert created.json() == read.json()
    assert created.headers["ETag"] == read.headers["ETag"] == '"1"'


async def test_each_step_answers_what_the_case_then_reads(caseflow):
    body = await plain_body(caseflow)
    case_no = (await caseflow.post("/cases", json=body, headers=keyed(person()))).json()["case_no"]
    items = [{"material": "经营场所租赁合同", "problem": "复印件不清晰"}]
    steps = [(ACCEPTOR, "request_correction", {"items": items})]
    version = 1
    for headers, action, extra in steps:
        answer = await step(caseflow, case_no, headers, action, version, **extra)
        assert answer.status_code == 200, answer.text
        version += 1
        assert answer.headers["ETag"] == f'"{version}"'
        assert answer.json() == (await caseflow.get(f"/cases/{case_no}", headers=headers)).json()
    assert answer.json()["pauses"][0]["reason"] == "correction"
    resubmitted = await caseflow.post(f"/cases/{case_no}/resubmit", json={"form": {"business_scope": "零售"}},
                                      headers={**person(), "If-Match": f'"{version}"'})  # fmt: skip
    assert resubmitted.status_code == 200, resubmitted.text
    version += 1
    for headers, action in ((ACCEPTOR, "accept"), (REVIEWER, "review"), (DECIDER, "approve")):
        answer = await step(caseflow, case_no, headers, action, version)
        assert answer.status_code == 200, answer.text
        version += 1
        assert answer.json()["version"] == version
        assert answer.json() == (await caseflow.get(f"/cases/{case_no}", headers=headers)).json()
    assert answer.json()["state"] == "approved"
    assert [p["ended_on"] is not None for p in answer.json()["pauses"]] == [True]
    kinds = [kind for kind, _ in await published(caseflow, case_no, 6)]
    assert kinds == ["submitted", "correction_requested", "resubmitted", "accepted", "reviewed", "approved"]


async def test_two_officers_at_once_one_step_and_one_event(caseflow):
    body = await plain_body(caseflow)
    case_no = (await caseflow.post("/cases", json=body, headers=keyed(person()))).json()["case_no"]
    other = officer("acceptor")
    first, second = await asyncio.gather(step(caseflow, case_no, ACCEPTOR, "accept", 1),
                                         step(caseflow, case_no, other, "reject", 1, reason="材料不全"))  # fmt: skip
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner, loser = (first, second) if first.status_code == 200 else (second, first)
    assert loser.json()["type"].endswith("version-conflict")
    detail = (await caseflow.get(f"/cases/{case_no}", headers=ACCEPTOR)).json()
    assert detail == winner.json() and detail["version"] == 2 and len(detail["timeline"]) == 2
    events = await published(caseflow, case_no, 2)
    taken = "accept" if detail["state"] == "accepted" else "reject"
    assert events == [("submitted", True), (f"{taken}ed", True)]
    assert await messages_of(caseflow, case_no) == ["submit", taken]
    stale = await step(caseflow, case_no, ACCEPTOR, "accept", 1)
    assert stale.status_code == 409 and stale.json()["version"] == 2


async def test_what_a_step_reads_in_its_transaction_needs_no_second_connection(database_url, nats_server, tmp_path,
                                                                               monkeypatch):  # fmt: skip
    """With one driver connection, a submission and a step whose matter and calendar are no longer
    cached still complete: those are read on the transaction's own connection (waiting for a second
    one while holding the only one would wait for ever; the guard below turns that into a failure)."""
    async with running_caseflow(database_url, nats_server.url, tmp_path, driver_pool_size=1) as client:
        body = await plain_body(client)
        later = reference.clock() + 3600
        monkeypatch.setattr(reference, "clock", lambda: later)  # every cached entry has expired
        created = await asyncio.wait_for(client.post("/cases", json=body, headers=keyed(person())), 60)
        assert created.status_code == 201, created.text
        monkeypatch.setattr(reference, "clock", lambda: later + 3600)
        accepted = await asyncio.wait_for(step(client, created.json()["case_no"], ACCEPTOR, "accept", 1), 60)
        assert accepted.status_code == 200, accepted.text
