"""J10 through the gateway of a `make run` platform: an enterprise renews its 食品经营许可证
(SCJGJ-XK-0007) from a form the platform fills in, pays the 10-yuan fee at the payment sandbox's
cashier, whose signed notification comes back through the gateway; the receipt is issued, the
waiting 秒批 verdict approves the case and licence puts the renewed licence in the enterprise's
wallet. A repeated notice and a late payment change nothing, a forged one is refused; a denied
case's fee is refunded."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit.signing import new_nonce
from services.payment.domain import signature
from tests.e2e.test_case_journeys import act, citizen, gateway, officer, submit_when_announced, upload
from tests.e2e.test_journeys import _valid
from tests.e2e.test_licence_journeys import bearer, wait_for

__all__ = ["gateway"]  # the module-scoped client fixture

RENEWAL = "SCJGJ-XK-0007"  # 食品经营许可证延续: 10 yuan before the decision, rule renewal-unchanged
ID_CARD_REISSUE = "GAJ-XK-0003"  # 居民身份证挂失补领: 40 yuan before acceptance, refunded on any end
COMPANY = "91340600MA2PBNE723"  # 淮北某某建材有限公司 in the sandbox enterprise register
COMPANY_NAME = "淮北某某建材有限公司"
REPRESENTATIVE = "110105199003070017"  # its legal representative
NOTIFY_PATH = "/payment/notifications/sandbox"
# platform.toml: the payment sandbox's development signing key (payment holds its public half)
SANDBOX_KEY = "MC4CAQAwBQYDK2VwBCIEIDeflVKe0c85fPDEkRuCNr+7y3TGNP8UXuXNOGH55c+B"


def notify(client: httpx.Client, body: dict, key=None) -> httpx.Response:
    """A notification as the sandbox sends it (compact JSON, fresh nonce), signed with ``key``."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = signature.signed_headers(key or signature.load_private_key(SANDBOX_KEY), "sandbox-1", raw,
                                       timestamp=int(time.time()), nonce=new_nonce())  # fmt: skip
    return client.post(NOTIFY_PATH, content=raw, headers={**headers, "Content-Type": "application/json"})


def the_order(client: httpx.Client, headers: dict, case_no: str) -> dict:
    def listed():
        return client.get("/payment/orders", params={"case_no": case_no}, headers=headers).json()["items"]

    [order] = wait_for(listed)
    return client.get(f"/payment/orders/{order['id']}", headers=headers).json()


def start_paying(client: httpx.Client, headers: dict, order_id: str, key: str) -> dict:
    response = client.post(f"/payment/orders/{order_id}/payments", headers={**headers, "Idempotency-Key": key})
    assert response.status_code == 201, response.text
    return response.json()


