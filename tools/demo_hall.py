"""``make demo``'s journeys at the hall and the cashier: J9 (one visit, booked) and J10 (pay online,
decided in a second) of JOURNEYS.md, played through the gateway with tools.demo's helpers.

J9: a daughter books her father a slot at the demo hall HALL-371402 (德城区政务服务中心) for a matter
whose originals are seen at the counter; the hall's SMS (sandbox) carries the time and the check-in
code; he checks in at the hall's machine, the counter officer (login ``counter``) calls him at the
comprehensive window A1, verifies him in person (counter token), scans his papers and submits for
him; the department decides and the result is handed out at the window (统一窗口出件). The hall
only opens 09:00–12:00 and 13:30–17:00 China time on working days, and check-in opens 60 minutes
before the slot: outside those hours the demo books the next free slot, shows that the machine
refuses the check-in for now, and plays the counter part as at his slot. Then a neighbour at the
24-hour kiosk KIOSK-371402-01, which signs every request (ADR 0025), prints her licence.

J10: a shop owner renews her 食品经营许可证 (SCJGJ-XK-0007): the form comes prefilled (零填报), she
pays the guide's fee through the payment sandbox, gets an e-receipt and the case is approved by
its instant rule (秒批) once paid; an 80-year-old's 高龄津贴 (MZJ-GF-0002) is approved within the
submit request.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx

from kit.masking import mask_id_number
from kit.signing import new_nonce, signed_headers
from tools.demo import JPEG, PDF, Demo, Person, StepFailed, masked_mobile, new_mobile

HALL = "HALL-371402"
HALL_ZONE = ZoneInfo("Asia/Shanghai")
WINDOW = "A1"
CHECK_IN_EARLY = timedelta(minutes=60)  # HALL_CHECK_IN_EARLY_MINUTES' default (ADR 0023)
PENSION = "RSJ-GF-0005"  # 基本养老保险待遇申领（退休）: 职工档案 seen in the original
KIOSK = "KIOSK-371402-01"
KIOSK_SECRET_DEFAULT = "make-run-only-kiosk-371402-01-secret"  # platform.toml IDENTITY_DEMO_KIOSK_SECRET
RENEWAL = "SCJGJ-XK-0007"  # 食品经营许可证延续: fee before the decision, instant rule renewal-unchanged
ALLOWANCE = "MZJ-GF-0002"  # 高龄津贴申领: instant for persons aged 80+ with a 德州 ID number
# The shop: a sole proprietorship in identity's sandbox enterprise register whose legal
# representative is the GB 11643 example number (services/identity/adapters/enterprises.py).
SHOP = "92340602MA2PBMEM24"
SHOP_NAME = "淮北市相山区某某小吃店"
SHOP_OWNER = "11010519491231002X"


def _id_number(demo: Demo, region: str, born: date) -> str:
    """A fresh valid ID number of ``region`` born on ``born`` (sequence below 998: the registry knows it)."""
    from stdnum.cn import ric

    first17 = f"{region}{born:%Y%m%d}{demo.rng.randrange(1, 998):03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


def _bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": "Bearer " + token["access_token"]}


def _instant_rule(case: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The rule and facts of the case's automatic approval (its ``instant_approve`` timeline line)."""
    line = next((entry for entry in case.get("timeline", []) if entry.get("action") == "instant_approve"), None)
    detail = (line or {}).get("detail") or {}
    return detail.get("rule"), dict(detail.get("facts") or {})


# -- J9 -------------------------------------------------------------------------------------------


def _next_slot(demo: Demo, now: datetime) -> dict[str, Any]:
    """The first slot of the demo hall that starts after ``now`` and has a free place."""
    day = now.astimezone(HALL_ZONE).date()
    for offset in range(15):
        slots = demo.call("GET", f"/hall/halls/{HALL}/slots", expect=200, what="the hall's slots",
                          params={"date": (day + timedelta(days=offset)).isoformat()})  # fmt: skip
        for slot in slots["slots"]:
            if slot["free"] > 0 and datetime.fromisoformat(slot["starts_at"]) > now:
                return dict(slot)
    raise StepFailed(f"{HALL} has no free slot in the next 14 days")


