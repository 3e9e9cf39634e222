"""并联审批: fan-out into branches with their own deadlines; approval waits for all; a denial in
one branch denies the case (the default rule)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from services.caseflow.supervision import run_supervision_once
from services.caseflow.tests.conftest import act, add_matter, matter_definition, officer, submit

ACCEPTOR, REVIEWER, DECIDER = officer("acceptor"), officer("reviewer"), officer("decider")


async def joint_case(client) -> dict:
    await add_matter(client, matter_definition("JOINT-1", promised_limit_days=None, statutory_limit_days=45, materials=[],
                                               parallel_departments=["SWJ", "GAJ"]))  # fmt: skip
    case = await submit(client, matter_code="JOINT-1", materials=[])
    accepted = await act(client, case, ACCEPTOR, "accept")
    assert accepted.status_code == 200, accepted.text
    return accepted.json()


async def branch(client, case, department, action, **body):
    detail = (await client.get(f"/cases/{case['case_no']}", headers=officer("decider", department))).json()
    version = next(b["version"] for b in detail["branches"] if b["department"] == department)
    return await client.post(
        f"/cases/{case['case_no']}/branches/{department}/actions", json={"action": action, **body},
        headers={**officer("decider", department), "If-Match": str(version)},
    )  # fmt: skip


async def test_fan_out_and_approval_waits_for_every_branch(caseflow):
    case = await joint_case(caseflow)
    assert [(b["department"], b["state"]) for b in case["branches"]] == [("SWJ", "pending"), ("GAJ", "pending")]
    # Joint handling: 45 working days from Mon 2026-11-02 for the case and each branch.
    assert case["deadlines"]["decision"]["limit_days"] == 45 and "joint" in case["deadlines"]["decision"]["rule"]
    assert all(b["due_on"] == case["due_on"] for b in case["branches"])
    assert (await caseflow.get(f"/cases/{case['case_no']}", headers=officer("decider", "SWJ"))).status_code == 200
    assert (await caseflow.get(f"/cases/{case['case_no']}", headers=officer("decider", "RSJ"))).status_code == 404
    swj_list = (await caseflow.get("/worklist", headers=officer("decider", "SWJ"))).json()
    assert [c["case_no"] for c in swj_list["items"]] == [case["case_no"]]
    assert (await branch(caseflow, case, "SWJ", "approve", reason=None)).status_code == 200
    early = await act(caseflow, case, DECIDER, "approve")
    assert early.status_code == 409 and early.json()["pending"] == ["GAJ"]
    again = await branch(caseflow, case, "SWJ", "deny", reason="x")
    assert again.status_code == 409
    wrong = await caseflow.post(f"/cases/{case['case_no']}/branches/GAJ/actions", json={"action": "approve"},
                                headers={**officer("decider", "SWJ"), "If-Match": "1"})  # fmt: skip
    assert wrong.status_code == 404
    assert (await branch(caseflow, case, "GAJ", "approve")).status_code == 200
    await act(caseflow, case, REVIEWER, "review")
    approved = await act(caseflow, case, DECIDER, "approve")
    assert approved.status_code == 200 and approved.json()["state"] == "approved"


async def test_a_denial_in_one_branch_denies_the_case(caseflow):
    case = await joint_case(caseflow)
    no_reason = await branch(caseflow, case, "GAJ", "deny")
    assert no_reason.status_code == 422
    denied = await branch(caseflow, case, "GAJ", "deny", reason="消防验收不合格")
    assert denied.status_code == 200
    body = denied.json()
    assert body["state"] == "denied" and body["decision_reason"] == "GAJ: 消防验收不合格"
    assert {b["department"]: b["state"] for b in body["branches"]} == {"SWJ": "cancelled", "GAJ": "denied"}
    assert body["timeline"][-1]["actor"] == "system" and body["timeline"][-1]["action"] == "deny"
    late = await branch(caseflow, case, "SWJ", "approve")
    assert late.status_code == 409


async def test_branch_deadlines_are_supervised_per_department(caseflow):
    case = await joint_case(caseflow)
    await branch(caseflow, case, "SWJ", "approve")
    due = case["branches"][1]["due_on"]
    late = datetime.fromisoformat(due).replace(tzinfo=UTC) + timedelta(days=3)
    maker, ctx = caseflow.app.state.sessionmaker, caseflow.app.state.caseflow
    await asyncio.gather(run_supervision_once(maker, ctx, late), run_supervision_once(maker, ctx, late))
    gaj = (await caseflow.get("/supervision/warnings", headers=officer("supervisor", "GAJ"))).json()
    assert sorted((w["step"], w["level"]) for w in gaj["items"]) == [("branch:GAJ", "red"), ("branch:GAJ", "yellow")]
    swj = (await caseflow.get("/supervision/warnings", headers=officer("supervisor", "SWJ"))).json()
    assert swj["total"] == 0  # its branch was decided
