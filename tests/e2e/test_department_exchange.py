"""J6 through the gateway of a `make run` platform on real NATS: the real-estate registration
centre's own system (the BDCDJ sandbox, services/exchange/sandbox_department.py) receives its
cases as signed webhooks, decides them with signed pushes, mirrors a case it handles itself, and
puts its 不动产权证书 into the licence library; every push gets a receipt the platform signed.
Forged, replayed, stale and wrong-department pushes are refused and store nothing; a department
system that was down receives every missed delivery in order once it is back; no department ever
receives another's cases."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from functools import partial

import httpx
import jwt
import standardwebhooks

from kit.signing import signed_headers
from tests.e2e.test_case_journeys import PDF, act, citizen, gateway, officer, submit_when_announced, upload
from tests.e2e.test_journeys import _valid, login
from tests.e2e.test_licence_journeys import wait_for as poll_until

__all__ = ["gateway"]  # the module-scoped client fixture

PARTNER = "dept-bdcdj"
PARTNER_SECRET = "make-run-only-bdcdj-partner-secret"  # platform.toml: exchange's seeded partner key
WEBHOOK_SECRET = "whsec_bWFrZS1ydW4tb25seS1iZGNkai13ZWJob29rLWtleSE="  # platform.toml: the demo subscription
FIRST_REGISTRATION = "BDCDJ-QR-0001"  # 不动产首次登记: its result is the 不动产权证书
FOOD_PERMIT = "SCJGJ-XK-0003"


# Events travel over NATS and the centre answers after a step: poll a little longer than J3 does.
wait_for = partial(poll_until, seconds=40)


def push(client: httpx.Client, body: dict, *, code: str = "BDCDJ", secret: str = PARTNER_SECRET,
         timestamp: int | None = None, headers: dict | None = None) -> tuple[httpx.Response, dict]:  # fmt: skip
    """One signed push as the centre's system sends it; the headers, to replay them."""
    raw = json.dumps(body, ensure_ascii=False).encode()
    path = f"/api/v1/departments/{code}/events"
    headers = headers or signed_headers(
        PARTNER,
        secret,
        "POST",
        path,
        raw,
        nonce=uuid.uuid4().hex,
        timestamp=int(time.time()) if timestamp is None else timestamp,
    )
    answer = client.post(f"/departments/{code}/events", content=raw,
                         headers={**headers, "Content-Type": "application/json"})  # fmt: skip
    return answer, headers


def progress(department_case_id: str, applicant: str, step: str) -> dict:
    return {"event_id": f"{department_case_id}-{step}", "type": "case.progress",
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "data": {"department_case_id": department_case_id, "matter_code": "BDCDJ-QR-0002",
                     "applicant": applicant, "applicant_kind": "person", "step": step}}  # fmt: skip


def pushes_stored(client: httpx.Client, admin: dict) -> int:
    answer = client.get("/exchange/pushes", params={"department": "BDCDJ", "page_size": 1}, headers=admin)
    assert answer.status_code == 200, answer.text
    return answer.json()["total"]


def received(sandbox: str) -> list[dict]:
    return httpx.get(f"{sandbox}/sandbox/received", timeout=10).json()["items"]


def applicant_at_level_3(client: httpx.Client, number: str, name: str, mobile: str) -> dict:
    citizen(client, number, name, mobile)
    verified = client.post("/identity/me/verification", json={"method": "face", "liveness_token": "live-e2e"},
                           headers=login(client, number))  # fmt: skip
    assert verified.status_code == 200, verified.text
    return login(client, number)


def submit_first_registration(client: httpx.Client, headers: dict, number: str, name: str, key: str) -> str:
    names = ["申请人居民身份证", "不动产登记申请书", "土地使用权出让合同", "建设工程竣工验收备案表"]
    body = {"matter_code": FIRST_REGISTRATION, "form": {"applicant_name": name, "applicant_id": number, "mobile": "13811110077"},
            "materials": [{"name": n, "blob_id": upload(client, headers, PDF)} for n in names],
            "delivery": {"method": "window"}}  # fmt: skip
    created = submit_when_announced(client, body, {**headers, "Idempotency-Key": key})
    assert created.status_code == 201, created.text
    return created.json()["case_no"]


