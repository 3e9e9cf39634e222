"""The whole access table (domain/access.py) walked through the HTTP API: every action × every
actor (each officer role from each relation, the applicant, its agent in and out of the mandate,
strangers). An allowed cell succeeds; a refused one gets the table's status and changes nothing
(same version, same timeline, nothing created)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.events.licence import LicenceIssued
from kit.events import envelope
from services.caseflow.cases import licences
from services.caseflow.domain import access
from services.caseflow.models import Blob, Case, CaseEvent, CaseInstant
from services.caseflow.tests.conftest import (
    COMPANY,
    LI_SI,
    SIGNER,
    ZHANG_SAN,
    add_matter,
    bearer,
    keyed,
    matter_definition,
    token,
)

MATTER = "JOINT-MX"
FEE_MATTER = "JOINT-MXF"  # assessed fees (ADR 0026): the cells of case.assess_fees are walked on its cases
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32


def _officer(department: str, *roles: str) -> dict[str, str]:
    return bearer(token(f"officer:{department.lower()}.{'-'.join(roles)}", kind="officer", roles=roles,
                        department=department, level=3))  # fmt: skip


# actor name → (headers, relation to the matrix cases, roles)
ACTORS: dict[str, tuple[dict[str, str], str, tuple[str, ...]]] = {
    "applicant": (bearer(token(COMPANY, kind="enterprise", level=3)), access.APPLICANT, ()),
    "agent": (bearer(token(COMPANY, kind="enterprise", level=3, actor=LI_SI, scope=f"caseflow:{MATTER} caseflow:{FEE_MATTER}")),
              access.AGENT, ()),
    "agent_outside": (bearer(token(COMPANY, kind="enterprise", level=3, actor=LI_SI, scope="licence:read")),
                      access.AGENT_OUTSIDE_MANDATE, ()),
    "stranger": (bearer(token(ZHANG_SAN, level=3)), access.NONE, ()),
}  # fmt: skip
for _department, _relation in (("SCJGJ", access.DEPARTMENT_OFFICER), ("GAJ", access.BRANCH_OFFICER),
                               ("JCZX", access.SUPERVISOR), ("ADMIN", access.PLATFORM_ADMIN),
                               ("SWJ", access.OTHER_OFFICER), ("HALL", access.OTHER_OFFICER)):  # fmt: skip
    for _role in access.OFFICER_ROLES:
        ACTORS[f"{_department}.{_role}"] = (_officer(_department, _role), _relation, (_role,))
# The matrix cases are applied for at the hall's counter, helped by officer:hall.counter (ADR 0026).
HELPER_LOGIN = "officer:hall.counter"
ACTORS["HALL.counter"] = (ACTORS["HALL.counter"][0], access.HELPER, ("counter",))

# Without a case: a citizen relates to its own would-be case; an officer to its own department.
OWN_RELATION = {"stranger": access.APPLICANT, "GAJ": access.DEPARTMENT_OFFICER, "SWJ": access.DEPARTMENT_OFFICER,
                "HALL": access.DEPARTMENT_OFFICER}  # fmt: skip
LEAD = _officer("SCJGJ", "acceptor", "reviewer", "decider")
BRANCH = _officer("GAJ", "decider")
APPLICANT_HEADERS = ACTORS["applicant"][0]
# The applicant's own token as made at the counter (chn counter, hlp: the officer who helped).
COUNTER_HEADERS = bearer(SIGNER.token(sub=COMPANY, kind="enterprise", lvl=3, name="淮安某某餐饮有限公司", chn="counter",
                                      hlp={"sub": HELPER_LOGIN, "name": "王窗口", "dept": "HALL"}))  # fmt: skip

# The state each case action needs to be possible, and the body it takes.
STEP_BODIES: dict[str, dict[str, Any]] = {
    "accept": {}, "reject": {"reason": "不符合法定条件"},
    "request_correction": {"items": [{"material": "经营场所租赁合同", "problem": "不清晰"}]},
    "review": {}, "approve": {"reason": "符合法定条件"}, "deny": {"reason": "不符合法定条件"},
    "extend": {"reason": "需现场核查"}, "suspend": {"suspension": "testing", "expected_days": 5},
    "resume": {}, "deliver": {}, "complete": {}, "originals_received": {},
}  # fmt: skip
PICKUP = {"sender": "王五", "phone": "13800138000", "division_code": "320802", "address": "淮安市清江浦区1号",
          "items": ["经营场所产权证明"]}  # fmt: skip
NEEDS = {
    "accept": "submitted", "reject": "submitted", "request_correction": "submitted", "review": "accepted",
    "approve": "reviewed", "deny": "reviewed", "extend": "accepted", "suspend": "accepted", "resume": "suspended",
    "deliver": "approved", "complete": "approved", "resubmit": "correction_requested", "withdraw": "submitted",
    "evaluate": "completed", "branch.approve": "accepted", "branch.deny": "accepted",
    "request_pickup": "submitted", "originals_received": "accepted", "hand_out": "approved",
    "assess_fees": "submitted", "sample_review": "sampled",
}  # fmt: skip
# (state reached) → the lead's steps that reach it from "submitted"
PATH = {
    "submitted": [], "correction_requested": ["request_correction"], "accepted": ["accept"],
    "reviewed": ["accept", "branch", "review"], "suspended": ["accept", "suspend"],
    "approved": ["accept", "branch", "review", "approve"], "completed": ["accept", "branch", "review", "approve",
                                                                         "complete"],
}  # fmt: skip


async def setup_matter(client) -> None:
    await add_matter(client, matter_definition(
        MATTER, audience=["person", "enterprise"], parallel_departments=["GAJ"], promised_limit_days=None,
        materials=[{"name": "经营场所租赁合同", "required": True, "forms": ["copy"], "count": 1},
                   {"name": "经营场所产权证明", "required": False, "forms": ["original"], "count": 1}],
    ))  # fmt: skip
    await add_matter(client, matter_definition(
        FEE_MATTER, audience=["person", "enterprise"], parallel_departments=["GAJ"], promised_limit_days=None,
        materials=[{"name": "经营场所租赁合同", "required": True, "forms": ["copy"], "count": 1}],
        fees=[{"item": "工本费", "amount_yuan": "10"}], payment={"due_before": "delivery", "assessed": True},
    ))  # fmt: skip


async def version_of(client, case_no: str) -> tuple[int, int]:
    async with client.app.state.sessionmaker() as session:
        case = (await session.execute(select(Case).where(Case.case_no == case_no))).scalar_one()
        lines = (await session.execute(select(func.count()).where(CaseEvent.case_id == case.id))).scalar_one()
        return case.version, lines


async def counts(client) -> tuple[int, int]:
    async with client.app.state.sessionmaker() as session:
        cases = (await session.execute(select(func.count()).select_from(Case))).scalar_one()
        blobs = (await session.execute(select(func.count()).select_from(Blob))).scalar_one()
        return cases, blobs


async def new_case(client, state: str, matter: str = MATTER) -> dict[str, Any]:
    """A case of the matrix matter in ``state`` (driven there by the lead's multi-role officer),
    applied for at the counter with officer:hall.counter's help."""
    upload = await client.post("/materials", files={"file": ("lease.png", PNG)}, headers=APPLICANT_HEADERS)
    body = {"matter_code": matter, "form": {"business_scope": "餐饮服务"}, "delivery": {"method": "window"},
            "materials": [{"name": "经营场所租赁合同", "blob_id": upload.json()["id"]}]}  # fmt: skip
    created = await client.post("/cases", json=body, headers=keyed(COUNTER_HEADERS))
    assert created.status_code == 201, created.text
    case = created.json()
    if state == "sampled":  # 秒批 sampled for review: an approved case with its automatic verdict sampled
        case = await new_case(client, "approved")
        async with client.app.state.sessionmaker() as session, session.begin():
            session.add(CaseInstant(case_id=(await session.execute(select(Case.id).where(
                Case.case_no == case["case_no"]))).scalar_one(), case_no=case["case_no"], department="SCJGJ",
                status="approved", rule="r", verdict="{}", evaluated_at=client.clock(), decided_at=client.clock(),
                sampled=True))  # fmt: skip
        return case
    for step in PATH[state]:
        if step == "branch":
            response = await client.post(f"/cases/{case['case_no']}/branches/GAJ/actions", json={"action": "approve"},
                                         headers={**BRANCH, "If-Match": "1"})  # fmt: skip
        else:
            response = await client.post(f"/cases/{case['case_no']}/actions", json={"action": step, **STEP_BODIES[step]},
                                         headers={**LEAD, "If-Match": str(case["version"])})  # fmt: skip
        assert response.status_code == 200, (step, response.text)
        case = (
            response.json()
            if step != "branch"
            else (await client.get(f"/cases/{case['case_no']}", headers=LEAD)).json()
        )
    assert case["state"] == state
    if state == "approved":  # its result licence issued: ready to be handed out at the window
        await issue_licence(client, case["case_no"])
        case = (await client.get(f"/cases/{case['case_no']}", headers=LEAD)).json()
    return case


async def attempt(client, action: str, case: dict[str, Any] | None, headers: dict[str, str]):
    """One try at ``action`` through its route."""
    no = case["case_no"] if case else None
    version = {"If-Match": str(case["version"])} if case else {}
    if action == "case.read":
        return await client.get(f"/cases/{no}", headers=headers)
    if action == "case.print":
        return await client.post(f"/cases/{no}/prints", headers=headers)
    if action == "case.read_material":
        blob = case["materials"][0]["blob_id"]
        return await client.get(f"/cases/{no}/materials/{blob}", headers=headers)
    if action == "case.upload":
        return await client.post(f"/cases/{no}/materials", files={"file": ("x.png", PNG)}, headers=headers)
    if action == "material.upload":
        return await client.post("/materials", files={"file": ("x.png", PNG)}, headers=headers)
    if action == "case.list_mine":
        return await client.get("/cases", headers=headers)
    if action == "worklist.read":
        return await client.get("/worklist", headers=headers)
    if action == "matter.prefill":
        return await client.get(f"/matters/{MATTER}/prefill", headers=headers)
    if action == "sample.list":
        return await client.get("/reviews", headers=headers)
    if action == "case.sample_review":
        return await client.post(f"/cases/{no}/sample-review", json={"verdict": "agree"}, headers=headers)
    if action == "supervision.read":
        return await client.get("/supervision/warnings", headers=headers)
    if action == "calendar.write":
        return await client.put("/calendar/overrides/2027", json={"holidays": ["2027-01-01"], "workdays": []},
                                headers=headers)  # fmt: skip
    if action == "case.submit":
        upload = await client.post("/materials", files={"file": ("x.png", PNG)}, headers=headers)
        blob = upload.json()["id"] if upload.status_code == 201 else "00000000-0000-0000-0000-000000000000"
        body = {"matter_code": MATTER, "form": {"business_scope": "餐饮服务"}, "delivery": {"method": "window"},
                "materials": [{"name": "经营场所租赁合同", "blob_id": blob}]}  # fmt: skip
        return await client.post("/cases", json=body, headers=keyed(headers))
    if action == "case.resubmit":
        return await client.post(f"/cases/{no}/resubmit", json={"form": {"business_scope": "零售"}},
                                 headers={**headers, **version})  # fmt: skip
    if action == "case.withdraw":
        return await client.post(f"/cases/{no}/withdraw", headers={**headers, **version})
    if action == "case.request_pickup":
        return await client.post(f"/cases/{no}/pickups", json=PICKUP, headers=keyed(headers))
    if action == "counter.list_helped":
        return await client.get("/counter/cases", headers=headers)
    if action == "case.hand_out":
        return await client.post(
            f"/cases/{no}/hand-out", json={"receiver": "applicant"}, headers={**headers, **version}
        )
    if action == "case.assess_fees":
        return await client.post(f"/cases/{no}/fees", json={"items": [{"item": "工本费", "amount_fen": 1000}]},
                                 headers={**headers, **version})  # fmt: skip
    if action == "case.evaluate":
        return await client.post(f"/cases/{no}/evaluation", json={"score": 4}, headers=headers)
    if action.startswith("branch."):
        return await client.post(f"/cases/{no}/branches/GAJ/actions", json={"action": action.split(".")[1],
                                 "reason": "不符合"}, headers={**headers, "If-Match": "1"})  # fmt: skip
    step = action.removeprefix("case.")
    return await client.post(f"/cases/{no}/actions", json={"action": step, **STEP_BODIES[step]},
                             headers={**headers, **version})  # fmt: skip


async def issue_licence(client, case_no: str) -> None:
    """The result licence of the case issued (licence's event, as the consumer applies it): a window
    result that is a licence is handed out only then."""
    identifier = f"1.2.156.3005.2.11100000000013338W.002.{uuid.uuid4().hex[:12]}"
    issued = LicenceIssued(identifier=identifier, licence_type="business_licence", number="320802600012345",
                           holder=COMPANY, holder_kind="enterprise", issuer="SCJGJ", version=1, at=datetime.now(UTC),
                           issued_on=date(2026, 11, 2), valid_until=None, case_no=case_no, source="case")  # fmt: skip
    async with client.app.state.sessionmaker() as session, session.begin():
        await licences.on_licence_issued(session, client.app.state.caseflow,
                                         envelope(issued, source="yiwang.licence", subject=identifier))  # fmt: skip


def _state_for(action: str) -> str | None:
    if action in {"case.submit", "case.list_mine", "material.upload", "worklist.read", "supervision.read",
                  "calendar.write", "counter.list_helped",
                  "matter.prefill", "sample.list"}:  # fmt: skip
        return None
    return NEEDS.get(action.removeprefix("case."), "submitted")


CHANGES_STATE = {f"case.{s}" for s in STEP_BODIES} | {"case.resubmit", "case.withdraw", "case.evaluate",
                                                       "branch.approve", "branch.deny", "case.submit",
                                                       "case.request_pickup", "case.hand_out",
                                                       "case.assess_fees", "case.sample_review"}  # fmt: skip
_ACTIONS = list(access.ACTIONS)


# Department systems (ADR 0021) act by pushes, not HTTP: each pushes what its push means (a branch
# department's approve/deny is its branch's; the lead's, the case's), mirrors through progress.
SYSTEMS = ("SCJGJ", "GAJ", "SWJ")
PUSHED = {f"case.{s}" for s in access.SYSTEM_STEPS} | {f"branch.{s}" for s in access.BRANCH_STEPS} | {"case.mirror"}


async def _walk_systems(client, action: str, state: str | None, shared: dict[str, Any] | None) -> None:
    from services.caseflow.tests.test_department_pushes import apply, decision, progress

    for department in SYSTEMS:
        if action == "case.mirror":
            relation = access.system_relation(department, case_department="SCJGJ", branch_departments=())
        else:
            relation = access.system_relation(department, case_department="SCJGJ", branch_departments=["GAJ"])
            step = action.split(".")[1]
            on_branch = relation == access.BRANCH_SYSTEM and step in access.BRANCH_STEPS
            if action != (f"branch.{step}" if on_branch else f"case.{step}"):
                continue  # this department's push of that step is another action (walked there)
        decision_ = access.decide(action, relation, (access.SYSTEM_ROLE,))
        case = await new_case(client, state) if decision_.allowed and state else shared
        if action == "case.mirror":
            event = progress(department, f"MX-{department}-{case['case_no'] if case else 'new'}", "received",
                             matter=MATTER)  # fmt: skip
        else:
            body = {k: v for k, v in STEP_BODIES[step].items() if k in {"reason", "items"}}
            event = decision(department, case["case_no"], step, **({"reason": "不符合"} if on_branch else body))
        before = await version_of(client, case["case_no"]) if case and not decision_.allowed else None
        made = await counts(client)
        settled = await apply(client, event)
        if decision_.allowed:
            assert settled["outcome"] == "applied", (action, department, settled)
            continue
        assert settled["outcome"] == "refused" and settled["problem"]["rule"] == decision_.rule, (action, department)
        if before:
            assert await version_of(client, case["case_no"]) == before, (action, department)
        assert await counts(client) == made, (action, department)


@pytest.mark.parametrize("action", _ACTIONS)
async def test_every_cell_of_the_table(caseflow, action):
    await setup_matter(caseflow)
    state = _state_for(action)
    matter = FEE_MATTER if action == "case.assess_fees" else MATTER
    shared = await new_case(caseflow, state, matter) if state else None
    if action in PUSHED:
        await _walk_systems(caseflow, action, state if action != "case.mirror" else None, shared)
    if action == "case.mirror":  # no HTTP route: a citizen's or officer's relation never holds it
        assert not any(access.permitted(action, relation, roles) for _, relation, roles in ACTORS.values())
        return
    for actor, (headers, relation, roles) in ACTORS.items():
        if state is None:  # no case: the relation to one's own (would-be) cases or department
            relation = OWN_RELATION.get(actor.split(".")[0], relation)
        decision = access.decide(action, relation, roles)
        if decision.allowed:
            case = await new_case(caseflow, state, matter) if state and action in CHANGES_STATE else shared
            response = await attempt(caseflow, action, case, headers)
            assert response.status_code in {200, 201}, (action, actor, response.text)
            continue
        before = (await version_of(caseflow, shared["case_no"])) if shared else None
        made = await counts(caseflow)
        response = await attempt(caseflow, action, shared, headers)
        assert response.status_code == decision.status, (action, actor, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        if decision.status == 403:
            assert response.json().get("rule") in {decision.rule, None} or action == "supervision.read", response.text
        if shared:
            assert await version_of(caseflow, shared["case_no"]) == before, (action, actor)  # same version, timeline
        if action in {"case.submit"}:
            assert (await counts(caseflow))[0] == made[0], (action, actor)


async def test_the_reported_hole_a_branch_officer_cannot_review_the_lead_case(caseflow):
    await setup_matter(caseflow)
    case = await new_case(caseflow, "accepted")
    response = await caseflow.post(f"/cases/{case['case_no']}/actions", json={"action": "review"},
                                   headers={**_officer("GAJ", "reviewer", "decider"), "If-Match": str(case["version"])})  # fmt: skip
    assert response.status_code == 403 and response.json()["rule"] == "relation"
    assert (await caseflow.get(f"/cases/{case['case_no']}", headers=LEAD)).json()["state"] == "accepted"
