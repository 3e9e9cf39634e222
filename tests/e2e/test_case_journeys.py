"""J1/J2, J4, J5 and J7 for cases, through the gateway of a `make run` platform: the demo catalog
(matters and the 开办企业一件事 bundle, announced by catalog over NATS), the demo officers, and
citizens and a company that register themselves."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from kit.signing import signed_headers
from services.express.domain.s10 import is_valid as is_s10
from tests.e2e.test_journeys import _valid, login, register

# People of their own (the platform is shared with test_journeys.py, and SMS codes are rate-limited).
APPLICANT = "371402198501010019"  # 孙七, a citizen of Dezhou
FOUNDER = "371402198602020021"  # 周八, the founder's legal representative
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 512
PDF = b"%PDF-1.7\n" + b"\x00" * 512
SOLE_TRADER = "SCJGJ-XK-0001"  # 个体工商户设立登记
OFFICER_PASSWORD = "demo-pass-2026"
EMS_PARTNER_SECRET = "make-run-only-ems-partner-secret"  # platform.toml: the gateway's partner "ems"


@pytest.fixture(scope="module")
def gateway(running_platform):
    with httpx.Client(base_url=running_platform["gateway"] + "/api/v1", timeout=30) as client:
        yield client


def officer(client: httpx.Client, login_name: str) -> dict:
    response = client.post("/identity/sessions",
                           json={"method": "officer", "login": login_name, "password": OFFICER_PASSWORD})  # fmt: skip
    assert response.status_code == 201, response.text
    return {"Authorization": "Bearer " + response.json()["access_token"]}


def citizen(client: httpx.Client, id_number: str, name: str, mobile: str) -> dict:
    """Logged in at real-name level 2 (registered if new)."""
    if client.post("/identity/sessions", json={"method": "password", "login": id_number,
                                               "password": "secret-2026"}).status_code != 201:  # fmt: skip
        register(client, id_number, name, mobile)
    client.post("/identity/me/verification", json={"method": "registry"}, headers=login(client, id_number))
    return login(client, id_number)


def issued(
    client: httpx.Client, department_officer: str, licence_type: str, holder: str, name: str, data: dict | None = None
) -> str:
    """A licence a department issued directly (licence service): its identifier, for reuse."""
    response = client.post("/licence/licences", headers=officer(client, department_officer),
                           json={"licence_type": licence_type, "holder": holder, "holder_name": name,
                                 "data": data or {}})  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()["identifier"]


def upload(client: httpx.Client, headers: dict, content: bytes = JPEG, path: str = "/caseflow/materials") -> str:
    response = client.post(path, files={"file": ("m.jpg", content, "application/octet-stream")}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def submit_when_announced(client: httpx.Client, body: dict, headers: dict, seconds: float = 30) -> httpx.Response:
    """Catalog announces its demo matters and bundles over NATS: wait until caseflow has them."""
    deadline = time.monotonic() + seconds
    while True:
        response = client.post("/caseflow/cases", json=body, headers=headers)
        fields = {e.get("field") for e in response.json().get("errors", [])} if response.status_code == 422 else set()
        if not fields & {"matter_code", "bundle_code"} or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def act(client: httpx.Client, case_no: str, headers: dict, action: str, **body) -> dict:
    version = client.get(f"/caseflow/cases/{case_no}", headers=headers).json()["version"]
    response = client.post(f"/caseflow/cases/{case_no}/actions", json={"action": action, **body},
                           headers={**headers, "If-Match": str(version)})  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def test_j1_j2_citizen_applies_officers_handle_it_with_one_correction_and_anyone_checks(gateway):
    zhang = citizen(gateway, APPLICANT, "孙七", "13811110001")
    id_card = issued(gateway, "gaj.officer", "resident_id_card", APPLICANT, "孙七")  # his e-licence, reused
    lease, form = upload(gateway, zhang), upload(gateway, zhang, PDF)
    body = {
        "matter_code": SOLE_TRADER,
        "form": {"applicant_name": "孙七", "mobile": "13811110001", "business_scope": "餐饮服务",
                 "address": "山东省德州市德城区1号"},
        "materials": [
            {"name": "申请人居民身份证", "licence_id": id_card, "licence_version": 1},
            {"name": "经营场所使用证明（房产证明或租赁合同）", "blob_id": lease},
            {"name": "个体工商户登记（备案）申请书", "blob_id": form},
        ],
        "delivery": {"method": "ems", "recipient": "孙七", "phone": "13811110001", "address": "山东省德州市德城区1号",
                     "division_code": "371402"},
    }  # fmt: skip
    created = submit_when_announced(gateway, body, {**zhang, "Idempotency-Key": "j1-zhang-1"})
    assert created.status_code == 201, created.text
    case = created.json()
    case_no, query_code = case["case_no"], case["query_code"]
    retried = gateway.post("/caseflow/cases", json=body, headers={**zhang, "Idempotency-Key": "j1-zhang-1"})
    assert retried.status_code == 200 and retried.json()["case_no"] == case_no  # a phone's retry
    sms = gateway.get("/caseflow/sandbox/notifications", params={"case_no": case_no}).json()
    assert case_no in sms[0]["text"] and query_code in sms[0]["text"]  # number and query code by SMS

    # J2: Li Si's worklist, ONE correction notice listing both problems, the clock pauses.
    li_si = officer(gateway, "scjgj.officer")
    worklist = gateway.get("/caseflow/worklist", headers=li_si).json()
    assert case_no in [item["case_no"] for item in worklist["items"]]
    items = [{"material": "经营场所使用证明（房产证明或租赁合同）", "problem": "照片无法辨认"},
             {"material": "form.business_scope", "problem": "经营范围未填写完整"}]  # fmt: skip
    corrected = act(gateway, case_no, li_si, "request_correction", items=items)
    assert corrected["state"] == "correction_requested" and corrected["due_on"] is None  # paused
    newer = upload(gateway, zhang, path=f"/caseflow/cases/{case_no}/materials")
    resubmitted = gateway.post(
        f"/caseflow/cases/{case_no}/resubmit",
        json={"form": {"business_scope": "餐饮服务；预包装食品销售"},
              "materials": [{"name": "经营场所使用证明（房产证明或租赁合同）", "blob_id": newer}]},
        headers=zhang,
    )  # fmt: skip
    assert resubmitted.status_code == 200 and resubmitted.json()["state"] == "resubmitted", resubmitted.text
    second = gateway.post(f"/caseflow/cases/{case_no}/actions", json={"action": "request_correction", "items": items},
                          headers={**li_si, "If-Match": str(resubmitted.json()["version"])})  # fmt: skip
    assert second.status_code == 409 and second.json()["type"].endswith("second-correction")
    for action in ("accept", "review", "approve"):
        state = act(gateway, case_no, li_si, action)["state"]
    assert state == "approved"
    # The business licence is issued; with it caseflow requests the EMS delivery itself (ADR 0022).
    deadline = time.monotonic() + 30
    while (approved := gateway.get(f"/caseflow/cases/{case_no}", headers=li_si).json())["state"] != "delivering":
        assert time.monotonic() < deadline, approved["timeline"][-3:]
        time.sleep(0.2)
    [deliver] = [line for line in approved["timeline"] if line["action"] == "deliver"]
    assert deliver["actor"] == "system" and approved["licence"] is not None
    # J2's tail: express books the parcel with the (sandbox) carrier, whose signed pushes come in
    # through the gateway — duplicated and out of order — until the signature completes the case.
    deadline = time.monotonic() + 90
    while (completed := gateway.get(f"/caseflow/cases/{case_no}", headers=li_si).json())["state"] != "completed":
        assert time.monotonic() < deadline, completed.get("shipments")
        time.sleep(0.5)
    [shipment] = completed["shipments"]
    waybill = shipment["waybill"]
    assert shipment["status"] == "signed_for" and is_s10(waybill), shipment
    assert completed["timeline"][-1]["actor"] == "system"  # closed by the signature, not an officer
    parcel = gateway.get(f"/express/shipments/{waybill}", headers=zhang)
    assert parcel.status_code == 200 and parcel.json()["status"] == "signed_for", parcel.text
    assert gateway.get(f"/express/shipments/{waybill}", headers=officer(gateway, "swj.officer")).status_code == 404
    texts = [m["text"] for m in gateway.get("/caseflow/sandbox/notifications", params={"case_no": case_no}).json()]
    for said in (f"已交寄EMS，运单号{waybill}", "正在派送中", "已签收"):
        assert sum(said in t for t in texts) == 1, (said, texts)  # each once, whatever the carrier repeated
    assert [e["action"] for e in completed["timeline"]][:3] == ["submit", "request_correction", "resubmit"]
    rated = gateway.post(f"/caseflow/cases/{case_no}/evaluation", json={"score": 5}, headers=zhang)
    assert rated.status_code == 201 and rated.json()["rectification"] is None  # 非常满意
    texts = [m["text"] for m in gateway.get("/caseflow/sandbox/notifications", params={"case_no": case_no}).json()]
    assert any("一次性补齐" in t for t in texts) and any("已办结" in t for t in texts)

    # J7: a neighbour with number and code sees progress, name masked; no one else sees the case.
    progress = gateway.get(f"/caseflow/progress/{case_no}", params={"code": query_code})
    assert progress.status_code == 200 and progress.json()["applicant"] == "孙*"
    assert gateway.get(f"/caseflow/progress/{case_no}", params={"code": "ZZZZZZ"}).status_code == 404
    stranger = citizen(gateway, _valid("37140219870303003"), "吴九", "13811110003")
    assert gateway.get(f"/caseflow/cases/{case_no}", headers=stranger).status_code == 404
    assert gateway.get(f"/caseflow/cases/{case_no}", headers=officer(gateway, "swj.officer")).status_code == 404
    assert gateway.get(f"/express/shipments/{waybill}", headers=stranger).status_code == 404  # nor my address

    # A push the carrier did not sign, or one replayed, is refused at the gateway and stores nothing.
    timeline = gateway.get(f"/express/shipments/{waybill}", headers=zhang).json()["timeline"]
    path = "/api/v1/express/callbacks/ems"
    push = json.dumps({"waybill": waybill, "code": "50", "text": "未妥投", "at": "2027-01-05T10:00:00+08:00",
                       "event_id": "forged-1"}).encode()  # fmt: skip
    stamp = dict(nonce=uuid.uuid4().hex, timestamp=int(time.time()))
    forged = signed_headers("ems", "a-guessed-secret", "POST", path, push, **stamp)
    refused = gateway.post(path.removeprefix("/api/v1"), content=push,
                           headers={**forged, "Content-Type": "application/json"})  # fmt: skip
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    # the carrier repeating its last push, correctly signed: taken as a duplicate; the same request
    # again (same nonce) is a replay and refused
    last = timeline[-1]
    again = json.dumps({"waybill": waybill, "code": last["carrier_code"], "text": last["carrier_text"],
                        "at": last["at"], "event_id": last["event_id"]}).encode()  # fmt: skip
    genuine = signed_headers("ems", EMS_PARTNER_SECRET, "POST", path, again, **stamp)
    first = gateway.post(
        path.removeprefix("/api/v1"), content=again, headers={**genuine, "Content-Type": "application/json"}
    )
    assert first.status_code == 200, first.text
    replay = gateway.post(
        path.removeprefix("/api/v1"), content=again, headers={**genuine, "Content-Type": "application/json"}
    )
    assert replay.status_code == 401 and replay.json().get("reason") == "replay"
    assert gateway.get(f"/express/shipments/{waybill}", headers=zhang).json()["timeline"] == timeline

    # J5: the supervisor sees the department's figures and the anomaly of the second correction.
    supervisor = officer(gateway, "supervisor")
    stats = {s["department"]: s for s in gateway.get("/caseflow/supervision/stats", headers=supervisor).json()}
    assert stats["SCJGJ"]["volume"] >= 1
    anomalies = gateway.get("/caseflow/supervision/warnings", params={"level": "anomaly"}, headers=supervisor).json()
    assert any(w["case_no"] == case_no and w["step"] == "second_correction" for w in anomalies["items"])


def test_j4_one_form_four_departments(gateway):
    # 开办企业一件事 is applied for by the person founding the company: it does not exist yet.
    zhou = citizen(gateway, FOUNDER, "周八", "13811110002")
    id_card = issued(gateway, "gaj.officer", "resident_id_card", FOUNDER, "周八")
    premises = issued(gateway, "bdcdj.officer", "real_estate_certificate", FOUNDER, "周八",
                      {"location": "山东省德州市德城区2号"})  # fmt: skip
    files = {
        name: upload(gateway, zhou, PDF)
        for name in ("公司登记（备案）申请书", "公司章程", "发票领用申请表", "社会保险登记表")
    }
    body = {
        "bundle_code": "BUNDLE-KBQY",
        "form": {"mobile": "13811110002", "enterprise_name": "德州某某科技有限公司",
                 "address": "山东省德州市德城区2号", "legal_representative": "周八", "registered_capital": 100,
                 "invoice_kind": "增值税普通发票", "bank_account": "6222000000000000", "seal_kinds": "公章"},
        "materials": [
            {"name": "申请人居民身份证", "licence_id": id_card, "licence_version": 1},
            {"name": "经营场所使用证明（房产证明或租赁合同）", "licence_id": premises, "licence_version": 1},
            {"name": "法定代表人居民身份证", "licence_id": id_card, "licence_version": 1},
            *({"name": name, "blob_id": blob} for name, blob in files.items()),
        ],
        "delivery": {"method": "window"},
    }  # fmt: skip
    created = submit_when_announced(gateway, body, {**zhou, "Idempotency-Key": "j4-zhou-1"})
    assert created.status_code == 201, created.text
    case_no = created.json()["case_no"]
    assert created.json()["applicant"]["name"] == "周八"  # the registry-confirmed name, not a body's
    lead = officer(gateway, "scjgj.officer")
    accepted = act(gateway, case_no, lead, "accept")
    branches = {b["department"]: b for b in accepted["branches"]}
    assert set(branches) == {"GAJ", "SWJ", "RSJ"} and all(b["due_on"] for b in branches.values())
    assert "joint handling" in accepted["deadlines"]["decision"]["rule"]
    early = gateway.post(f"/caseflow/cases/{case_no}/actions", json={"action": "approve"},
                         headers={**lead, "If-Match": str(accepted["version"])})  # fmt: skip
    assert early.status_code == 409 and sorted(early.json()["pending"]) == ["GAJ", "RSJ", "SWJ"]
    for department in ("GAJ", "SWJ", "RSJ"):
        decided = gateway.post(f"/caseflow/cases/{case_no}/branches/{department}/actions", json={"action": "approve"},
                               headers={**officer(gateway, f"{department.lower()}.officer"), "If-Match": "1"})  # fmt: skip
        assert decided.status_code == 200, decided.text
    assert act(gateway, case_no, lead, "approve")["state"] == "approved"