def test_j6_webhook_decision_mirrored_progress_certificate_and_receipts(gateway, running_platform):
    sandbox = running_platform["urls"]["bdcdj-sandbox"]
    number = _valid("37140219800303001")
    applicant = applicant_at_level_3(gateway, number, "郑十", "13811110077")
    registrar = officer(gateway, "bdcdj.officer")

    # A platform case accepted for BDCDJ reaches the centre's system as a signed webhook …
    case_no = submit_first_registration(gateway, applicant, number, "郑十", f"j6-{uuid.uuid4()}")
    act(gateway, case_no, registrar, "accept")
    [webhook] = wait_for(lambda: [w for w in received(sandbox) if w["type"] == "case.accepted"
                                  and w["data"]["case_no"] == case_no])  # fmt: skip
    assert webhook["data"]["department"] == "BDCDJ" and webhook["data"]["applicant"] == number
    # … which decides it in its own system: the approval moves the platform case as an officer's
    # would, and the platform issues the 不动产权证书 as for any approved case.
    shown = wait_for(lambda: gateway.get(f"/caseflow/cases/{case_no}", headers=applicant).json().get("licence"))
    assert shown and shown["licence_type"] == "real_estate_certificate", shown
    case = gateway.get(f"/caseflow/cases/{case_no}", headers=applicant).json()
    assert case["state"] == "approved"
    assert any(
        line["action"] == "approve" and "BDCDJ" in json.dumps(line, ensure_ascii=False) for line in case["timeline"]
    )

    # A case the centre handles at its own counter is mirrored: the citizen follows it by number.
    own = f"BDC-{uuid.uuid4().hex[:10]}"
    receipts = []
    for step in ("received", "accepted"):
        answer, _ = push(gateway, progress(own, number, step))
        assert answer.status_code == 200, answer.text
        receipts.append(answer.json())
    mine = wait_for(lambda: [c for c in gateway.get("/caseflow/cases", headers=applicant).json()["items"]
                             if c["matter"]["code"] == "BDCDJ-QR-0002" and c["state"] == "accepted"])  # fmt: skip
    assert mine, "the mirrored case is not in the applicant's list"
    mirrored = gateway.get(f"/caseflow/cases/{mine[0]['case_no']}", headers=applicant).json()
    public = gateway.get(f"/caseflow/progress/{mirrored['case_no']}", params={"code": mirrored["query_code"]})
    assert public.status_code == 200, public.text
    assert public.json()["state"] == "accepted" and public.json()["steps"][-1]["to_state"] == "accepted", public.text

    # Its certificate goes into the licence library as BDCDJ's licence, and verifies.
    certificate = {"event_id": f"{own}-certificate", "type": "licence.issued",
                   "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                   "data": {"licence_type": "real_estate_certificate", "number": f"371402-2026-{uuid.uuid4().int % 10**7:07d}",
                            "holder": number, "holder_kind": "person", "holder_name": "郑十", "issued_on": time.strftime("%Y-%m-%d"),
                            "data": {}, "department_case_id": own}}  # fmt: skip
    answer, sent = push(gateway, certificate)
    if answer.status_code != 200:  # the type's printed fields: take them from the licence type
        raise AssertionError(answer.text)
    receipt = answer.json()
    stored = wait_for(lambda: [item for item in gateway.get("/licence/licences", headers=applicant).json()["items"]
                               if item["number"] == certificate["data"]["number"]])  # fmt: skip
    assert stored and stored[0]["issuer"] == "BDCDJ" and stored[0]["source"] == "department", stored
    verified = gateway.post("/licence/licences/verify", json={"identifier": stored[0]["identifier"],
                                                              "number": stored[0]["number"]})  # fmt: skip
    assert verified.status_code == 200 and verified.json()["status"] == "valid", verified.text

    # The receipt verifies with the platform's published key and names what was sent.
    keys = gateway.get("/exchange/.well-known/jwks.json").json()["keys"]
    header = jwt.get_unverified_header(receipt["signature"])
    [key] = [k for k in keys if k["kid"] == header["kid"]]
    claims = jwt.decode(receipt["signature"], jwt.PyJWK(key).key, algorithms=["EdDSA"])
    sent_body = json.dumps(certificate, ensure_ascii=False).encode()
    assert (
        claims["receipt_id"] == receipt["receipt_id"] and claims["body_sha256"] == hashlib.sha256(sent_body).hexdigest()
    )
    tampered = receipt["signature"][:-2] + ("A" if receipt["signature"][-2] != "A" else "B") + receipt["signature"][-1]
    try:
        jwt.decode(tampered, jwt.PyJWK(key).key, algorithms=["EdDSA"])
        raise AssertionError("a changed receipt still verified")
    except jwt.InvalidTokenError:
        pass
    # The same event again: a duplicate with the same receipt; the webhook of its outcome reached the centre.
    again, _ = push(gateway, certificate)
    assert (
        again.status_code == 200
        and again.json()["duplicate"] is True
        and again.json()["receipt_id"] == receipt["receipt_id"]
    )
    settled = wait_for(lambda: [w for w in received(sandbox) if w["type"] == "push.settled"
                                and w["data"]["push_id"] == receipt["receipt_id"]])  # fmt: skip
    assert settled and settled[0]["data"]["outcome"] == "applied", settled

    # Every webhook the centre received verifies with its secret (a real Standard Webhooks validator
    # checked them on arrival: none was refused).
    assert httpx.get(f"{sandbox}/sandbox/received", timeout=10).json()["refused"] == 0
    standardwebhooks.Webhook(WEBHOOK_SECRET)  # the secret is a valid whsec_ key