def test_j10_renewal_paid_at_the_sandbox_is_approved_by_the_rule_and_notices_apply_once(gateway):
    rep = citizen(gateway, REPRESENTATIVE, "冯十一", "13855550031")
    bound = gateway.post("/identity/enterprises", json={"uscc": COMPANY}, headers=rep)
    assert bound.status_code in (201, 409), bound.text
    company = bearer(gateway.post("/identity/sessions/act-as", json={"enterprise": COMPANY}, headers=rep))

    # The regulator issued the food licence 5 years ago: it expires within 90 days.
    start = date.today() + timedelta(days=40)
    start = start.replace(year=start.year - 5)
    held = gateway.post("/licence/licences", headers=officer(gateway, "scjgj.officer"), json={
        "licence_type": "food_business_licence", "holder": COMPANY, "holder_name": COMPANY_NAME,
        "valid_from": start.isoformat(),
        "data": {"enterprise_name": COMPANY_NAME, "address": "淮北市杜集区建材路8号", "business_items": "预包装食品销售"}})  # fmt: skip
    assert held.status_code == 201, held.text
    held = held.json()
    days_left = (date.fromisoformat(held["valid_until"]) - date.today()).days
    assert 0 < days_left <= 90, held["valid_until"]

    # 零填报: the form comes from the token and the held licence; the applicant adds two answers.
    def prefilled():
        answer = gateway.get(f"/caseflow/matters/{RENEWAL}/prefill", headers=company)
        return answer.status_code == 200 and answer.json()

    filled = wait_for(prefilled)
    assert filled, "no prefill"
    form = filled["form"]
    assert form["uscc"] == COMPANY and form["enterprise_name"] == COMPANY_NAME, form
    assert form["licence_number"] == held["number"] and form["address"] == "淮北市杜集区建材路8号", form
    assert form["business_items"] == "预包装食品销售" and not filled["licences_unavailable"]
    body = {"matter_code": RENEWAL, "form": {**form, "business_area": 120, "no_change": "是"},
            "materials": [{"name": "食品经营许可证", "licence_id": held["identifier"], "licence_version": 1}],
            "delivery": {"method": "window"}}  # fmt: skip
    created = submit_when_announced(gateway, body, {**company, "Idempotency-Key": "j10-renewal-1"})
    assert created.status_code == 201, created.text
    case = created.json()
    case_no = case["case_no"]
    assert case["state"] == "submitted" and case["fees"]["total_fen"] == 1000 and case["fees"]["status"] == "due"
    [check] = [e for e in case["timeline"] if e["action"] == "instant_check"]
    assert check["detail"]["instant"] == "pending" and check["detail"]["rule"] == "renewal-unchanged", check
    assert check["detail"]["waiting_for"] == "payment"

    # The order (amounts from caseflow alone), two cashier attempts (the payer opened it twice).
    order = the_order(gateway, company, case_no)
    assert order["amount_fen"] == 1000 and order["status"] == "open", order
    assert [(i["item"], i["amount_fen"]) for i in order["items"]] == [("许可证书工本费", 1000)]
    first = start_paying(gateway, company, order["id"], "j10-pay-1")
    retried = gateway.post(f"/payment/orders/{order['id']}/payments",
                           headers={**company, "Idempotency-Key": "j10-pay-1"})  # fmt: skip
    assert retried.status_code == 200 and retried.json()["id"] == first["id"]
    second = start_paying(gateway, company, order["id"], "j10-pay-2")
    assert second["id"] != first["id"] and first["amount_fen"] == 1000

    paid_at_cashier = httpx.post(first["pay_url"], json={"result": "success"}, timeout=15)
    assert paid_at_cashier.status_code == 200 and paid_at_cashier.json()["state"] == "SUCCESS", paid_at_cashier.text

    def paid():
        shown = gateway.get(f"/payment/orders/{order['id']}", headers=company).json()
        return shown["status"] == "paid" and shown

    paid_order = wait_for(paid)
    assert paid_order, "the order was not paid"
    receipt_no = paid_order["receipt_no"]
    assert receipt_no and receipt_no.startswith("370101") and len(receipt_no) == 18, receipt_no
    receipt = gateway.get(f"/payment/receipts/{receipt_no}", headers=company)
    assert receipt.status_code == 200 and receipt.json()["case_no"] == case_no, receipt.text
    assert receipt.json()["amount_fen"] == 1000 and receipt.json()["payer"] != COMPANY

    # Caseflow: fees paid, and the waiting verdict approved the case, naming the rule.
    def approved():
        shown = gateway.get(f"/caseflow/cases/{case_no}", headers=company).json()
        return shown["state"] == "approved" and shown

    decided = wait_for(approved)
    assert decided, gateway.get(f"/caseflow/cases/{case_no}", headers=company).json()["timeline"][-3:]
    assert decided["fees"]["status"] == "paid" and decided["fees"]["receipt_no"] == receipt_no
    assert decided["fees"]["paid_fen"] == 1000
    [line] = [e for e in decided["timeline"] if e["action"] == "instant_approve"]
    assert line["actor"] == "system" and line["detail"]["rule"] == "renewal-unchanged" and line["detail"]["paid"]

    # Licence issues the renewed licence into the enterprise's wallet.
    def renewed():
        return gateway.get(f"/caseflow/cases/{case_no}", headers=company).json().get("licence")

    licence = wait_for(renewed)
    assert licence and licence["licence_type"] == "food_business_licence", licence
    wallet = gateway.get("/licence/licences", headers=company).json()["items"]
    [new] = [item for item in wallet if item["identifier"] == licence["identifier"]]
    assert new["case_no"] == case_no and new["status"] == "valid" and new["holder_name"] == COMPANY_NAME

    # A duplicated notice (the sandbox's notice id and transaction again, freshly signed) changes nothing.
    def all_sent():  # the sandbox may send a copy of its own a little later: wait for every send
        shown = httpx.get(first["pay_url"].split("/cashier/")[0] + f"/transactions/{first['id']}", timeout=15).json()
        return all(s["delivered_at"] for n in shown["notices"] for s in n["sends"]) and shown

    sandbox = wait_for(all_sent)
    assert sandbox, "the sandbox did not deliver its notices"
    [notice] = sandbox["notices"]
    assert notice["event_type"] == "TRANSACTION.SUCCESS"
    [attempt] = [p for p in paid_order["payments"] if p["id"] == first["id"]]
    assert attempt["transaction_id"] == sandbox["transaction_id"] and attempt["outcome"] == "paid", attempt
    notice["body"] = {"id": notice["id"], "create_time": attempt["paid_at"], "event_type": "TRANSACTION.SUCCESS",
                      "summary": "支付成功", "resource": {
                          "out_trade_no": first["id"], "transaction_id": sandbox["transaction_id"],
                          "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "success_time": attempt["paid_at"],
                          "amount": {"total": 1000, "currency": "CNY"}}}  # fmt: skip
    again = notify(gateway, notice["body"])
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text

    # A late payment (the second cashier, paid too): recorded, refunded, the order and case untouched.
    late = httpx.post(second["pay_url"], json={"result": "success"}, timeout=15)
    assert late.status_code == 200, late.text

    def late_recorded():
        shown = gateway.get(f"/payment/orders/{order['id']}", headers=company).json()
        [attempt] = [p for p in shown["payments"] if p["id"] == second["id"]]
        return attempt["outcome"] == "late" and shown

    after_late = wait_for(late_recorded)
    assert after_late, "the late payment was not recorded"
    assert after_late["status"] == "paid" and after_late["receipt_no"] == receipt_no

    def late_money_returned():  # the payer's second 10 yuan goes back; the order stays paid
        shown = gateway.get(f"/payment/orders/{order['id']}", headers=company).json()
        back = [r for r in shown["refunds"] or [] if r["payment_id"] == second["id"] and r["status"] == "succeeded"]
        return back and shown

    returned = wait_for(late_money_returned, 60)
    assert returned, gateway.get(f"/payment/orders/{order['id']}", headers=company).json()["refunds"]
    assert returned["status"] == "paid" and [r["amount_fen"] for r in returned["refunds"]] == [1000]

    # A forged notice: someone else's key under the sandbox's serial → 401, nothing changes.
    forged_body = {**notice["body"], "id": "forged-" + notice["body"]["id"][:20]}
    forged = notify(gateway, forged_body, key=Ed25519PrivateKey.generate())
    assert forged.status_code == 401 and forged.json()["reason"] == "bad-signature", forged.text

    final = gateway.get(f"/caseflow/cases/{case_no}", headers=company).json()
    assert final["state"] == "approved" and final["fees"]["receipt_no"] == receipt_no
    assert [e["action"] for e in final["timeline"]].count("fees_paid") == 1  # one OrderPaid applied
    assert [e["action"] for e in final["timeline"]].count("instant_approve") == 1
    shown = gateway.get(f"/payment/orders/{order['id']}", headers=company).json()
    assert shown["status"] == "paid" and shown["receipt_no"] == receipt_no and shown["paid_at"] == paid_order["paid_at"]


