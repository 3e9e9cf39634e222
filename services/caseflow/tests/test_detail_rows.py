"""The case detail read from rows on the driver (cases/detail_rows.py) is the ORM path's detail
(reading.detail_out after access.visible_case), field for field, for every kind of caller — and
refuses whom the ORM path refuses, with the same problem — on a fresh case and on one with every
part a detail shows: timeline, pauses, materials, branches, shipments and a pickup, licences, the
evaluation and the fees."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import update

from kit.auth import Principal
from kit.errors import Problem
from services.caseflow.cases import detail_rows, reading
from services.caseflow.cases.access import visible_case
from services.caseflow.models import Case, CaseFees, CaseLicence, CaseShipment, Evaluation
from services.caseflow.tests.conftest import (
    COMPANY,
    LI_SI,
    ZHANG_SAN,
    act,
    add_matter,
    matter_definition,
    officer,
    person,
    submit,
)

JOINT = "JOINT-ROWS"


def officer_principal(role: str, department: str) -> Principal:
    return Principal(subject=f"officer:{department.lower()}.{role}", kind="officer", level=3, roles=(role,),
                     department=department)  # fmt: skip


CALLERS = {
    "applicant": Principal(subject=ZHANG_SAN, kind="person", level=2),
    "agent": Principal(subject=ZHANG_SAN, kind="person", level=2, actor=LI_SI, scopes=(f"caseflow:{JOINT}",)),
    "agent_outside_mandate": Principal(
        subject=ZHANG_SAN, kind="person", level=2, actor=LI_SI, scopes=("licence:read",)
    ),
    "another_person": Principal(subject=LI_SI, kind="person", level=2),
    "an_enterprise": Principal(subject=COMPANY, kind="enterprise", level=3),
    "acceptor": officer_principal("acceptor", "SCJGJ"),
    "counter_of_the_department": officer_principal("counter", "SCJGJ"),
    "branch_decider": officer_principal("decider", "SWJ"),
    "other_department": officer_principal("decider", "RSJ"),
    "supervisor": officer_principal("supervisor", "JCZX"),
    "platform_admin": officer_principal("admin", "ADMIN"),
}


async def orm_detail(client, principal: Principal, case_no: str) -> tuple[dict, int] | Problem:
    """What GET /cases/{case_no} answered before issue 15: the case through the ORM."""
    async with client.app.state.sessionmaker() as session:
        try:
            case = await visible_case(session, principal, case_no)
        except Problem as refused:
            return refused
        detail = await reading.detail_out(session, case, principal, with_query_code=principal.kind != "officer")
        return detail, case.version


async def row_detail(client, principal: Principal, case_no: str) -> tuple[dict, int] | Problem:
    try:
        return await detail_rows.read_detail(client.app.state.driver, principal, case_no,
                                             with_query_code=principal.kind != "officer")  # fmt: skip
    except Problem as refused:
        return refused


async def assert_same_for_every_caller(client, case_no: str) -> dict[str, int | str]:
    """Both paths for every caller; what each caller got (a status, or ``shown``)."""
    seen: dict[str, int | str] = {}
    for name, principal in CALLERS.items():
        before, after = await orm_detail(client, principal, case_no), await row_detail(client, principal, case_no)
        if isinstance(before, Problem):
            assert isinstance(after, Problem), name
            assert (after.status, after.type_, after.detail) == (before.status, before.type_, before.detail), name
            seen[name] = before.status
        else:
            assert after == before, name
            seen[name] = "shown"
    return seen


async def test_a_fresh_case_reads_the_same_on_rows(caseflow):
    case = await submit(caseflow)
    seen = await assert_same_for_every_caller(caseflow, case["case_no"])
    assert seen["applicant"] == seen["acceptor"] == seen["supervisor"] == "shown"
    assert seen["another_person"] == seen["other_department"] == 404
    for missing in ("NOT-A-NUMBER", case["case_no"][:-1] + ("0" if case["case_no"][-1] != "0" else "1")):
        assert isinstance(await row_detail(caseflow, CALLERS["applicant"], missing), Problem)


async def test_a_case_with_every_part_reads_the_same_on_rows(caseflow):
    await add_matter(caseflow, matter_definition(JOINT, promised_limit_days=None, statutory_limit_days=45,
                                                 parallel_departments=["SWJ", "GAJ"]))  # fmt: skip
    case = await submit(caseflow, matter_code=JOINT)
    number = case["case_no"]
    items = [{"material": "经营场所租赁合同", "problem": "照片不清晰"}]
    assert (await act(caseflow, case, officer("acceptor"), "request_correction", items=items)).status_code == 200
    caseflow.clock.set(date(2026, 11, 4))
    resubmitted = await caseflow.post(f"/cases/{number}/resubmit", json={"form": {"business_scope": "餐饮"}},
                                      headers=person())  # fmt: skip
    assert resubmitted.status_code == 200, resubmitted.text
    assert (await act(caseflow, case, officer("acceptor"), "accept")).status_code == 200
    suspended = await act(caseflow, case, officer("reviewer"), "suspend", suspension="expert_review", expected_days=5,
                          reason="专家评审")  # fmt: skip
    assert suspended.status_code == 200, suspended.text
    # What other services report later (express, licence, payment, the evaluation), written as they
    # leave it, so that one case shows every part at once.
    at = datetime(2026, 11, 20, 2, 30, 15, 123456, tzinfo=UTC)
    async with caseflow.app.state.sessionmaker() as session, session.begin():
        case_id = (await session.execute(Case.__table__.select().where(Case.case_no == number))).one().id
        await session.execute(update(Case).where(Case.id == case_id).values(
            state="completed", decided_on=date(2026, 11, 18), completed_on=date(2026, 11, 20), fees_status="paid",
            version=Case.version + 1,
        ))  # fmt: skip
        session.add_all([
            CaseShipment(case_id=case_id, kind="collect", pickup_id="P-1", status="delivered", final=True,
                         updated_at=at, recorded_at=at, notified="", requested_by=ZHANG_SAN, sender="张三",
                         phone="13800138000", division_code="320802", address="江苏省淮安市清江浦区1号",
                         items='["经营场所租赁合同"]', shipment_id="S-0", carrier="ems", waybill="EB000000013CN"),
            CaseShipment(case_id=case_id, kind="deliver", shipment_id="S-1", carrier="ems", waybill="EA123456785CN",
                         status="delivered", final=True, updated_at=at, recorded_at=at, notified="delivered"),
            CaseLicence(case_id=case_id, identifier="LIC-OLD", number="N-1", licence_type="business_licence",
                        version=1, issued_on=date(2026, 11, 18), valid_until=None, recorded_at=at),
            CaseLicence(case_id=case_id, identifier="LIC-NEW", number="N-2", licence_type="business_licence",
                        version=2, issued_on=date(2026, 11, 19), valid_until=date(2031, 11, 18), recorded_at=at),
            Evaluation(case_id=case_id, department="SCJGJ", score=2, comment="慢", created_at=at,
                       rectification_due=date(2026, 12, 11), rectification_provisional=False),
            CaseFees(case_id=case_id, items='[{"amount_fen": 8950, "basis": "", "item": "工本费"}]', total_fen=8950,
                     revision=1, status="paid", due_before="decision", refund_on='["denied"]', order_id="ORD-1",
                     receipt_no="PJ-1", paid_fen=8950, paid_at=at, updated_at=at),
        ])  # fmt: skip
    seen = await assert_same_for_every_caller(caseflow, number)
    assert seen["agent_outside_mandate"] == 403 and seen["other_department"] == 404
    detail, version = await row_detail(caseflow, CALLERS["branch_decider"], number)  # type: ignore[misc]
    # The parts are there (so the comparison compared them), in their order.
    assert [p["reason"] for p in detail["pauses"]] == ["correction", "expert_review"]
    assert [b["department"] for b in detail["branches"]] == ["SWJ", "GAJ"]
    assert [s["kind"] for s in detail["shipments"]] == ["collect", "deliver"] and len(detail["pickups"]) == 1
    assert detail["licence"]["identifier"] == "LIC-NEW" and detail["evaluation"]["score"] == 2
    assert detail["fees"]["receipt_no"] == "PJ-1" and len(detail["materials"]) == 2
    assert [line["action"] for line in detail["timeline"]] == ["submit", "request_correction", "resubmit", "accept",
                                                               "suspend"]  # fmt: skip
    assert version == detail["version"]
    response = await caseflow.get(f"/cases/{number}", headers=person())
    assert response.headers["ETag"] == f'"{version}"' and response.json()["licence"]["identifier"] == "LIC-NEW"
