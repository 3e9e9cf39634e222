"""The worklist's statements on the driver (one per shape of filters, built once): the state asked
for within the caller's roles' states, ``due_before``, and oversight across every department —
on both databases."""

from __future__ import annotations

from datetime import date, timedelta

from services.caseflow.tests.conftest import act, add_matter, matter_definition, officer, submit

ACCEPTOR, REVIEWER = officer("acceptor"), officer("reviewer")


def numbers(answer) -> list[str]:
    return [c["case_no"] for c in answer.json()["items"]]


async def test_the_worklist_filters_by_state_deadline_and_department(caseflow):
    await add_matter(caseflow, matter_definition("OTHER-1", department="SWJ", materials=[]))
    waiting = await submit(caseflow)
    accepted = (await act(caseflow, await submit(caseflow), ACCEPTOR, "accept")).json()
    elsewhere = await submit(caseflow, matter_code="OTHER-1", materials=[])
    assert numbers(await caseflow.get("/worklist", headers=ACCEPTOR)) == [waiting["case_no"]]
    only = await caseflow.get("/worklist", params={"state": "submitted"}, headers=ACCEPTOR)
    assert numbers(only) == [waiting["case_no"]]
    # A state the caller's roles do not work on lists nothing (not an error).
    assert numbers(await caseflow.get("/worklist", params={"state": "accepted"}, headers=ACCEPTOR)) == []
    due = date.fromisoformat(accepted["due_on"])
    on_the_day = await caseflow.get("/worklist", params={"due_before": due.isoformat()}, headers=REVIEWER)
    assert numbers(on_the_day) == [accepted["case_no"]]
    day_before = await caseflow.get("/worklist", params={"due_before": (due - timedelta(days=1)).isoformat()},
                                    headers=REVIEWER)  # fmt: skip
    assert numbers(day_before) == []
    every = await caseflow.get("/worklist", headers=officer("supervisor", "JCZX"))
    assert set(numbers(every)) == {waiting["case_no"], accepted["case_no"], elsewhere["case_no"]}
    assert every.json()["total"] == 3 and every.json()["total_capped"] is False
    own = await caseflow.get("/worklist", headers=officer("supervisor", "SWJ"))
    assert numbers(own) == [elsewhere["case_no"]]