def test_a_denied_case_has_its_fee_refunded(gateway):
    applicant_id = _valid("37140219820202007")
    person = citizen(gateway, applicant_id, "褚十二", "13855550041")
    body = {"matter_code": ID_CARD_REISSUE,
            "form": {"applicant_name": "褚十二", "applicant_id": applicant_id, "mobile": "13855550041"},
            "materials": [{"name": "居民户口簿", "blob_id": upload(gateway, person)}], "delivery": {"method": "window"}}  # fmt: skip
    created = submit_when_announced(gateway, body, {**person, "Idempotency-Key": "refund-1"})
    assert created.status_code == 201, created.text
    case_no = created.json()["case_no"]
    gaj = officer(gateway, "gaj.officer")
    version = created.json()["version"]
    early = gateway.post(f"/caseflow/cases/{case_no}/actions", json={"action": "accept"},
                         headers={**gaj, "If-Match": str(version)})  # fmt: skip
    assert early.status_code == 409 and early.json()["type"].endswith("/fees-unpaid"), early.text

    order = the_order(gateway, person, case_no)
    assert order["amount_fen"] == 4000
    attempt = start_paying(gateway, person, order["id"], "refund-pay-1")
    assert httpx.post(attempt["pay_url"], json={"result": "success"}, timeout=15).status_code == 200

    def fees_paid():
        shown = gateway.get(f"/caseflow/cases/{case_no}", headers=person).json()
        return shown["fees"]["status"] == "paid" and shown

    assert wait_for(fees_paid), "caseflow did not learn of the payment"
    act(gateway, case_no, gaj, "accept")
    assert act(gateway, case_no, gaj, "deny", reason="经核查户籍信息不符")["state"] == "denied"

    def refunded():
        shown = gateway.get(f"/payment/orders/{order['id']}", headers=person).json()
        return shown["status"] == "refunded" and shown

    done = wait_for(refunded, 60)
    assert done, gateway.get(f"/payment/orders/{order['id']}", headers=person).json()
    assert [r["amount_fen"] for r in done["refunds"]] == [4000] and done["refunds"][0]["status"] == "succeeded"
    # Wait for the fees row AND the timeline line: on SQLite (make run) the detail's SELECTs share no
    # snapshot, so a read racing the refund's commit may see the row refunded and the line not yet.
    case = wait_for(lambda: (c := gateway.get(f"/caseflow/cases/{case_no}", headers=person).json())["fees"]["status"]
                    == "refunded" and "fees_refunded" in [e["action"] for e in c["timeline"]] and c)  # fmt: skip
    assert case and case["fees"]["refunded_fen"] == 4000
    assert [e["action"] for e in case["timeline"]].count("fees_refunded") == 1