def j9_one_visit_booked(demo: Demo) -> None:
    """Booking → SMS → check-in → queue → counter submission → decision → 统一窗口出件; the kiosk."""
    hall = demo.call("GET", f"/hall/halls/{HALL}", expect=200, what="the demo hall")
    daughter = demo.citizen("刘晓燕")
    father = Person("刘德厚", _id_number(demo, "371402", date(1964, 3, 8)), new_mobile(demo.rng))
    now = datetime.now(HALL_ZONE)
    slot = _next_slot(demo, now)
    starts = datetime.fromisoformat(slot["starts_at"]).astimezone(HALL_ZONE)
    booking = demo.call("POST", "/hall/bookings", expect=201, what="刘晓燕 books a slot",
                        json={"hall_code": HALL, "matter_code": PENSION, "starts_at": slot["starts_at"],
                              "mobile": father.mobile, "visitor_id_number": father.id_number},
                        headers={**daughter.headers, "Idempotency-Key": f"demo-{demo.run}-booking"})  # fmt: skip
    demo.check(booking["visitor"] == mask_id_number(father.id_number), f"the booking's visitor: {booking['visitor']}")
    demo.say(f"{daughter.shown} books her father {father.shown} the {starts:%m-%d %H:%M} slot at {hall['name']} "
             f"({HALL}) for {PENSION} 基本养老保险待遇申领 (职工档案 seen in the original) → booking {booking['id']}")  # fmt: skip

    def sms() -> str | None:
        texts = demo.call("GET", "/hall/sandbox/sms", expect=200, what="the hall's sandbox SMS",
                          params={"mobile": father.mobile})  # fmt: skip
        return next((m["text"] for m in texts if re.search(r"\d{6}", m["text"])), None)

    text, waited = demo.wait_for("the booking SMS", sms)
    code = re.search(r"(?<!\d)\d{6}(?!\d)", text)
    demo.check(code and f"{starts:%H:%M}" in text, f"the SMS should carry the time and a 6-digit code: {text}")
    assert code is not None
    demo.say(f"SMS to {masked_mobile(father.mobile)} (hall sandbox, {waited:.1f} s): "
             f"{text.replace(code.group(0), '******')}")  # fmt: skip

    counter = demo.officer("counter")
    ticket: dict[str, Any] | None = None
    check_in = demo.client.post(f"/hall/halls/{HALL}/check-ins", json={"code": code.group(0)})
    if now >= starts - CHECK_IN_EARLY:
        demo.check(check_in.status_code == 201, f"the check-in answered {check_in.status_code}: {check_in.text[:300]}")
        ticket = check_in.json()
        demo.say(f"刘德厚 enters the code at the hall's machine → queue number {ticket['number']}")
    else:
        # The code is kept with its day (ADR 0023): before the slot's day the machine does not know it.
        same_day = starts.date() == now.date()
        wanted, rule = (409, "too_early") if same_day else (404, "unknown")
        demo.check(check_in.status_code == wanted and rule in check_in.text,
                   f"a check-in before the slot should be {wanted} {rule}: {check_in.text[:300]}")  # fmt: skip
        demo.say(f"刘德厚 tries the code at the hall's machine now ({now:%m-%d %H:%M} China time) → {wanted} {rule}: "
                 f"check-in opens at {starts - CHECK_IN_EARLY:%H:%M} on {starts:%m-%d} (the hall is open 09:00–12:00, "
                 f"13:30–17:00); the demo plays the counter part as at his slot, without a queue number")  # fmt: skip
    if ticket is not None:
        skipped = 0
        while True:
            called = demo.call("POST", f"/hall/halls/{HALL}/calls", expect=200, what=f"counter calls at {WINDOW}",
                               json={"window": WINDOW}, headers=counter)  # fmt: skip
            if called["id"] == ticket["id"]:
                break
            # A ticket left waiting today (an earlier run, another visitor): this window moves on.
            demo.call("POST", f"/hall/tickets/{called['id']}/missed", expect=200, what="an earlier ticket",
                      headers=counter)  # fmt: skip
            skipped += 1
            demo.check(skipped < 50, "the counter called 50 other tickets before 刘德厚's")
        earlier = f" (after {skipped} earlier waiting tickets, marked missed)" if skipped else ""
        demo.say(f"the counter officer (login counter) calls next at window {WINDOW} → {called['number']}{earlier}")

    token = demo.call("POST", "/identity/counter-sessions", expect=201, what="the counter verifies 刘德厚",
                      json={"id_number": father.id_number, "name": father.name}, headers=counter)  # fmt: skip
    at_counter = _bearer(token)
    me = demo.call("GET", "/identity/me", expect=200, what="刘德厚's counter session", headers=at_counter)
    demo.check(me["level"] == 4, f"a counter session should be L4: {me}")
    demo.say(f"the officer checks his ID card with the population registry → counter token for {father.shown}, "
             f"L{me['level']}, 30 minutes")  # fmt: skip
    scans = {"申请人居民身份证": demo.upload(at_counter, JPEG), "职工档案": demo.upload(at_counter, PDF)}
    body = {"matter_code": PENSION,
            "form": {"applicant_name": father.name, "applicant_id": father.id_number, "mobile": father.mobile},
            "materials": [{"name": name, "blob_id": blob} for name, blob in scans.items()],
            "delivery": {"method": "window"}}  # fmt: skip
    case = demo.submit(body, at_counter, "the counter submits for 刘德厚")
    case_no = case["case_no"]
    detail = demo.case(case_no, at_counter)
    helper = detail.get("helper") or {}
    demo.check(detail["channel"] == "counter" and helper, f"the case should be a counter case with a helper: {detail}")
    applicant = detail["applicant"]
    demo.check(applicant["subject"] == father.id_number and applicant["name"] == father.name,
               f"刘德厚 should be the applicant, with the registry-confirmed name: {applicant}")  # fmt: skip
    demo.say(f"the originals are seen and scanned, the case submitted → {case_no}, channel counter, applicant "
             f"{applicant['name']} ({mask_id_number(applicant['subject'])}), helped by {helper.get('name')}")  # fmt: skip
    if ticket is not None:
        served = demo.call("POST", f"/hall/tickets/{ticket['id']}/served", expect=200, what="ticket served",
                           json={"case_no": case_no}, headers=counter)  # fmt: skip
        demo.say(f"ticket {served['number']} served with case {case_no}")

    rsj = demo.officer("rsj.officer")
    for action in ("accept", "review", "approve"):
        state = demo.act(case_no, rsj, action)["state"]
    demo.check(state == "approved", f"after the 人社局's decision the case is {state}")
    demo.say(f"人社局 (rsj.officer) accepts, reviews and approves → {state}")
    sheet = demo.call("GET", f"/caseflow/cases/{case_no}/hand-out", expect=200, what="the window's sheet",
                      headers=counter)  # fmt: skip
    demo.check(not sheet["waiting_for"], f"the result should be ready at the window: {sheet['waiting_for']}")
    handed = demo.call("POST", f"/caseflow/cases/{case_no}/hand-out", expect=200, what="统一窗口出件",
                       json={"receiver": "applicant"}, headers={**counter, "If-Match": str(sheet["version"])})  # fmt: skip
    demo.check(handed["state"] == "completed", f"after the hand-out the case is {handed['state']}")
    demo.say(f"刘德厚 comes back; the window hands out the result (统一窗口出件) → {handed['state']}")

    _kiosk(demo)


