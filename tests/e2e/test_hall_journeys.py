"""J9 (one visit at the hall) and the hall's other promises, through the gateway of a `make run`
platform: a daughter books her father a slot, he checks in with the SMS code, the comprehensive
window calls him, the counter officer submits his case with a counter token and later hands the
result out (统一窗口出件); 50 people racing for a slot of 5; a kiosk token without its device's
signature; 秒批 within the submit request; an assessed fee above the guide in supervision.

Halls keep real time: a visit is checked in from an hour before its slot, and only on working
days (the platform calendar). When the demo hall HALL-371402 has no slot within the hour (the
evening, a lunch break), the platform admin opens a hall of the test's own around the clock."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.test_case_journeys import (
    JPEG,
    OFFICER_PASSWORD,
    PDF,
    act,
    citizen,
    gateway,
    officer,
    submit_when_announced,
    upload,
)
from tests.e2e.test_hall_identity import kiosk_request
from tests.e2e.test_journeys import PASSWORD, _valid
from tests.e2e.test_licence_journeys import wait_for

__all__ = ["gateway"]  # the module-scoped client fixture

CHINA = ZoneInfo("Asia/Shanghai")
DEMO_HALL = "HALL-371402"
RETIREMENT = "RSJ-GF-0005"  # 基本养老保险待遇申领（退休）: originals (职工档案), window delivery, counter allowed
ELDERLY_ALLOWANCE = "MZJ-GF-0002"  # 高龄津贴申领: 秒批 for age ≥ 80 and a 德州 ID number


def bearer(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return {"Authorization": "Bearer " + response.json()["access_token"]}


def slots(client: httpx.Client, hall: str, day: date) -> dict:
    answer = client.get(f"/hall/halls/{hall}/slots", params={"date": day.isoformat()})
    assert answer.status_code == 200, answer.text
    return answer.json()


def slot_within_the_hour(client: httpx.Client, hall: str) -> str | None:
    """A slot of today's that starts in 2–60 minutes with a free place (check-in opens an hour before)."""
    now = datetime.now(CHINA)
    day = slots(client, hall, now.date())
    for slot in day["slots"] if day["workday"] else []:
        starts = datetime.fromisoformat(slot["starts_at"])
        if timedelta(minutes=2) < starts - now <= timedelta(minutes=60) and slot["free"] > 0:
            return slot["starts_at"]
    return None


def put_hall(client: httpx.Client, admin: dict, code: str, *, capacity: int, hours: list[str], minutes: int) -> None:
    made = client.put(f"/hall/halls/{code}", headers=admin,
                      json={"name": f"测试大厅{code[-4:]}", "division_code": "371402", "address": "山东省德州市德城区测试路1号",
                            "queue_prefix": "A", "slot_minutes": minutes, "slot_capacity": capacity,
                            "opening_hours": hours})  # fmt: skip
    assert made.status_code in (200, 201), made.text
    window = client.put(f"/hall/halls/{code}/windows/A1", headers=admin,
                        json={"name": "综合受理一号窗口", "comprehensive": True})  # fmt: skip
    assert window.status_code in (200, 201), window.text


