"""POST /holdings (caseflow, signed): the holder's licences of some types, each read logged."""

from __future__ import annotations

from services.licence.tests.conftest import COMPANY, ZHANG_SAN, enterprise, issue, officer, person, signed


async def post_holdings(client, body: dict, **sign):
    raw, headers = signed(body, path="/holdings", **sign)
    return await client.post("/holdings", content=raw, headers=headers)


def body(**changes) -> dict:
    return {"holder": COMPANY, "licence_types": ["food_business_licence"], "purpose": "instant:SCJGJ-XK-0007",
            "case_no": None, **changes}  # fmt: skip


async def test_holdings_lists_the_holder_s_licences_of_the_types_and_logs_each_read(licence):
    food = await issue(licence)
    older = await issue(licence)
    await licence.post(f"/licences/{older['identifier']}/suspend", json={"reason": "检查"}, headers=officer())
    await issue(licence, licence_type="business_licence", data={"enterprise_name": "德州某某餐饮有限公司"})
    await issue(licence, holder=ZHANG_SAN, holder_name="张三")  # another holder's
    answer = await post_holdings(licence, body())
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["holder"] == COMPANY and got["holder_name"] == "德州某某餐饮有限公司"
    by_id = {item["identifier"]: item for item in got["licences"]}
    assert set(by_id) == {food["identifier"], older["identifier"]}
    assert by_id[food["identifier"]]["status"] == "valid" and by_id[food["identifier"]]["number"] == food["number"]
    assert by_id[older["identifier"]]["status"] == "suspended"
    assert by_id[food["identifier"]]["data"] == food["data"]
    log = (await licence.get(f"/licences/{food['identifier']}/access-log", headers=enterprise())).json()
    assert [(e["reader"], e["purpose"]) for e in log["items"]] == [("caseflow", "instant:SCJGJ-XK-0007")]
    none = (await post_holdings(licence, body(holder=ZHANG_SAN, licence_types=["marriage_certificate"]))).json()
    assert none == {"holder": ZHANG_SAN, "holder_name": None, "licences": []}


async def test_holdings_need_caseflow_s_signature_and_a_valid_body(licence):
    await issue(licence)
    assert (await licence.post("/holdings", json=body())).status_code == 401
    assert (await licence.post("/holdings", json=body(), headers=person())).status_code == 401
    assert (await post_holdings(licence, body(), secret="wrong")).status_code == 401
    bad = await post_holdings(licence, body(licence_types=["Food!"]))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith("body.licence_types")
    bad = await post_holdings(licence, body(licence_types=[]))
    assert bad.status_code == 422
    bad = await post_holdings(licence, body(purpose="x\u0000"))
    assert bad.status_code == 422