def _kiosk(demo: Demo) -> None:
    """The neighbour at the 24-hour kiosk: card read → kiosk token → her licences and a PDF."""
    secret = os.environ.get("IDENTITY_DEMO_KIOSK_SECRET") or KIOSK_SECRET_DEFAULT
    neighbour = Person("马秀兰", _id_number(demo, "371402", date(1978, 6, 1)), new_mobile(demo.rng))
    licence = demo.issue("scjgj.officer", "individual_business_licence", neighbour.id_number, neighbour.name,
                         {"trade_name": "德城区秀兰便利店", "address": "山东省德州市德城区新华路6号",
                          "business_scope": "日用百货零售"})  # fmt: skip

    def signed(method: str, path: str, body: bytes = b"", token: dict[str, str] | None = None) -> httpx.Response:
        headers = signed_headers(KIOSK, secret, method, "/api/v1" + path, body, nonce=new_nonce(),
                                 timestamp=int(time.time()))  # fmt: skip
        if body:
            headers["Content-Type"] = "application/json"
        return demo.client.request(method, path, content=body or None, headers={**headers, **(token or {})})

    card = {"id_number": neighbour.id_number, "name": neighbour.name, "valid_from": "2018-06-01",
            "valid_until": "2038-06-01"}  # fmt: skip
    answer = signed("POST", "/identity/kiosk-sessions", json.dumps(card, ensure_ascii=False).encode())
    demo.check(answer.status_code == 201, f"the kiosk's card read answered {answer.status_code}: {answer.text[:300]}")
    kiosk = _bearer(answer.json())
    demo.say(f"at night {neighbour.shown} puts her ID card on the 24-hour kiosk {KIOSK} (every request signed "
             f"with the kiosk's secret) → kiosk token, 10 minutes")  # fmt: skip
    listing = "/licence/licences?" + urlencode({"page_size": 100})
    mine = signed("GET", listing, token=kiosk)
    demo.check(mine.status_code == 200, f"the kiosk's licence list answered {mine.status_code}: {mine.text[:300]}")
    items = mine.json()["items"]
    demo.check(any(i["identifier"] == licence["identifier"] for i in items), f"her licence is not listed: {items}")
    pdf = signed("GET", f"/licence/licences/{licence['identifier']}/pdf", token=kiosk)
    demo.check(pdf.status_code == 200 and pdf.content.startswith(b"%PDF"),
               f"the licence PDF: {pdf.status_code} {pdf.content[:40]!r}")  # fmt: skip
    demo.say(f"the kiosk lists her {len(items)} licence(s) and prints {licence['identifier']} "
             f"(PDF, {len(pdf.content)} bytes, starts with %PDF)")  # fmt: skip
    unsigned = demo.client.get(listing.split("?")[0], params={"page_size": 100}, headers=kiosk)
    demo.check(
        unsigned.status_code == 401, f"the kiosk token without a signature should be 401: {unsigned.status_code}"
    )
    demo.say("the same kiosk token used without the kiosk's signature (a copied token) → 401")