def test_j9_a_booked_visit_one_window_from_the_slot_to_the_hand_out(gateway):
    admin, counter = officer(gateway, "admin"), officer(gateway, "counter")
    hall, starts_at = DEMO_HALL, slot_within_the_hour(gateway, DEMO_HALL)
    if starts_at is None:  # outside the demo hall's hours: a hall of the test's own, open around the clock
        hall = "HALL-E2E-" + uuid.uuid4().hex[:6].upper()
        put_hall(gateway, admin, hall, capacity=6, hours=["00:00-24:00"], minutes=15)
        starts_at = slot_within_the_hour(gateway, hall)
    if starts_at is None:
        pytest.skip("no working-day slot within the hour (a day off, or just before midnight): nobody can check in")

    # 刘小红 books a slot for her father 刘福贵 (81) for his retirement pension claim.
    daughter_mobile = "13855550001"
    daughter = citizen(gateway, _valid("37140219750303004"), "刘小红", daughter_mobile)
    father = _valid("37140219440303005")
    booking = gateway.post("/hall/bookings", headers={**daughter, "Idempotency-Key": "j9-liu-1"},
                           json={"hall_code": hall, "matter_code": RETIREMENT, "starts_at": starts_at,
                                 "mobile": daughter_mobile, "visitor_id_number": father})  # fmt: skip
    assert booking.status_code == 201, booking.text
    assert booking.json()["status"] == "booked" and booking.json()["visitor"] != father  # masked

    # The SMS with the time and the check-in code, sent after commit.
    local = datetime.fromisoformat(starts_at).astimezone(CHINA)

    def the_sms():
        texts = gateway.get("/hall/sandbox/sms", params={"mobile": daughter_mobile}).json()
        return [t["text"] for t in texts if RETIREMENT in t["text"]]

    [text] = wait_for(the_sms)
    assert f"{local:%Y年%m月%d日 %H:%M}" in text, text
    code = re.search(r"签到码(\d{6})", text).group(1)

    # He checks in at the hall's machine: a queue number; pressing again gives the same ticket.
    ticket = gateway.post(f"/hall/halls/{hall}/check-ins", json={"code": code})
    assert ticket.status_code == 201, ticket.text
    ticket = ticket.json()
    assert re.fullmatch(r"A\d{3}", ticket["number"]) and ticket["kind"] == "booking", ticket
    assert ticket["status"] == "waiting" and ticket["matter_code"] == RETIREMENT
    again = gateway.post(f"/hall/halls/{hall}/check-ins", json={"code": code})
    assert again.json()["id"] == ticket["id"], again.text
    mine = gateway.get(f"/hall/bookings/{booking.json()['id']}", headers=daughter).json()
    assert mine["status"] == "checked_in" and mine["ticket"] == ticket["number"]

    # The comprehensive window A1 calls the next visitor: him.
    called = gateway.post(f"/hall/halls/{hall}/calls", json={"window": "A1"}, headers=counter)
    assert called.status_code == 200, called.text
    assert called.json()["id"] == ticket["id"] and called.json()["status"] == "called"
    assert called.json()["window"] == "A1"

    # The officer reads his card: a counter token FOR HIM (level 4, the registry-confirmed name).
    token = gateway.post("/identity/counter-sessions", json={"id_number": father, "name": "刘福贵"}, headers=counter)
    assert token.status_code == 201 and token.json()["level"] == 4, token.text
    liu = bearer(token)
    scans = {name: upload(gateway, liu, content) for name, content in (("申请人居民身份证", JPEG), ("职工档案", PDF))}
    body = {
        "matter_code": RETIREMENT,
        "form": {"applicant_name": "刘福贵", "applicant_id": father, "mobile": daughter_mobile},
        "materials": [{"name": name, "blob_id": blob} for name, blob in scans.items()],
        "delivery": {"method": "window"},
    }
    created = submit_when_announced(gateway, body, {**liu, "Idempotency-Key": "j9-liu-case"})
    assert created.status_code == 201, created.text
    case = created.json()
    case_no = case["case_no"]
    assert case["applicant"]["name"] == "刘福贵" and case["applicant"]["subject"] == father, case["applicant"]
    assert case["applicant"]["kind"] == "person" and case["channel"] == "counter", case
    assert case["helper"] == {"subject": "officer:counter", "name": "一窗受理窗口"}, case["helper"]
    [submitted] = [line for line in case["timeline"] if line["action"] == "submit"]
    assert submitted["detail"]["channel"] == "counter" and submitted["detail"]["helped_by"] == "officer:counter"
    assert submitted["detail"]["helper_name"] == "一窗受理窗口"
    # the father, not the daughter nor the officer, is the applicant: his case, not hers
    assert gateway.get(f"/caseflow/cases/{case_no}", headers=daughter).status_code == 404
    helped = gateway.get("/caseflow/counter/cases", headers=counter)
    assert helped.status_code == 200 and case_no in [c["case_no"] for c in helped.json()["items"]], helped.text

    served = gateway.post(f"/hall/tickets/{ticket['id']}/served", json={"case_no": case_no}, headers=counter)
    assert served.status_code == 200 and served.json()["status"] == "served", served.text
    assert served.json()["case_no"] == case_no

    # Nothing to hand out before the department decides.
    early = gateway.get(f"/caseflow/cases/{case_no}/hand-out", headers=counter)
    assert early.status_code == 200 and early.json()["waiting_for"], early.text
    refused = gateway.post(f"/caseflow/cases/{case_no}/hand-out", json={"receiver": "applicant"},
                           headers={**counter, "If-Match": str(early.json()["version"])})  # fmt: skip
    assert refused.status_code == 409 and refused.json()["rule"] == "approved", refused.text

    # The social security bureau decides; the result waits at the window.
    rsj = officer(gateway, "rsj.officer")
    for action in ("accept", "review", "approve"):
        state = act(gateway, case_no, rsj, action)["state"]
    assert state == "approved"
    sheet = gateway.get(f"/caseflow/cases/{case_no}/hand-out", headers=counter)
    assert sheet.status_code == 200 and sheet.json()["waiting_for"] == [], sheet.text
    assert sheet.json()["applicant"] != "刘福贵"  # masked on the window's sheet
    handed = gateway.post(f"/caseflow/cases/{case_no}/hand-out", json={"receiver": "applicant"},
                          headers={**counter, "If-Match": str(sheet.json()["version"])})  # fmt: skip
    assert handed.status_code == 200, handed.text
    done = gateway.get(f"/caseflow/cases/{case_no}", headers=rsj).json()
    assert done["state"] == "completed"
    [out] = [line for line in done["timeline"] if line["action"] == "hand_out"]
    assert out["detail"]["label"] == "统一窗口出件" and out["detail"]["window"] is not None, out
    assert done["helper"]["subject"] == "officer:counter"
    assert gateway.get(f"/caseflow/cases/{case_no}", headers=liu).json()["state"] == "completed"