def test_j6_forged_replayed_stale_and_wrong_department_pushes_store_nothing(gateway):
    admin = officer(gateway, "admin")
    number = _valid("37140219800404002")
    before = pushes_stored(gateway, admin)
    body = progress(f"BDC-{uuid.uuid4().hex[:10]}", number, "received")

    forged, _ = push(gateway, body, secret="a-guessed-secret")
    assert forged.status_code == 401, forged.text
    stale, _ = push(gateway, body, timestamp=int(time.time()) - 400)
    assert stale.status_code == 401 and stale.json()["reason"] == "stale", stale.text
    wrong, _ = push(gateway, body, code="SCJGJ")  # BDCDJ's key pushing as the market regulator
    assert wrong.status_code in (401, 403), wrong.text
    assert pushes_stored(gateway, admin) == before

    first, headers = push(gateway, body)
    assert first.status_code == 200, first.text
    replayed, _ = push(gateway, body, headers=headers)  # the very same request (same nonce)
    assert replayed.status_code == 401 and replayed.json()["reason"] == "replay", replayed.text
    assert pushes_stored(gateway, admin) == before + 1


def test_j6_a_department_system_that_was_down_gets_every_delivery_in_order_and_only_its_own(gateway, running_platform):
    sandbox = running_platform["urls"]["bdcdj-sandbox"]
    registrar = officer(gateway, "bdcdj.officer")

    number = _valid("37140219800505003")
    applicant = applicant_at_level_3(gateway, number, "冯十一", "13811110088")
    assert httpx.post(f"{sandbox}/sandbox/outage", json={"on": True}, timeout=10).json() == {"on": True}
    try:
        cases = [
            submit_first_registration(gateway, applicant, number, "冯十一", f"j6-down-{uuid.uuid4()}") for _ in range(2)
        ]
        for case_no in cases:
            act(gateway, case_no, registrar, "accept")
        # while the centre is down, exchange holds its deliveries (they fail and wait to be retried)
        admin = officer(gateway, "admin")
        held = wait_for(lambda: [d for d in gateway.get("/exchange/deliveries", params={"department": "BDCDJ", "status": "pending"},
                                                        headers=admin).json()["items"] if d.get("attempts", 0) >= 1])  # fmt: skip
        assert held, "no delivery was tried while the centre was down"
    finally:
        httpx.post(f"{sandbox}/sandbox/outage", json={"on": False}, timeout=10)

    def got_all():
        items = received(sandbox)
        return (
            all(any(w["type"] == "case.accepted" and w["data"]["case_no"] == c for w in items) for c in cases) and items
        )

    items = wait_for(got_all, seconds=90)
    assert items, "the missed deliveries did not arrive once the centre was back"
    for case_no in cases:  # in order per case: submitted before accepted, sequence rising
        of_case = [w for w in items if w["data"].get("case_no") == case_no and w["type"].startswith("case.")]
        assert [w["type"] for w in of_case][:2] == ["case.submitted", "case.accepted"], of_case
        sequences = [w["data"]["sequence"] for w in of_case]
        assert sequences == sorted(sequences), sequences
    # The market regulator's cases never reach the registration centre.
    assert all(w["data"].get("department", "BDCDJ") == "BDCDJ" for w in items)
    assert not any(w["data"].get("matter_code") == FOOD_PERMIT for w in items)