# -- J10 ------------------------------------------------------------------------------------------


def _expiring_food_licence(demo: Demo, company: dict[str, str]) -> dict[str, Any]:
    """A valid 食品经营许可证 with 60 days left (5-year validity), the shop's only valid one."""
    regulator = demo.officer("scjgj.officer")
    for item in demo.wallet(company):  # an earlier run's renewal would make this one not "≤ 90 days left"
        if item["licence_type"] == "food_business_licence" and item["status"] == "valid":
            demo.call("POST", f"/licence/licences/{item['identifier']}/revoke", expect=200,
                      what="an earlier run's food licence", headers=regulator,
                      json={"reason": "演示重放：撤回上次演示的许可证"})  # fmt: skip
    valid_from = date.today() - timedelta(days=5 * 365 + 1) + timedelta(days=60)
    return dict(demo.call("POST", "/licence/licences", expect=201, what="市场监管局 issues the food licence",
                          headers=regulator,
                          json={"licence_type": "food_business_licence", "holder": SHOP, "holder_name": SHOP_NAME,
                                "valid_from": valid_from.isoformat(),
                                "data": {"enterprise_name": SHOP_NAME, "address": "安徽省淮北市相山区人民路18号",
                                         "business_items": "热食类食品制售"}}))  # fmt: skip