def next_working_day_slot(client: httpx.Client, hall: str) -> str:
    today = datetime.now(CHINA).date()
    for ahead in range(1, 14):
        day = slots(client, hall, today + timedelta(days=ahead))
        if day["workday"] and day["slots"]:
            return day["slots"][0]["starts_at"]
    raise AssertionError("no working day within 13 days")


def register_many(client: httpx.Client, count: int) -> list[dict]:
    """``count`` citizens registered through identity's SMS codes (sandbox), logged in."""
    people = []
    for i in range(count):
        id_number, mobile = _valid(f"3714021990{i // 28 + 1:02d}{i % 28 + 1:02d}101"), f"138666{i:05d}"
        assert client.post("/identity/sms-codes", json={"mobile": mobile, "purpose": "register"}).status_code == 202
        text = client.get("/identity/sandbox/sms", params={"mobile": mobile}).json()[0]["text"]
        registered = client.post("/identity/register", json={
            "id_number": id_number, "name": f"预约人{i}", "mobile": mobile, "password": PASSWORD,
            "sms_code": re.search(r"\d{6}", text).group(0)})  # fmt: skip
        assert registered.status_code == 201, registered.text
        people.append(bearer(client.post("/identity/sessions",
                                         json={"method": "password", "login": id_number, "password": PASSWORD})))  # fmt: skip
    return people


