"""Issuing by an officer, the wallet, reading, the access log, status changes — through HTTP."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from services.licence.domain.identifier import parse_identifier
from services.licence.models import outbox
from services.licence.tests.conftest import COMPANY, LI_SI, ZHANG_SAN, enterprise, issue, officer, person


async def events(client, kind: str | None = None) -> list[dict]:
    import json

    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.event_type, outbox.table.c.payload))).all()
    found = [
        json.loads(payload)["data"]
        for event_type, payload in rows
        if kind is None or event_type.endswith(f".{kind}.v1")
    ]
    return found


async def test_types_are_public_with_issuers_schema_and_materials(licence):
    response = await licence.get("/types")
    assert response.status_code == 200
    types = {t["code"]: t for t in response.json()}
    assert {"business_licence", "individual_business_licence", "food_business_licence", "real_estate_certificate",
            "marriage_certificate"} <= set(types)  # fmt: skip
    food = types["food_business_licence"]
    assert food["validity"]["years"] == 5
    assert food["issuers"][0]["department"] == "SCJGJ" and food["issuers"][0]["issuer_code"] == "11371400MB00000190"
    assert "address" in food["data_schema"]["required"]
    assert "经营场所使用证明（房产证明或租赁合同）" in types["real_estate_certificate"]["satisfies"]
    assert types["business_licence"]["validity"] == {"years": None, "long_term": True}


async def test_officer_issues_a_food_licence_with_gbt36904_identifier_and_serial_number(licence):
    issued = await issue(licence)
    parsed = parse_identifier(issued["identifier"])
    assert parsed.issuer_code == "11371400MB00000190" and parsed.type_code.endswith("003")
    assert issued["number"] == "37140020260000001"
    assert issued["issued_on"] == "2026-11-02" and issued["valid_until"] == "2031-11-01"
    assert issued["holder_code_type"] == "001" and issued["source"] == "officer" and issued["status"] == "valid"
    second = await issue(licence, holder=ZHANG_SAN, holder_name="张三")
    assert second["number"] == "37140020260000002" and second["holder_code_type"] == "111"
    [first_event, _] = await events(licence, "issued")
    assert first_event["identifier"] == issued["identifier"] and first_event["source"] == "officer"


async def test_business_licence_of_an_enterprise_carries_its_credit_code(licence):
    issued = await issue(licence, licence_type="business_licence", data={"legal_representative": "王五"})
    assert issued["number"] == COMPANY and issued["valid_until"] is None


async def test_issuing_refusals_name_field_and_rule(licence):
    bad_holder = await licence.post(
        "/licences",
        headers=officer(),
        json={"licence_type": "food_business_licence", "holder": "91350100M000100Y44", "holder_name": "x", "data": {}},
    )
    assert bad_holder.status_code == 422
    assert bad_holder.json()["errors"][0]["field"] == "body.holder"
    assert bad_holder.json()["errors"][0]["rule"] == "checksum"
    missing = await licence.post(
        "/licences",
        headers=officer(),
        json={"licence_type": "food_business_licence", "holder": COMPANY, "holder_name": "x", "data": {}},
    )
    assert missing.status_code == 422 and missing.json()["errors"][0] == {
        "field": "data.address",
        "rule": "required",
        "message": "'address' is a required property",
    }
    other_department = await licence.post(
        "/licences",
        headers=officer("BDCDJ"),
        json={"licence_type": "food_business_licence", "holder": COMPANY, "holder_name": "x", "data": {"address": "a"}},
    )
    assert other_department.status_code == 403 and other_department.json()["rule"] == "relation"
    acceptor = await licence.post(
        "/licences",
        headers=officer("SCJGJ", "acceptor"),
        json={"licence_type": "food_business_licence", "holder": COMPANY, "holder_name": "x", "data": {"address": "a"}},
    )
    assert acceptor.status_code == 403 and acceptor.json()["rule"] == "role"
    unknown = await licence.post(
        "/licences", headers=officer(), json={"licence_type": "no_such_type", "holder": COMPANY, "holder_name": "x"}
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["rule"] == "unknown"
    person_only = await licence.post(
        "/licences",
        headers=officer("MZJ"),
        json={"licence_type": "marriage_certificate", "holder": COMPANY, "holder_name": "x"},
    )
    assert person_only.status_code == 422 and person_only.json()["errors"][0]["rule"] == "holder_kind"  # fmt: skip


async def test_wallet_read_and_access_log(licence):
    mine = await issue(licence, holder=ZHANG_SAN, holder_name="张三")
    await issue(licence, holder=LI_SI, holder_name="李四")
    wallet = await licence.get("/licences", headers=person(ZHANG_SAN))
    assert wallet.status_code == 200 and wallet.json()["total"] == 1
    assert wallet.json()["items"][0]["identifier"] == mine["identifier"]
    path = f"/licences/{mine['identifier']}"
    assert (await licence.get(path, headers=person(ZHANG_SAN))).status_code == 200
    # another citizen: 404, as for a licence that does not exist
    stranger = await licence.get(path, headers=person(LI_SI))
    assert stranger.status_code == 404
    assert (await licence.get(path + "/access-log", headers=person(LI_SI))).status_code == 404
    # the holder's own reads are not logged; the issuing officer's read is
    log = await licence.get(path + "/access-log", headers=person(ZHANG_SAN))
    assert log.json()["total"] == 0
    assert (await licence.get(path, headers=officer("SCJGJ", "reviewer"))).status_code == 200
    assert (await licence.get(path, headers=officer("BDCDJ", "reviewer"))).status_code == 404
    log = (await licence.get(path + "/access-log", headers=person(ZHANG_SAN))).json()
    assert log["total"] == 1 and log["items"][0]["reader"] == "officer:scjgj.reviewer"
    assert log["items"][0]["reader_kind"] == "officer"
    # the officer may read but not see the holder's access log
    assert (await licence.get(path + "/access-log", headers=officer("SCJGJ", "reviewer"))).status_code == 403


async def test_wallet_pages_carry_the_total_even_past_the_last(licence):
    first = await issue(licence, holder=ZHANG_SAN, holder_name="张三")
    second = await issue(licence, holder=ZHANG_SAN, holder_name="张三")
    await issue(licence, holder=COMPANY, holder_name="德州某某餐饮有限公司")
    pages = [
        (await licence.get("/licences", params={"page": page, "page_size": 1}, headers=person(ZHANG_SAN))).json()
        for page in (1, 2, 3)
    ]
    assert [p["total"] for p in pages] == [2, 2, 2]  # the count rides on a page; past the end it is asked alone
    assert [[i["identifier"] for i in p["items"]] for p in pages] == [[second["identifier"]], [first["identifier"]], []]
    assert (await licence.get("/licences", headers=person(LI_SI))).json() == {
        "total": 0,
        "page": 1,
        "page_size": 20,
        "items": [],
    }


async def test_agent_sees_the_enterprise_wallet_within_its_mandate(licence):
    food = await issue(licence)
    await issue(licence, licence_type="business_licence", data={})
    everything = await licence.get("/licences", headers=enterprise(actor=LI_SI, scope="licence"))
    assert everything.json()["total"] == 2
    food_only = await licence.get("/licences", headers=enterprise(actor=LI_SI, scope="licence:food_business_licence"))
    assert [i["identifier"] for i in food_only.json()["items"]] == [food["identifier"]]
    outside = await licence.get("/licences", headers=enterprise(actor=LI_SI, scope="caseflow"))
    assert outside.status_code == 403 and outside.json()["rule"] == "mandate_scope"
    not_covered = enterprise(actor=LI_SI, scope="licence:business_licence")
    assert (await licence.get(f"/licences/{food['identifier']}", headers=not_covered)).status_code == 404


async def test_suspend_reinstate_revoke_with_reasons_and_events(licence):
    issued = await issue(licence)
    path = f"/licences/{issued['identifier']}"
    suspended = await licence.post(path + "/suspend", json={"reason": "现场检查不合格"}, headers=officer())
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    again = await licence.post(path + "/suspend", json={"reason": "x"}, headers=officer())
    assert again.status_code == 409 and again.json()["rule"] == "status"
    assert (await licence.post(path + "/reinstate", json={"reason": "整改完成"}, headers=officer())).json()[
        "status"
    ] == "valid"
    holder_try = await licence.post(path + "/revoke", json={"reason": "x"}, headers=enterprise())
    assert holder_try.status_code == 403
    no_reason = await licence.post(path + "/revoke", json={"reason": ""}, headers=officer())
    assert no_reason.status_code == 422
    revoked = await licence.post(path + "/revoke", json={"reason": "吊销"}, headers=officer())
    assert revoked.json()["status"] == "revoked" and revoked.json()["status_reason"] == "吊销"
    assert (await licence.post(path + "/reinstate", json={"reason": "x"}, headers=officer())).status_code == 409
    kinds = [e for e in await events(licence)]
    assert [e.get("reason") for e in kinds][1:] == ["现场检查不合格", "整改完成", "吊销"]
    wallet = await licence.get("/licences", headers=enterprise(), params={"status": "revoked"})
    assert wallet.json()["total"] == 1
    assert date.fromisoformat(revoked.json()["issued_on"]) == date(2026, 11, 2)


async def test_wallet_items_are_the_licence_as_read_alone_and_every_filter_counts(licence):
    food = await issue(licence)
    business = await issue(licence, licence_type="business_licence", data={})
    one = (await licence.get(f"/licences/{food['identifier']}", headers=enterprise())).json()
    wallet = (await licence.get("/licences", headers=enterprise())).json()
    assert wallet["items"][1] == one  # written as the response model writes a licence
    typed = await licence.get("/licences", headers=enterprise(), params={"type": "business_licence"})
    assert [i["identifier"] for i in typed.json()["items"]] == [business["identifier"]]
    both = {"type": "business_licence", "status": "valid"}
    assert (await licence.get("/licences", headers=enterprise(), params=both)).json()["total"] == 1
    agent = enterprise(actor=LI_SI, scope="licence:food_business_licence")
    past = await licence.get("/licences", headers=agent, params={"page": 2, "page_size": 1})
    assert past.json()["total"] == 1 and past.json()["items"] == []  # counted alone, within the mandate
    uncovered = await licence.get("/licences", headers=agent, params={"type": "business_licence"})
    assert uncovered.json()["total"] == 0