def j10_pay_online_instant(demo: Demo) -> None:
    """零填报 → fee → payment sandbox → e-receipt → 秒批 → renewed licence; 高龄津贴 within the request."""
    owner = demo.citizen("孙丽", SHOP_OWNER, new_mobile(demo.rng))
    demo.call("POST", "/identity/enterprises", expect=(201, 409), what="孙丽 binds her shop",
              json={"uscc": SHOP, "name": SHOP_NAME}, headers=owner.headers)  # fmt: skip
    company = demo.act_as(owner, SHOP)
    old = _expiring_food_licence(demo, company)
    demo.say(f"{owner.shown}, acting for {SHOP_NAME} ({SHOP}), holds 食品经营许可证 {old['number']}, valid until "
             f"{old['valid_until']}")  # fmt: skip

    prefill = demo.call("GET", f"/caseflow/matters/{RENEWAL}/prefill", expect=200, what="the prefilled form",
                        headers=company)  # fmt: skip
    form = dict(prefill["form"])
    demo.check(form.get("uscc") == SHOP and form.get("licence_number") == old["number"],
               f"the prefill should carry the shop's code and licence number: {prefill}")  # fmt: skip
    filled = ", ".join(f"{k}={v}" for k, v in form.items() if v not in (None, ""))
    demo.say(f"she opens {RENEWAL} 食品经营许可证延续 → the form comes filled (零填报): {filled}")
    form.update(business_area=120, no_change="是")  # what only she knows
    case = demo.submit({"matter_code": RENEWAL, "form": form, "materials": [
        {"name": "食品经营许可证", "licence_id": old["identifier"], "licence_version": old["version"]}],
        "delivery": {"method": "window"}}, company, "孙丽 submits the renewal")  # fmt: skip
    case_no = case["case_no"]
    demo.say(f"she adds the area (120 m²) and 'conditions unchanged', submits the rest as filled → case {case_no}, "
             f"{case['state']} (the fee is due before the decision)")  # fmt: skip

    def order_of() -> dict | None:
        orders = demo.call("GET", "/payment/orders", expect=200, what="her payment orders", headers=company,
                           params={"case_no": case_no})["items"]  # fmt: skip
        return orders[0] if orders else None

    order, waited = demo.wait_for(f"the payment order of {case_no}", order_of)
    matter = demo.call("GET", f"/catalog/matters/{RENEWAL}", expect=200, what="the renewal's guide")
    guide_fen = sum(int(round(float(fee["amount_yuan"]) * 100)) for fee in matter["guide"]["fees"])
    demo.check(order["amount_fen"] == guide_fen and order["status"] == "open",
               f"the order should be open for the guide's {guide_fen} fen: {order}")  # fmt: skip
    items = "、".join(item.get("item") or item.get("name", "") for item in order["items"])
    demo.say(f"payment order {order['id']}: {items} ¥{order['amount_fen'] / 100:.2f} (the guide's amount; "
             f"opened {waited:.1f} s after submission)")  # fmt: skip

    attempt = demo.call("POST", f"/payment/orders/{order['id']}/payments", expect=201, what="she pays",
                        headers={**company, "Idempotency-Key": f"demo-{demo.run}-{uuid.uuid4().hex[:8]}"})  # fmt: skip
    demo.check(attempt["pay_url"], f"no cashier URL: {attempt}")
    try:
        paid = httpx.post(attempt["pay_url"], json={"result": "success"}, timeout=10)
    except httpx.HTTPError as exc:
        raise StepFailed(f"the payment sandbox's cashier did not answer: {exc}") from None
    demo.check(paid.status_code == 200, f"the cashier answered {paid.status_code}: {paid.text[:300]}")

    def receipt() -> dict | None:
        current = demo.call("GET", f"/payment/orders/{order['id']}", expect=200, what="the order", headers=company)
        return current if current["status"] == "paid" and current.get("receipt_no") else None

    settled, waited = demo.wait_for("the payment notice", receipt)
    slip = demo.call("GET", f"/payment/receipts/{settled['receipt_no']}", expect=200, what="the e-receipt",
                     headers=company)  # fmt: skip
    demo.say(f"she pays ¥{attempt['amount_fen'] / 100:.2f} at the payment sandbox's cashier → the signed notice "
             f"arrives ({waited:.1f} s): order paid, e-receipt {slip['receipt_no']} (check code {slip['check_code']})")  # fmt: skip

    def decided() -> dict | None:
        current = demo.case(case_no, company)
        return current if current["state"] == "approved" or current["state"] in ("completed", "delivering") else None

    approved, waited = demo.wait_for(f"{case_no} to be approved after payment", decided)
    rule, facts = _instant_rule(approved)
    demo.check(rule == "renewal-unchanged", f"the approval should name the rule renewal-unchanged: {approved}")
    read = ", ".join(f"{k}={v}" for k, v in facts.items() if k.startswith(("licence:", "form.")))
    demo.say(f"the payment releases the waiting instant verdict → {approved['state']} by rule {rule} "
             f"({read}; {waited:.1f} s after the receipt), no officer involved")  # fmt: skip

    def renewed() -> dict | None:
        return next((item for item in demo.wallet(company) if item["licence_type"] == "food_business_licence"
                     and item["identifier"] != old["identifier"] and item["status"] == "valid"), None)  # fmt: skip

    licence, waited = demo.wait_for("the renewed food licence", renewed)
    demo.say(f"the renewed 食品经营许可证 {licence['identifier']} is in the shop's wallet, valid until "
             f"{licence.get('valid_until')} (waited {waited:.1f} s)")  # fmt: skip

    _duplicate_notice(demo, attempt, settled, company)
    _allowance(demo)