def test_fifty_people_race_for_a_slot_of_five_and_five_get_it(gateway, running_platform):
    hall = "HALL-E2E-CAP" + uuid.uuid4().hex[:4].upper()
    put_hall(gateway, officer(gateway, "admin"), hall, capacity=5, hours=["09:00-12:00"], minutes=60)
    starts_at = next_working_day_slot(gateway, hall)
    people = register_many(gateway, 50)

    def book(i: int) -> httpx.Response:
        with httpx.Client(base_url=running_platform["gateway"] + "/api/v1", timeout=60) as client:
            return client.post("/hall/bookings", headers=people[i],
                               json={"hall_code": hall, "matter_code": RETIREMENT, "starts_at": starts_at,
                                     "mobile": f"138666{i:05d}"})  # fmt: skip

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(book, range(50)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 5 + [409] * 45, [a.text for a in answers if a.status_code not in (201, 409)]
    assert all(a.json()["type"].endswith("/slot-full") for a in answers if a.status_code == 409)
    [slot] = [s for s in slots(gateway, hall, datetime.fromisoformat(starts_at).date())["slots"]
              if s["starts_at"] == starts_at]  # fmt: skip
    assert slot["capacity"] == 5 and slot["free"] == 0


def test_a_kiosk_token_without_the_kiosk_signature_is_refused(running_platform):
    with httpx.Client(base_url=running_platform["gateway"], timeout=30) as client:  # kiosks sign the whole path
        kiosk_token_needs_the_signature(client)


def kiosk_token_needs_the_signature(gateway: httpx.Client) -> None:
    today = date.today()
    card = {"id_number": _valid("37140219380808001"), "name": "孙大娘",
            "valid_from": (today - timedelta(days=900)).isoformat(), "valid_until": None}  # fmt: skip
    sessions = "/api/v1/identity/kiosk-sessions"
    answer = wait_for(lambda: (r := kiosk_request(gateway, "POST", sessions, card)).status_code != 401 and r)
    token = bearer(answer)["Authorization"].removeprefix("Bearer ")
    path = f"/api/v1/caseflow/matters/{ELDERLY_ALLOWANCE}/prefill"
    signed = wait_for(lambda: (r := kiosk_request(gateway, "GET", path, token=token)).status_code != 422 and r)
    assert signed.status_code == 200 and signed.json()["form"]["applicant_id"] == card["id_number"], signed.text
    unsigned = kiosk_request(gateway, "GET", path, token=token, sign=False)
    assert unsigned.status_code == 401 and unsigned.json()["type"].endswith("/kiosk-signature-required")
    listing = kiosk_request(gateway, "GET", "/api/v1/caseflow/cases", token=token, sign=False)
    assert listing.status_code == 401, listing.text


def allowance(client: httpx.Client, id_number: str, name: str, mobile: str) -> httpx.Response:
    person = citizen(client, id_number, name, mobile)
    filled = wait_for(lambda: (r := client.get(f"/caseflow/matters/{ELDERLY_ALLOWANCE}/prefill", headers=person))
                      .status_code == 200 and r)  # fmt: skip
    assert filled, "no prefill"
    form = filled.json()["form"]
    assert form["applicant_name"] == name and form["applicant_id"] == id_number, form
    scans = [upload(client, person), upload(client, person, PDF)]
    body = {"matter_code": ELDERLY_ALLOWANCE, "form": {**form, "mobile": mobile, "bank_account": "6228480000000001"},
            "materials": [{"name": "申请人居民身份证", "blob_id": scans[0]}, {"name": "居民户口簿", "blob_id": scans[1]}],
            "delivery": {"method": "window"}}  # fmt: skip
    return submit_when_announced(client, body, {**person, "Idempotency-Key": "allowance-" + id_number})


def test_instant_approval_within_the_submit_request_and_a_referral_with_the_failing_conditions(gateway):
    elder = _valid("37142219400105002")  # 81+, 陵城区 (371422)
    approved = allowance(gateway, elder, "王秀英", "13855550011")
    assert approved.status_code == 201, approved.text
    case = approved.json()
    assert case["state"] == "approved", case["state"]
    [line] = [e for e in case["timeline"] if e["action"] == "instant_approve"]
    assert line["actor"] == "system" and line["detail"]["rule"] == "age-80-dezhou" and line["detail"]["automatic"]

    younger = _valid("37140219700105003")  # 50-something, 德城区: the age condition fails
    referred = allowance(gateway, younger, "王建国", "13855550012")
    assert referred.status_code == 201, referred.text
    case_no = referred.json()["case_no"]
    assert referred.json()["state"] == "submitted"
    [check] = [e for e in referred.json()["timeline"] if e["action"] == "instant_check"]
    [rule] = check["detail"]["failed"]
    assert rule["rule"] == "age-80-dezhou" and [f["fact"] for f in rule["failed"]] == ["applicant.age"], rule
    # make run seeds no officer of the civil affairs bureau: the platform admin appoints one
    appointed = gateway.post("/identity/officers", headers=officer(gateway, "admin"),
                             json={"login": "mzj.e2e", "name": "民政局窗口", "department": "MZJ",
                                   "roles": ["acceptor", "reviewer", "decider"], "password": OFFICER_PASSWORD})  # fmt: skip
    assert appointed.status_code in (201, 409), appointed.text
    worklist = gateway.get("/caseflow/worklist", headers=officer(gateway, "mzj.e2e"), params={"page_size": 100})
    assert case_no in [item["case_no"] for item in worklist.json()["items"]], worklist.text

    outsider = _valid("11010519390105004")  # 87, but Beijing: the division condition fails
    elsewhere = allowance(gateway, outsider, "赵德明", "13855550013")
    assert elsewhere.status_code == 201 and elsewhere.json()["state"] == "submitted", elsewhere.text
    [check] = [e for e in elsewhere.json()["timeline"] if e["action"] == "instant_check"]
    assert [f["fact"] for f in check["detail"]["failed"][0]["failed"]] == ["applicant.division"]


def test_an_assessed_fee_above_the_guide_is_an_anomaly_in_supervision(gateway):
    # No seed matter is assessed: the platform admin publishes one (a copy of 居民身份证挂失补领).
    admin = officer(gateway, "admin")
    guide = gateway.get("/catalog/matters/GAJ-XK-0003").json()["guide"]
    code = "GAJ-XK-E" + uuid.uuid4().hex[:4].upper()
    guide |= {"code": code, "name": "居民身份证挂失补领（核定收费演示）",
              "payment": {"due_before": "acceptance", "assessed": True}}  # fmt: skip
    draft = gateway.post("/catalog/matters", json=guide, headers=admin)
    assert draft.status_code == 201, draft.text
    published = gateway.post(f"/catalog/matters/{code}/versions/{draft.json()['version']}/publish", headers=admin)
    assert published.status_code == 200, published.text

    applicant_id = _valid("37140219880808006")
    person = citizen(gateway, applicant_id, "何九", "13855550021")
    body = {"matter_code": code, "form": {"applicant_name": "何九", "applicant_id": applicant_id, "mobile": "13855550021"},
            "materials": [{"name": "居民户口簿", "blob_id": upload(gateway, person)}], "delivery": {"method": "window"}}  # fmt: skip
    created = submit_when_announced(gateway, body, {**person, "Idempotency-Key": "assessed-1"}, seconds=60)
    assert created.status_code == 201, created.text
    case_no = created.json()["case_no"]
    assert created.json()["fees"]["total_fen"] == 4000 and created.json()["fees"]["status"] == "due"

    gaj = officer(gateway, "gaj.officer")
    version = gateway.get(f"/caseflow/cases/{case_no}", headers=gaj).json()["version"]
    assessed = gateway.post(f"/caseflow/cases/{case_no}/fees", headers={**gaj, "If-Match": str(version)},
                            json={"items": [{"item": "居民身份证工本费", "amount_fen": 6000}], "reason": "加急制证"})  # fmt: skip
    assert assessed.status_code == 200, assessed.text
    assert assessed.json()["fees"]["total_fen"] == 6000 and assessed.json()["fees"]["revision"] == 2

    supervisor = officer(gateway, "supervisor")

    def warned():
        page = gateway.get("/caseflow/supervision/warnings", params={"level": "anomaly", "page_size": 100},
                           headers=supervisor).json()  # fmt: skip
        return [w for w in page["items"] if w["case_no"] == case_no]

    [warning] = wait_for(warned)
    assert warning["step"] == "fee_above_guide" and warning["level"] == "anomaly", warning
