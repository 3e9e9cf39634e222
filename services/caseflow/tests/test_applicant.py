"""The applicant's side: notifications at every step, evaluation after completion, published results."""

from __future__ import annotations

from datetime import date

from services.caseflow.tests.conftest import LI_SI, ZHANG_SAN, act, officer, person, submit

ACCEPTOR, REVIEWER, DECIDER = officer("acceptor"), officer("reviewer"), officer("decider")


async def complete(client) -> dict:
    case = await submit(client)
    for headers, action in ((ACCEPTOR, "accept"), (REVIEWER, "review"), (DECIDER, "approve"),
                            (ACCEPTOR, "complete")):  # fmt: skip
        response = await act(client, case, headers, action)
        assert response.status_code == 200, response.text
    return case


async def test_a_message_at_every_step(caseflow):
    case = await submit(caseflow)
    await act(
        caseflow, case, ACCEPTOR, "request_correction", items=[{"material": "经营场所租赁合同", "problem": "不清晰"}]
    )
    messages = (await caseflow.get("/sandbox/notifications", params={"case_no": case["case_no"]})).json()
    assert [m["template"] for m in messages] == ["request_correction", "submit"]
    assert case["query_code"] in messages[1]["text"] and case["case_no"] in messages[1]["text"]
    assert "经营场所租赁合同" in messages[0]["text"]
    assert all(m["recipient"] == ZHANG_SAN for m in messages)


async def test_evaluation_after_completion_once_with_rectification_for_bad_scores(caseflow):
    case = await submit(caseflow)
    early = await caseflow.post(f"/cases/{case['case_no']}/evaluation", json={"score": 5}, headers=person())
    assert early.status_code == 409 and early.json()["state"] == "submitted"
    done = await complete(caseflow)
    good = await caseflow.post(f"/cases/{done['case_no']}/evaluation", json={"score": 5, "comment": "非常满意"},
                               headers=person())  # fmt: skip
    assert good.status_code == 201 and good.json()["rectification"] is None
    twice = await caseflow.post(f"/cases/{done['case_no']}/evaluation", json={"score": 1}, headers=person())
    assert twice.status_code == 409
    other = await caseflow.post(f"/cases/{done['case_no']}/evaluation", json={"score": 1}, headers=person(LI_SI))
    assert other.status_code == 404
    bad_case = await complete(caseflow)
    caseflow.clock.set(date(2026, 11, 2))
    bad = await caseflow.post(f"/cases/{bad_case['case_no']}/evaluation", json={"score": 2}, headers=person())
    assert bad.json()["rectification"] == {"due": "2026-11-23", "provisional": False, "rectified": False}
    out_of_range = await caseflow.post(f"/cases/{bad_case['case_no']}/evaluation", json={"score": 6}, headers=person())
    assert out_of_range.status_code == 422
    detail = (await caseflow.get(f"/cases/{bad_case['case_no']}", headers=person())).json()
    assert detail["evaluation"]["score"] == 2


async def test_published_results_mask_the_applicant(caseflow):
    done = await complete(caseflow)
    await submit(caseflow)  # not decided: not published
    results = (await caseflow.get("/results")).json()
    assert results["total"] == 1
    item = results["items"][0]
    assert item == {"case_no": done["case_no"], "matter": "个体工商户设立登记", "department": "SCJGJ",
                    "applicant": "张*", "decision": "approved", "decided_on": "2026-11-02"}  # fmt: skip
