"""J3 with e-licences, through the gateway of a `make run` platform: the company's business licence
(issued by the market regulator's officer) fills the 营业执照 material of an agent's application,
caseflow's read of it lands in the company's access log with the case number, the approved case
issues a 食品经营许可证 that caseflow records on the case, and anyone can verify it online — until
it is revoked."""

from __future__ import annotations

import base64
import io
import time

import zxingcpp
from PIL import Image

from tests.e2e.test_case_journeys import JPEG, PDF, act, citizen, gateway, officer, submit_when_announced, upload
from tests.e2e.test_journeys import _valid

__all__ = ["gateway"]  # the module-scoped client fixture

SNACK_SHOP = "92340602MA2PBMEM24"  # 淮北市相山区某某小吃店 in the sandbox enterprise register
OWNER = "11010519491231002X"  # its legal representative (张三, J1's citizen)
AGENT = _valid("34060219900101001")  # 钱十, who applies for the shop
FOOD_PERMIT = "SCJGJ-XK-0003"  # 食品经营许可


def bearer(response) -> dict:
    assert response.status_code == 201, response.text
    return {"Authorization": "Bearer " + response.json()["access_token"]}


def wait_for(check, seconds: float = 30):
    """Events travel over NATS: poll until ``check()`` answers something truthy."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def test_j3_the_agent_reuses_the_company_licence_and_the_company_sees_the_read(gateway):
    owner = citizen(gateway, OWNER, "张三", "13800138000")
    bound = gateway.post("/identity/enterprises", json={"uscc": SNACK_SHOP}, headers=owner)
    assert bound.status_code in (201, 409), bound.text
    agent = citizen(gateway, AGENT, "钱十", "13811110005")
    expires = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.localtime(time.time() + 365 * 86400))
    granted = gateway.post(f"/identity/enterprises/{SNACK_SHOP}/agents", headers=owner,
                           json={"agent_id_number": AGENT, "scopes": [f"caseflow:{FOOD_PERMIT}"], "expires_at": expires})  # fmt: skip
    assert granted.status_code == 201, granted.text

    # The market regulator issued the shop's business licence (a department issuing directly).
    regulator = officer(gateway, "scjgj.officer")
    issued = gateway.post("/licence/licences", headers=regulator, json={
        "licence_type": "business_licence", "holder": SNACK_SHOP, "holder_name": "淮北市相山区某某小吃店",
        "data": {"enterprise_name": "淮北市相山区某某小吃店", "address": "淮北市相山区1号", "business_scope": "小吃"}})  # fmt: skip
    assert issued.status_code == 201, issued.text
    business = issued.json()
    assert business["identifier"].startswith("1.2.156.3005.2.") and business["number"] == SNACK_SHOP

    # 钱十 acts for the shop: the 营业执照 is the e-licence, not an upload.
    acting = bearer(gateway.post("/identity/sessions/act-as", json={"enterprise": SNACK_SHOP}, headers=agent))
    uploads = {name: upload(gateway, acting, content) for name, content in (
        ("食品经营许可申请书", PDF), ("食品经营主要设备设施、经营布局、操作流程等文件", PDF),
        ("食品安全自查、从业人员健康管理等制度目录", JPEG))}  # fmt: skip
    body = {
        "matter_code": FOOD_PERMIT,
        "form": {"enterprise_name": "淮北市相山区某某小吃店", "address": "淮北市相山区1号",
                 "legal_representative": "张三", "registered_capital": 10},
        "materials": [{"name": "营业执照", "licence_id": business["identifier"], "licence_version": 1},
                      *({"name": name, "blob_id": blob} for name, blob in uploads.items())],
        "delivery": {"method": "window"},
    }  # fmt: skip
    # a licence the shop does not hold is refused, naming the material and the rule; nothing is created
    stranger_licence = {**body, "materials": [{**body["materials"][0], "licence_id": business["identifier"][:-1] + "0"},
                                              *body["materials"][1:]]}  # fmt: skip
    refused = submit_when_announced(gateway, stranger_licence, {**acting, "Idempotency-Key": "j3-qian-0"})
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["field"].endswith("materials.0.licence_id") and error["rule"] == "not_found", error
    created = submit_when_announced(gateway, body, {**acting, "Idempotency-Key": "j3-qian-1"})
    assert created.status_code == 201, created.text
    case = created.json()
    case_no = case["case_no"]
    [reused] = [m for m in case["materials"] if m["name"] == "营业执照"]
    assert reused["verified"] is True and reused["number"] == SNACK_SHOP

    # The shop (its legal representative acting for it) sees caseflow's read, with the case number.
    shop = bearer(gateway.post("/identity/sessions/act-as", json={"enterprise": SNACK_SHOP}, headers=owner))
    log = gateway.get(f"/licence/licences/{business['identifier']}/access-log", headers=shop)
    assert log.status_code == 200, log.text
    assert any(e["reader"] == "caseflow" and e["case_no"] == case_no for e in log.json()["items"]), log.text
    # another citizen learns nothing about the shop's licence
    assert gateway.get(f"/licence/licences/{business['identifier']}", headers=agent).status_code == 404

    # The regulator approves; licence issues the 食品经营许可证 and caseflow records it on the case.
    for action in ("accept", "review", "approve"):
        act(gateway, case_no, regulator, action)

    def recorded():
        shown = gateway.get(f"/caseflow/cases/{case_no}", headers=shop).json()
        return shown.get("licence")

    licence = wait_for(recorded)
    assert licence and licence["licence_type"] == "food_business_licence", licence
    wallet = gateway.get("/licence/licences", headers=shop).json()
    permit = next(item for item in wallet["items"] if item["identifier"] == licence["identifier"])
    assert permit["case_no"] == case_no and permit["holder_name"] == "淮北市相山区某某小吃店"
    assert permit["status"] == "valid" and permit["source"] == "case"

    # Anyone shown the QR checks it: decoded by a real QR reader, verified online, then revoked.
    qr = gateway.get(f"/licence/licences/{permit['identifier']}/qr", headers=shop).json()
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(base64.b64decode(qr["png_base64"]))))
    assert gateway.post("/licence/licences/verify", json={"text": decoded.text}).json()["status"] == "valid"
    revoked = gateway.post(f"/licence/licences/{permit['identifier']}/revoke", json={"reason": "以欺骗手段取得"},
                           headers=regulator)  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    assert gateway.post("/licence/licences/verify", json={"text": decoded.text}).json()["status"] == "revoked"
    assert gateway.post("/licence/checks", json={}).status_code == 404  # the internal check is never routed