def _duplicate_notice(demo: Demo, attempt: dict[str, Any], order: dict[str, Any], company: dict[str, str]) -> None:
    """When the sandbox sent the success notice twice (its DUPLICATE_RATE), show that it changed nothing."""
    parts = urlsplit(attempt["pay_url"])
    sandbox = f"{parts.scheme}://{parts.netloc}"
    try:
        record = httpx.get(f"{sandbox}/transactions/{attempt['id']}", timeout=10)
    except httpx.HTTPError:
        return
    if record.status_code != 200:
        return
    notices = [n for n in record.json().get("notices", []) if "SUCCESS" in str(n.get("event_type", ""))]
    sends = notices[0].get("sends", []) if notices else []
    if len(sends) < 2:
        demo.say("(the sandbox sent the payment notice once this time; a duplicate notice would answer "
                 "duplicate: true and change nothing — payment's tests)")  # fmt: skip
        return

    def delivered() -> bool:
        again = httpx.get(f"{sandbox}/transactions/{attempt['id']}", timeout=10).json()
        copies = [n for n in again["notices"] if "SUCCESS" in str(n.get("event_type", ""))][0]["sends"]
        return all(s.get("delivered_at") for s in copies)

    demo.wait_for("the duplicate payment notice", delivered)
    after = demo.call("GET", f"/payment/orders/{order['id']}", expect=200, what="the order", headers=company)
    demo.check(after["status"] == "paid" and after["receipt_no"] == order["receipt_no"],
               f"a duplicate notice changed the order: {after}")  # fmt: skip
    demo.say(
        f"the sandbox sent the success notice twice → the order is paid once, still e-receipt {after['receipt_no']}"
    )


def _allowance(demo: Demo) -> None:
    """高龄津贴: an 82-year-old 德州 resident is approved within the submit request."""
    born = date.today().replace(year=date.today().year - 82) - timedelta(days=40)
    elder = demo.citizen("王桂芝", _id_number(demo, "371402", born))
    matter = demo.call("GET", f"/catalog/matters/{ALLOWANCE}", expect=200, what="the allowance's guide")
    form: dict[str, Any] = {}
    for field in matter["guide"].get("form_fields", []):
        name = field["name"]
        if field.get("kind") == "subject_id":
            form[name] = elder.id_number
        elif name == "mobile":
            form[name] = elder.mobile
        elif "name" in name:
            form[name] = elder.name
        elif field.get("required", True):
            form[name] = "6217000000000000000"[: field.get("max_length", 30)]
    materials = [{"name": m["name"], "blob_id": demo.upload(elder.headers, JPEG)}
                 for m in matter["guide"]["materials"] if m.get("required", True)]  # fmt: skip
    case = demo.submit({"matter_code": ALLOWANCE, "form": form, "materials": materials,
                        "delivery": {"method": "window"}}, elder.headers, "王桂芝 applies")  # fmt: skip
    demo.check(case["state"] == "approved", f"the allowance should be approved within the request: {case['state']}")
    rule, facts = _instant_rule(demo.case(case["case_no"], elder.headers))
    demo.check(rule == "age-80-dezhou", f"the approval should name the rule age-80-dezhou: {rule} {facts}")
    read = ", ".join(f"{k}={v}" for k, v in facts.items() if k.startswith("applicant.") and k != "applicant.name")
    demo.say(f"{elder.shown} applies for {ALLOWANCE} 高龄津贴 → {case['case_no']} {case['state']} within the "
             f"submit request, by rule {rule} ({read})")  # fmt: skip
