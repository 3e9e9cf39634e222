"""``make demo``: journeys J1–J7, J9 and J10 of JOURNEYS.md, played against the gateway in well under a minute.

    python -m tools.demo [--gateway URL] [--data-dir DIR] [--start-timeout SECONDS]

If a platform answers ``/readyz`` at the gateway (default ``http://127.0.0.1:<gateway port of
platform.toml>``, or ``YIWANG_GATEWAY_URL``), the demo plays against it and starts nothing. Otherwise
it starts one the way ``make run`` does (``python -m tools.run``, on a throwaway data directory
unless ``--data-dir`` is given, with a quick EMS sandbox: one step a second, nothing refused or
returned) and stops it again at the end.

Every step is one line: the journey, who did what, and the platform's answer. Only the gateway is
spoken to (``/api/v1/…``), with fresh people (valid GB 11643 ID numbers, new mobiles) on every run,
so the demo can be played again and again on the same platform. The exit code is 0 only when every
journey did what it should; the first step that did not prints the problem and the demo exits 1.

J6 (a department's own system pushing signed events) is skipped, with a line saying so, while the
platform has no ``exchange`` area. J9 (the hall, its counter and kiosk) and J10 (payment, instant
approval) live in tools/demo_hall.py.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from kit.masking import mask_id_number
from kit.signing import new_nonce, signed_headers
from kit.subject_ids import validate_id_number
from tools.platform import load

REPO = Path(__file__).resolve().parents[1]
OFFICER_PASSWORD = "demo-pass-2026"  # services/identity/cli.py seed-demo
CITIZEN_PASSWORD = "demo-citizen-2026"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 512  # a "photo" of the lease
PDF = b"%PDF-1.7\n" + b"\x00" * 512
SOLE_TRADER = "SCJGJ-XK-0001"  # 个体工商户设立登记
FOOD_PERMIT = "SCJGJ-XK-0003"  # 食品经营许可
BUNDLE = "BUNDLE-KBQY"  # 开办企业一件事
# J3's company and its legal representative, as identity's sandbox enterprise register knows them
# (services/identity/adapters/enterprises.py): only the registered representative can bind it, so
# these two are the same on every run; everyone else is new.
RESTAURANT = "91110000600037341L"
RESTAURANT_NAME = "某某餐饮有限公司"
WANG_WU = "440524188001010014"
# J6: the real-estate registration centre's system, partner dept-bdcdj (ADR 0003 signatures).
BDCDJ_PARTNER = "dept-bdcdj"
BDCDJ_SECRET_DEFAULT = "make-run-only-bdcdj-partner-secret"
BDCDJ_MATTER = "BDCDJ-QR-0002"  # 不动产转移登记（二手房买卖）
# Regions of the sandbox population (德州德城区, 北京朝阳区, 淮北相山区, 深圳南山区).
REGIONS = ("371402", "110105", "340602", "440305")
# Waits for asynchronous steps (NATS events, the EMS sandbox's tracking pushes).
EVENT_TIMEOUT = 30.0
PARCEL_TIMEOUT = 120.0
POLL = 0.25


class StepFailed(Exception):
    """A journey did not do what it should; the message says what happened instead."""


class Skipped(Exception):
    """A journey the platform cannot play yet (J6 without exchange)."""


# -- people ---------------------------------------------------------------------------------------


def new_id_number(rng: random.Random) -> str:
    """A fresh, valid resident ID number (GB 11643 check character) the sandbox registry confirms.

    The sandbox registry refuses sequence codes 998 and 999 (services/identity/adapters/registry.py)."""
    from stdnum.cn import ric

    born = date(1960, 1, 1) + timedelta(days=rng.randrange(40 * 365))
    first17 = f"{rng.choice(REGIONS)}{born:%Y%m%d}{rng.randrange(1, 998):03d}"
    return validate_id_number(first17 + ric.calc_check_digit(first17 + "0"))


def new_mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"


def masked_mobile(mobile: str) -> str:
    return mobile[:3] + "****" + mobile[-4:]


@dataclass
class Person:
    name: str
    id_number: str
    mobile: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        return f"{self.name} ({mask_id_number(self.id_number)})"


# -- talking to the gateway -----------------------------------------------------------------------


class Demo:
    """The client, the run's random people and what one journey hands the next."""

    def __init__(self, client: httpx.Client, *, out: Callable[[str], None] = print) -> None:
        self.client = client
        self.out = out
        self.rng = random.Random()
        self.run = uuid.uuid4().hex[:8]
        self.journey = ""
        self.state: dict[str, Any] = {}

    # output
    def say(self, text: str) -> None:
        self.out(f"{self.journey:<4}{text}")

    # requests
    def call(self, method: str, path: str, *, expect: int | tuple[int, ...], what: str, **kwargs: Any) -> Any:
        """One request through the gateway; the answer's JSON, or StepFailed naming ``what`` and the problem."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StepFailed(f"{what}: {method} /api/v1{path} did not answer ({type(exc).__name__}: {exc})") from None
        wanted = (expect,) if isinstance(expect, int) else expect
        if response.status_code not in wanted:
            raise StepFailed(f"{what}: {method} /api/v1{path} answered {response.status_code}: {response.text[:600]}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.content

    def check(self, condition: object, problem: str) -> None:
        if not condition:
            raise StepFailed(problem)

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float = EVENT_TIMEOUT) -> tuple[Any, float]:
        """Poll ``probe`` until it answers something truthy: (the answer, seconds waited)."""
        started = time.monotonic()
        while True:
            value = probe()
            waited = time.monotonic() - started
            if value:
                return value, waited
            if waited > timeout:
                raise StepFailed(f"waited {timeout:.0f} s for {what}; it did not happen")
            time.sleep(POLL)

    # identity
    def officer(self, login: str) -> dict[str, str]:
        token = self.call("POST", "/identity/sessions", expect=201, what=f"officer {login} logs in",
                          json={"method": "officer", "login": login, "password": OFFICER_PASSWORD})  # fmt: skip
        return {"Authorization": "Bearer " + token["access_token"]}

    def password_login(self, person: Person) -> dict[str, str] | None:
        response = self.client.post("/identity/sessions", json={"method": "password", "login": person.id_number,
                                                                "password": CITIZEN_PASSWORD})  # fmt: skip
        if response.status_code != 201:
            return None
        return {"Authorization": "Bearer " + response.json()["access_token"]}

    def register(self, person: Person) -> None:
        """Registration with an SMS code read from the sandbox SMS mailbox."""
        self.call("POST", "/identity/sms-codes", expect=202, what=f"an SMS code for {person.name}",
                  json={"mobile": person.mobile, "purpose": "register"})  # fmt: skip
        inbox = self.call("GET", "/identity/sandbox/sms", expect=200, what="the sandbox SMS mailbox",
                          params={"mobile": person.mobile})  # fmt: skip
        code = re.search(r"\d{6}", inbox[0]["text"]) if inbox else None
        self.check(code, f"no SMS code reached {masked_mobile(person.mobile)}")
        assert code is not None
        self.call("POST", "/identity/register", expect=201, what=f"{person.name} registers",
                  json={"id_number": person.id_number, "name": person.name, "mobile": person.mobile,
                        "password": CITIZEN_PASSWORD, "sms_code": code.group(0)})  # fmt: skip

    def verify_real_name(self, person: Person) -> int:
        """Real-name L2: the population registry confirms name and number; logs in again at L2."""
        headers = self.password_login(person)
        self.check(headers, f"{person.name} cannot log in after registering")
        answer = self.call("POST", "/identity/me/verification", expect=200, what=f"{person.name}'s real-name check",
                           json={"method": "registry"}, headers=headers)  # fmt: skip
        self.check(answer["level"] >= 2, f"the registry did not confirm {person.name}: {answer}")
        person.headers = self.password_login(person) or {}
        return int(answer["level"])

    def citizen(self, name: str, id_number: str | None = None, mobile: str | None = None) -> Person:
        """A citizen at real-name level 2: a new one each run, or a known one logged in again."""
        person = Person(name, id_number or new_id_number(self.rng), mobile or new_mobile(self.rng))
        if self.password_login(person) is None:
            self.register(person)
        self.verify_real_name(person)
        return person

    def act_as(self, person: Person, enterprise: str) -> dict[str, str]:
        token = self.call("POST", "/identity/sessions/act-as", expect=201, what=f"{person.name} acts for {enterprise}",
                          json={"enterprise": enterprise}, headers=person.headers)  # fmt: skip
        return {"Authorization": "Bearer " + token["access_token"]}

    # caseflow
    def upload(self, headers: dict[str, str], content: bytes, path: str = "/caseflow/materials") -> str:
        answer = self.call("POST", path, expect=201, what="an upload",
                           files={"file": ("m.jpg", content, "application/octet-stream")}, headers=headers)  # fmt: skip
        return str(answer["id"])

    def submit(self, body: dict[str, Any], headers: dict[str, str], what: str) -> dict[str, Any]:
        """Submit with an Idempotency-Key; on a just-started platform caseflow may still be learning
        the catalog's matters over NATS, so a 422 on the matter or bundle code is retried a while."""
        key = f"demo-{self.run}-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + EVENT_TIMEOUT
        while True:
            response = self.client.post("/caseflow/cases", json=body, headers={**headers, "Idempotency-Key": key})
            problem = response.json() if response.status_code == 422 else {}
            fields = {error.get("field") for error in problem.get("errors", [])}
            if not fields & {"matter_code", "bundle_code"} or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if response.status_code != 201:
            raise StepFailed(
                f"{what}: POST /api/v1/caseflow/cases answered {response.status_code}: {response.text[:600]}"
            )
        case = response.json()
        again = self.call("POST", "/caseflow/cases", expect=200, what=f"{what} (the phone's retry)", json=body,
                          headers={**headers, "Idempotency-Key": key})  # fmt: skip
        self.check(again["case_no"] == case["case_no"], "a retried submission created a second case")
        return dict(case)

    def case(self, case_no: str, headers: dict[str, str]) -> dict[str, Any]:
        return dict(self.call("GET", f"/caseflow/cases/{case_no}", expect=200, what=f"case {case_no}", headers=headers))

    def act(self, case_no: str, headers: dict[str, str], action: str, **body: Any) -> dict[str, Any]:
        """An officer's action, with If-Match: the version just read."""
        version = self.case(case_no, headers)["version"]
        return dict(self.call("POST", f"/caseflow/cases/{case_no}/actions", expect=200, what=f"action {action}",
                              json={"action": action, **body}, headers={**headers, "If-Match": str(version)}))  # fmt: skip

    def sms(self, case_no: str) -> list[str]:
        texts = self.call("GET", "/caseflow/sandbox/notifications", expect=200, what="the applicant's SMS",
                          params={"case_no": case_no})  # fmt: skip
        return [message["text"] for message in texts]

    # licence
    def issue(self, officer_login: str, licence_type: str, holder: str, name: str, data: dict | None = None) -> dict:
        return dict(self.call("POST", "/licence/licences", expect=201, what=f"{officer_login} issues {licence_type}",
                              headers=self.officer(officer_login),
                              json={"licence_type": licence_type, "holder": holder, "holder_name": name,
                                    "data": data or {}}))  # fmt: skip

    def wallet(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        return list(self.call("GET", "/licence/licences", expect=200, what="the licence wallet", headers=headers,
                              params={"page_size": 100})["items"])  # fmt: skip


# -- the journeys ---------------------------------------------------------------------------------


def j1_citizen_applies(demo: Demo) -> None:
    """Zhang San registers from WeChat, reaches L2, finds the matter by its initials and applies."""
    zhang = Person("张三", new_id_number(demo.rng), new_mobile(demo.rng))
    demo.register(zhang)
    demo.say(
        f"{zhang.shown} registers with mobile {masked_mobile(zhang.mobile)} and the SMS code from the sandbox mailbox → account created"
    )
    wechat = f"wx-zhangsan{demo.run}"  # the sandbox: "wx-<user>-<n>", one openid per user
    first = demo.client.post("/identity/sessions", json={"method": "wechat", "code": wechat + "-1"})
    demo.check(
        first.status_code == 409, f"a never-seen WeChat login should be asked to bind once, got {first.status_code}"
    )
    bound = demo.call("POST", "/identity/sessions", expect=201, what="binding WeChat",
                      json={"method": "wechat", "code": wechat + "-2",
                            "bind": {"login": zhang.id_number, "password": CITIZEN_PASSWORD}})  # fmt: skip
    demo.say("张三 opens the WeChat mini-program: unknown WeChat account → binds it once to his account → logged in")
    zhang.headers = {"Authorization": "Bearer " + bound["access_token"]}
    level = demo.verify_real_name(zhang)
    demo.say(f"the population registry confirms his name and number → real-name level L{level}")

    found = demo.call("GET", "/catalog/matters", expect=200, what="catalog search", params={"q": "yyzz"})
    hit = next((m for m in found["items"] if m["code"] == SOLE_TRADER), None)
    demo.check(hit, f"searching 'yyzz' did not find {SOLE_TRADER}: {[m['code'] for m in found['items']]}")
    matter = demo.call("GET", f"/catalog/matters/{SOLE_TRADER}", expect=200, what="the matter's guide")
    guide = matter["guide"]
    demo.check(guide["max_visits"] == 0, f"{SOLE_TRADER} should need 0 visits, guide says {guide['max_visits']}")
    delivery = guide.get("result", {}).get("delivery", [])
    demo.check("express" in delivery, f"{SOLE_TRADER} should offer EMS delivery: {delivery}")
    materials = "、".join(m["name"].split("（")[0] for m in guide["materials"])
    demo.say(f"张三 types 'yyzz' → {matter['name']} ({SOLE_TRADER}): {guide['max_visits']} visits, "
             f"{guide.get('promised_limit_days')} working day(s) promised, EMS delivery offered; materials: {materials}")  # fmt: skip

    # His ID card is the e-licence the public security bureau holds for him: nothing to photograph.
    id_card = demo.issue("gaj.officer", "resident_id_card", zhang.id_number, zhang.name)
    lease = demo.upload(zhang.headers, JPEG)
    form = demo.upload(zhang.headers, PDF)
    address = "山东省德州市德城区新湖大街1号"
    body = {
        "matter_code": SOLE_TRADER,
        "form": {"applicant_name": zhang.name, "mobile": zhang.mobile, "business_scope": "餐饮", "address": address},
        "materials": [
            {"name": "申请人居民身份证", "licence_id": id_card["identifier"], "licence_version": 1},
            {"name": "经营场所使用证明（房产证明或租赁合同）", "blob_id": lease},
            {"name": "个体工商户登记（备案）申请书", "blob_id": form},
        ],
        "delivery": {"method": "ems", "recipient": zhang.name, "phone": zhang.mobile, "address": address,
                     "division_code": "371402"},
    }  # fmt: skip
    case = demo.submit(body, zhang.headers, "张三 submits")
    case_no, query_code = case["case_no"], case["query_code"]
    id_material = next(m for m in case["materials"] if m["name"] == "申请人居民身份证")
    demo.check(id_material.get("verified"), f"his e-ID card was not verified as the ID card material: {id_material}")
    texts = demo.sms(case_no)
    demo.check(
        any(case_no in t and query_code in t for t in texts), f"no SMS with the case number and query code: {texts}"
    )
    demo.say(f"张三 photographs the lease (the ID card is his e-licence), chooses EMS and submits {SOLE_TRADER} "
             f"→ case {case_no}, due {case['due_on']}; case number and query code sent by SMS (a retry with the same "
             f"Idempotency-Key gets the same case)")  # fmt: skip
    demo.state.update(zhang=zhang, case_no=case_no, query_code=query_code)


def j2_officers_handle_it(demo: Demo) -> None:
    """Li Si's worklist, ONE correction notice, resubmission, accept → review → approve → licence → EMS."""
    zhang: Person = demo.state["zhang"]
    case_no: str = demo.state["case_no"]
    li_si = demo.officer("scjgj.officer")
    # New cases to accept, by deadline (paged: a platform the demo ran on many times has many).
    params: dict[str, Any] = {"state": "submitted", "matter_code": SOLE_TRADER, "page_size": 100}
    found, total, dues = False, 0, []
    for page in range(1, 21):
        worklist = demo.call("GET", "/caseflow/worklist", expect=200, what="Li Si's worklist", headers=li_si,
                             params={**params, "page": page})  # fmt: skip
        total = worklist["total"]
        dues += [item["due_on"] for item in worklist["items"] if item.get("due_on")]
        found = found or any(item["case_no"] == case_no for item in worklist["items"])
        if found or len(worklist["items"]) < params["page_size"]:
            break
    demo.check(found, f"{case_no} is not on the SCJGJ worklist")
    demo.check(dues == sorted(dues), "the worklist is not ordered by deadline")
    demo.say(f"李四 (市场监管局 acceptor, scjgj.officer) opens her worklist of new {SOLE_TRADER} cases ({total}, "
             f"by deadline) → {case_no} is there")  # fmt: skip

    items = [{"material": "经营场所使用证明（房产证明或租赁合同）", "problem": "照片无法辨认"},
             {"material": "form.business_scope", "problem": "经营范围未填写完整"}]  # fmt: skip
    corrected = demo.act(case_no, li_si, "request_correction", items=items)
    demo.check(corrected["state"] == "correction_requested" and corrected["due_on"] is None,
               f"after the correction notice: state {corrected['state']}, due {corrected['due_on']}")  # fmt: skip
    demo.say(
        "李四 sends ONE correction notice listing both problems (unreadable lease photo, business scope incomplete) → the clock pauses"
    )
    newer = demo.upload(zhang.headers, JPEG, path=f"/caseflow/cases/{case_no}/materials")
    resubmitted = demo.call("POST", f"/caseflow/cases/{case_no}/resubmit", expect=200, what="张三 resubmits",
                            headers=zhang.headers,
                            json={"form": {"business_scope": "餐饮服务；预包装食品销售"},
                                  "materials": [{"name": "经营场所使用证明（房产证明或租赁合同）", "blob_id": newer}]})  # fmt: skip
    demo.check(
        resubmitted["state"] == "resubmitted" and resubmitted["due_on"], f"after resubmission: {resubmitted['state']}"
    )
    demo.say(
        f"张三 re-uploads the lease and completes the business scope → resubmitted, the clock resumes (due {resubmitted['due_on']})"
    )
    second = demo.client.post(f"/caseflow/cases/{case_no}/actions", json={"action": "request_correction", "items": items},
                              headers={**li_si, "If-Match": str(resubmitted["version"])})  # fmt: skip
    demo.check(second.status_code == 409 and second.json()["type"].endswith("second-correction"),
               f"a second correction notice should be refused (409 second-correction), got {second.status_code}")  # fmt: skip
    demo.say(
        "李四 tries a second correction notice → refused (409: one correction is all they get; the supervisor sees an anomaly)"
    )

    for action, who in (
        ("accept", "李四 accepts"),
        ("review", "the reviewer reviews"),
        ("approve", "the decider approves"),
    ):
        state = demo.act(case_no, li_si, action)["state"]
        demo.say(f"{who} → {state}")
    licence, waited = demo.wait_for("the business licence issued for the case",
                                    lambda: demo.case(case_no, zhang.headers).get("licence"))  # fmt: skip
    demo.check(licence["licence_type"] == "business_licence", f"the case's licence is a {licence['licence_type']}")
    wallet = demo.wallet(zhang.headers)
    demo.check(
        any(item["identifier"] == licence["identifier"] for item in wallet), "the licence is not in 张三's wallet"
    )
    demo.say(f"the business licence is issued into the e-licence library, signed → {licence['identifier']} "
             f"in 张三's wallet (waited {waited:.1f} s for licence.issued)")  # fmt: skip
    demo.state["licence_id"] = licence["identifier"]

    # Once the result licence is issued, caseflow hands an EMS case to the carrier itself (ADR 0022).
    state, _ = demo.wait_for("caseflow to request the EMS delivery",
                             lambda: demo.case(case_no, zhang.headers)["state"] == "delivering" and "delivering")  # fmt: skip
    demo.say(f"the platform requests the EMS delivery itself once the licence is issued → {state}")

    def booked() -> dict | None:
        shipments = demo.case(case_no, zhang.headers)["shipments"]
        return shipments[0] if shipments and (shipments[0].get("waybill") or shipments[0]["final"]) else None

    try:
        shipment, waited = demo.wait_for("EMS to book the parcel", booked)
    except StepFailed as failed:
        shipments = demo.case(case_no, zhang.headers)["shipments"]
        status = shipments[0]["status"] if shipments else "not even created"
        raise StepFailed(f"{failed} (the shipment is {status}: express could not book it with the carrier, see "
                         f"express's log; a known cause: `make run` restarted on old data, whose EMS sandbox "
                         f"hands out the waybills it gave before)") from None  # fmt: skip
    if not shipment.get("waybill"):
        # The sandbox carrier refuses a share of orders (EMS_SANDBOX_REFUSAL_RATE) on a default `make run`.
        demo.say(f"the paper licence goes to EMS → the sandbox carrier refused the order ({shipment['reason']}); "
                 f"the result waits at the window")  # fmt: skip
        return
    waybill = shipment["waybill"]
    demo.say(f"the paper licence goes to EMS → waybill {waybill} (booked with the EMS sandbox in {waited:.1f} s); "
             f"the parcel travels while the other journeys run")  # fmt: skip
    demo.state["waybill"] = waybill
    demo.state["parcel_since"] = time.monotonic()


def j2_parcel_arrives(demo: Demo) -> None:
    """The carrier's signed tracking pushes reach the case; the signature completes it; a 非常满意."""
    zhang: Person = demo.state["zhang"]
    case_no, waybill = demo.state["case_no"], demo.state.get("waybill")
    if waybill is None:
        return  # the carrier refused the order (said in J2 above)

    def settled() -> dict | None:
        case = demo.case(case_no, zhang.headers)
        shipment = case["shipments"][0]
        return case if case["state"] == "completed" or shipment["status"] == "returned" else None

    case, _ = demo.wait_for(f"EMS parcel {waybill} to be signed for", settled, timeout=PARCEL_TIMEOUT)
    waited = time.monotonic() - demo.state["parcel_since"]
    parcel = demo.call("GET", f"/express/shipments/{waybill}", expect=200, what="张三's parcel", headers=zhang.headers)
    statuses = [event["status"] for event in sorted(parcel["timeline"], key=lambda e: e["at"])]
    route = " → ".join(status for i, status in enumerate(statuses) if i == 0 or statuses[i - 1] != status)
    if case["state"] != "completed":
        # The sandbox carrier returns a share of parcels (EMS_SANDBOX_RETURN_RATE) on a default `make run`.
        demo.say(
            f"EMS tracking {waybill}: {route} → the sandbox carrier returned the parcel; 张三 collects it at the window"
        )
        return
    texts = demo.sms(case_no)
    for said in (f"已交寄EMS，运单号{waybill}", "正在派送中", "已签收"):
        demo.check(sum(said in t for t in texts) == 1, f"张三 should get '{said}' once by SMS, got {texts}")
    demo.say(f"EMS tracking {waybill} (the carrier's signed pushes through the gateway): {route} "
             f"→ case completed by the signature ({waited:.0f} s after hand-over); 张三 got one SMS per step")  # fmt: skip
    rated = demo.call("POST", f"/caseflow/cases/{case_no}/evaluation", expect=201, what="张三 rates",
                      json={"score": 5}, headers=zhang.headers)  # fmt: skip
    demo.check(rated.get("rectification") is None, f"a 非常满意 should need no rectification: {rated}")
    texts = demo.sms(case_no)
    demo.check(any("一次性" in t for t in texts) and any("已办结" in t for t in texts),
               f"张三 should have been told of the correction and the completion by SMS: {texts}")  # fmt: skip
    demo.say(
        f"张三 rates the service 非常满意 (5); {len(texts)} SMS told him every step, from the case number to 已办结"
    )


def j3_agent_applies_for_company(demo: Demo) -> None:
    """Wang Wu mandates Zhao Liu; she applies for the company with its e-licence; the company sees the read."""
    wang = demo.citizen("王五", WANG_WU, new_mobile(demo.rng))
    bound = demo.call("POST", "/identity/enterprises", expect=(201, 409), what="王五 binds his company",
                      json={"uscc": RESTAURANT, "name": RESTAURANT_NAME}, headers=wang.headers)  # fmt: skip
    demo.say(f"王五 ({mask_id_number(WANG_WU)}), legal representative of {RESTAURANT_NAME} ({RESTAURANT}), "
             f"binds the company → {'bound (the enterprise register confirms him)' if bound and 'uscc' in bound else 'already bound'}")  # fmt: skip
    zhao = demo.citizen("赵六")
    expires = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    mandate = demo.call("POST", f"/identity/enterprises/{RESTAURANT}/agents", expect=201, what="王五 grants a mandate",
                        json={"agent_id_number": zhao.id_number, "scopes": [f"caseflow:{FOOD_PERMIT}"],
                              "expires_at": expires}, headers=wang.headers)  # fmt: skip
    demo.say(f"王五 grants {zhao.shown} a one-year mandate for 食品经营许可 → mandate {mandate['id']}")

    company = demo.act_as(wang, RESTAURANT)
    business = next((item for item in demo.wallet(company)
                     if item["licence_type"] == "business_licence" and item["status"] == "valid"), None)  # fmt: skip
    if business is None:  # the first run on this platform: the market regulator issued it earlier
        business = demo.issue("scjgj.officer", "business_licence", RESTAURANT, RESTAURANT_NAME,
                              {"enterprise_name": RESTAURANT_NAME, "address": "北京市朝阳区某某路8号",
                               "business_scope": "餐饮服务"})  # fmt: skip
    agent = demo.act_as(zhao, RESTAURANT)
    me = demo.call("GET", "/identity/me", expect=200, what="赵六 acting", headers=agent)
    demo.check(me["subject"] == RESTAURANT and me["kind"] == "enterprise", f"赵六 acts as {me['subject']}")
    uploads = {name: demo.upload(agent, content) for name, content in (
        ("食品经营许可申请书", PDF), ("食品经营主要设备设施、经营布局、操作流程等文件", PDF),
        ("食品安全自查、从业人员健康管理等制度目录", JPEG))}  # fmt: skip
    body = {
        "matter_code": FOOD_PERMIT,
        "form": {"enterprise_name": RESTAURANT_NAME, "address": "北京市朝阳区某某路8号",
                 "legal_representative": "王五", "registered_capital": 50},
        "materials": [{"name": "营业执照", "licence_id": business["identifier"], "licence_version": business["version"]},
                      *({"name": name, "blob_id": blob} for name, blob in uploads.items())],
        "delivery": {"method": "window"},
    }  # fmt: skip
    case = demo.submit(body, agent, "赵六 submits for the company")
    case_no = case["case_no"]
    reused = next(m for m in case["materials"] if m["name"] == "营业执照")
    demo.check(
        reused.get("verified") and reused.get("number") == RESTAURANT, f"the business licence was not reused: {reused}"
    )
    demo.say(f"赵六, logged in as herself and acting for the company, submits 食品经营许可 ({FOOD_PERMIT}) → case {case_no}; "
             f"营业执照 filled from the company's e-licence, not uploaded")  # fmt: skip
    log = demo.call("GET", f"/licence/licences/{business['identifier']}/access-log", expect=200,
                    what="the company's licence access log", headers=company, params={"page_size": 100})  # fmt: skip
    demo.check(any(e["reader"] == "caseflow" and e["case_no"] == case_no for e in log["items"]),
               f"the access log does not show caseflow reading it for {case_no}")  # fmt: skip
    demo.say(f"王五, for the company, reads the business licence's access log → caseflow read it for case {case_no}")

    regulator = demo.officer("scjgj.officer")
    for action in ("accept", "review", "approve"):
        demo.act(case_no, regulator, action)
    permit, waited = demo.wait_for("the food-business licence", lambda: demo.case(case_no, company).get("licence"))
    demo.check(permit["licence_type"] == "food_business_licence", f"the case issued a {permit['licence_type']}")
    state = demo.act(case_no, regulator, "complete")["state"]
    demo.check(state == "completed", f"after the permit was handed out the case is {state}")
    demo.say(f"市场监管局 accepts, reviews, approves → 食品经营许可证 {permit['identifier']} in the company's wallet "
             f"(waited {waited:.1f} s); the paper permit is handed out at the window → {state}")  # fmt: skip


def j4_one_form_four_departments(demo: Demo) -> None:
    """开办企业一件事: one merged form, shared materials once, four departments' branches."""
    zhou = demo.citizen("周八")
    id_card = demo.issue("gaj.officer", "resident_id_card", zhou.id_number, zhou.name)
    premises = demo.issue("bdcdj.officer", "real_estate_certificate", zhou.id_number, zhou.name,
                          {"location": "山东省德州市德城区天衢路2号"})  # fmt: skip
    bundle = demo.call("GET", f"/catalog/bundles/{BUNDLE}", expect=(200, 404), what="the bundle")
    files = {
        name: demo.upload(zhou.headers, PDF)
        for name in ("公司登记（备案）申请书", "公司章程", "发票领用申请表", "社会保险登记表")
    }
    name = f"德州{demo.run[:4]}科技有限公司"
    body = {
        "bundle_code": BUNDLE,
        "form": {"mobile": zhou.mobile, "enterprise_name": name, "address": "山东省德州市德城区天衢路2号",
                 "legal_representative": zhou.name, "registered_capital": 100, "invoice_kind": "增值税普通发票",
                 "bank_account": "6222000000000000", "seal_kinds": "公章"},
        "materials": [
            {"name": "申请人居民身份证", "licence_id": id_card["identifier"], "licence_version": 1},
            {"name": "经营场所使用证明（房产证明或租赁合同）", "licence_id": premises["identifier"], "licence_version": 1},
            {"name": "法定代表人居民身份证", "licence_id": id_card["identifier"], "licence_version": 1},
            *({"name": material, "blob_id": blob} for material, blob in files.items()),
        ],
        "delivery": {"method": "window"},
    }  # fmt: skip
    case = demo.submit(body, zhou.headers, "周八 submits the bundle")
    case_no = case["case_no"]
    title = bundle.get("name", "开办企业一件事") if isinstance(bundle, dict) else "开办企业一件事"
    demo.say(f"{zhou.shown} applies for {title} ({BUNDLE}): one merged form, ID card and premises certificate "
             f"asked once (both e-licences) → case {case_no}")  # fmt: skip
    lead = demo.officer("scjgj.officer")
    accepted = demo.act(case_no, lead, "accept")
    branches = {b["department"]: b for b in accepted["branches"]}
    demo.check(set(branches) == {"GAJ", "SWJ", "RSJ"} and all(b["due_on"] for b in branches.values()),
               f"the case should fan out to GAJ, SWJ and RSJ with deadlines: {branches}")  # fmt: skip
    fan = ", ".join(f"{d} due {b['due_on']}" for d, b in sorted(branches.items()))
    demo.say(f"市场监管局 accepts → it fans out: SCJGJ (company registration, lead) + {fan}; "
             f"joint-handling limit {accepted['due_on']}")  # fmt: skip
    early = demo.client.post(f"/caseflow/cases/{case_no}/actions", json={"action": "approve"},
                             headers={**lead, "If-Match": str(accepted["version"])})  # fmt: skip
    demo.check(
        early.status_code == 409, f"approving before the branches are done should be refused: {early.status_code}"
    )
    demo.say(
        f"the lead tries to approve early → refused (409), pending: {', '.join(sorted(early.json().get('pending', [])))}"
    )
    for department, what in (("GAJ", "seal engraving"), ("SWJ", "first invoice"), ("RSJ", "social insurance")):
        demo.call("POST", f"/caseflow/cases/{case_no}/branches/{department}/actions", expect=200,
                  what=f"{department} decides its branch", json={"action": "approve"},
                  headers={**demo.officer(f"{department.lower()}.officer"), "If-Match": "1"})  # fmt: skip
        demo.say(f"{department} approves its branch ({what})")
    demo.act(case_no, lead, "review")
    state = demo.act(case_no, lead, "approve")["state"]
    demo.check(state == "approved", f"after every branch the lead's review and approval give {state}")
    state = demo.act(case_no, lead, "complete")["state"]
    demo.check(state == "completed", f"after the hand-out at the window the case is {state}")
    demo.say(f"all four departments done → the lead reviews and approves, the results are handed out at the window "
             f"→ {state}, within the joint-handling limit")  # fmt: skip


def j5_supervisor_sees(demo: Demo) -> None:
    """The e-supervision centre's figures: per department, and the warnings."""
    supervisor = demo.officer("supervisor")
    stats = demo.call("GET", "/caseflow/supervision/stats", expect=200, what="supervision stats", headers=supervisor)
    by_department = {s["department"]: s for s in stats}
    demo.check("SCJGJ" in by_department and by_department["SCJGJ"]["volume"] >= 2, f"SCJGJ's figures: {stats}")
    anomalies = demo.call("GET", "/caseflow/supervision/warnings", expect=200, what="supervision warnings",
                          params={"level": "anomaly", "page_size": 100}, headers=supervisor)  # fmt: skip
    case_no = demo.state.get("case_no")
    mine = [w for w in anomalies["items"] if w["case_no"] == case_no]
    demo.check(any(w["step"] == "second_correction" for w in mine),
               f"the second correction attempt on {case_no} should be an anomaly: {mine}")  # fmt: skip
    warnings = demo.call("GET", "/caseflow/supervision/warnings", expect=200, what="supervision warnings",
                         params={"page_size": 5}, headers=supervisor)  # fmt: skip
    demo.say(f"the supervisor (e-supervision centre) opens the dashboard → {len(stats)} departments, "
             f"{warnings['total']} warnings; {case_no}'s second correction attempt is flagged as an anomaly")  # fmt: skip

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.0f}%"

    header = f"{'dept':<8}{'volume':>7}{'in hand':>9}{'yellow':>8}{'red':>5}{'anomaly':>9}{'on time':>9}{'avg days':>10}{'online':>8}"
    demo.say(header)
    for entry in stats:
        days = entry.get("average_working_days")
        demo.say(
            f"{entry['department']:<8}{entry['volume']:>7}{entry['in_hand']:>9}{entry['yellow']:>8}{entry['red']:>5}"
            f"{entry['anomaly']:>9}{pct(entry.get('on_time_rate')):>9}{'-' if days is None else days:>10}"
            f"{pct(entry.get('online_share')):>8}"
        )
    demo.say("(yellow: in hand, close to its deadline; red: past it — raised by caseflow's working-day timer; "
             "anomaly: a second correction attempted, a decision without a review, a failed delivery …)")  # fmt: skip
    for warning in warnings["items"]:
        demo.say(
            f"  warning: {warning['level']:<8}{warning['department']:<7}{warning['case_no']}  {warning.get('step', '')}"
        )


def exchange_keys(demo: Demo) -> dict[str, Any]:
    """The receipt keys; Skipped while the platform has no exchange area (or it is not open yet)."""
    try:
        response = demo.client.get("/exchange/.well-known/jwks.json")
    except httpx.HTTPError as exc:
        raise Skipped(f"the exchange area did not answer ({type(exc).__name__})") from None
    if response.status_code == 404:
        raise Skipped("the platform has no exchange area (GET /api/v1/exchange/.well-known/jwks.json → 404)")
    if response.status_code != 200 or not response.json().get("keys"):
        raise Skipped(f"exchange's receipt keys are not published yet (GET /api/v1/exchange/.well-known/jwks.json → "
                      f"{response.status_code})")  # fmt: skip
    return dict(response.json())


def j6_department_system(demo: Demo) -> None:
    """The real-estate registration centre's own system pushes signed events; receipts; a replay changes nothing."""
    import jwt

    jwks = exchange_keys(demo)
    zhang: Person = demo.state["zhang"]
    secret = os.environ.get("EXCHANGE_DEMO_PARTNER_SECRET") or BDCDJ_SECRET_DEFAULT
    path = "/api/v1/departments/BDCDJ/events"

    def push(
        body: bytes, *, key: str = secret, nonce: str | None = None, timestamp: int | None = None
    ) -> httpx.Response:
        headers = signed_headers(BDCDJ_PARTNER, key, "POST", path, body, nonce=nonce or new_nonce(),
                                 timestamp=timestamp or int(time.time()))  # fmt: skip
        return demo.client.post(path.removeprefix("/api/v1"), content=body,
                                headers={**headers, "Content-Type": "application/json"})  # fmt: skip

    def event(kind: str, data: dict[str, Any], n: int) -> bytes:
        occurred = datetime.now(UTC).isoformat()
        return json.dumps({"event_id": f"bdcdj-{demo.run}-{n}", "type": kind, "occurred_at": occurred, "data": data},
                          ensure_ascii=False).encode()  # fmt: skip

    def receipt_of(response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise StepFailed(f"{what}: POST {path} answered {response.status_code}: {response.text[:600]}")
        return dict(response.json())

    before = {c["case_no"] for c in demo.call("GET", "/caseflow/cases", expect=200, what="张三's cases",
                                              headers=zhang.headers, params={"page_size": 100})["items"]}  # fmt: skip
    department_case = f"BDC-{date.today():%Y}-{demo.run}"
    progress = {"department_case_id": department_case, "matter_code": BDCDJ_MATTER, "applicant": zhang.id_number,
                "applicant_kind": "person"}  # fmt: skip
    received_body = event("case.progress", {**progress, "step": "received"}, 1)
    received = receipt_of(push(received_body), "case.progress received")
    demo.say(f"不动产登记中心's own system ({BDCDJ_PARTNER}) pushes case.progress 'received' for 张三's flat transfer "
             f"({department_case}) → receipt {received['receipt_id']}")  # fmt: skip
    accepted = receipt_of(push(event("case.progress", {**progress, "step": "accepted"}, 2)), "case.progress accepted")
    demo.say(f"it pushes 'accepted' → receipt {accepted['receipt_id']}")

    def mirrored() -> dict | None:
        cases = demo.call("GET", "/caseflow/cases", expect=200, what="张三's cases", headers=zhang.headers,
                          params={"page_size": 100})["items"]  # fmt: skip
        new = [c for c in cases if c["case_no"] not in before and c["matter"]["code"] == BDCDJ_MATTER]
        return new[0] if new and new[0]["state"] == "accepted" else None

    case, waited = demo.wait_for("the mirrored case in 张三's list", mirrored)
    detail = demo.case(case["case_no"], zhang.headers)
    shown = f"case {case['case_no']} ({case['state']}, due {case.get('due_on')})"
    if detail.get("query_code"):
        page = demo.call("GET", f"/caseflow/progress/{case['case_no']}", expect=200, what="the progress page",
                         params={"code": detail["query_code"]})  # fmt: skip
        demo.check(page["state"] == "accepted", f"the progress page says {page['state']}")
        shown += f", and on the progress page: {' → '.join(step['to_state'] for step in page['steps'])}"
    demo.say(f"张三 sees it in his case list (waited {waited:.1f} s): {shown}")

    # The certificate's printed serial (the licence library keeps numbers a QR code can carry: 0-9, A-Z, -).
    number = f"371402-{date.today():%Y}-{demo.rng.randrange(10**7):07d}"
    certificate = {"licence_type": "real_estate_certificate", "number": number, "holder": zhang.id_number,
                   "holder_kind": "person", "holder_name": zhang.name, "issued_on": date.today().isoformat(),
                   "data": {"location": "山东省德州市德城区新湖大街8号1单元302", "usage": "住宅", "area": 89.5},
                   "department_case_id": department_case}  # fmt: skip
    issued_body = event("licence.issued", certificate, 3)
    issued = receipt_of(push(issued_body), "licence.issued")

    def in_wallet() -> dict | None:
        return next((item for item in demo.wallet(zhang.headers) if item.get("number") == number), None)

    licence, waited = demo.wait_for("the 不动产权证书 in 张三's wallet", in_wallet)
    demo.say(f"it pushes licence.issued 不动产权证书 No. {number} → receipt {issued['receipt_id']}; "
             f"in 张三's licence wallet as {licence['identifier']} (waited {waited:.1f} s)")  # fmt: skip

    # The receipt's signature: a compact JWS (EdDSA) over its other fields, keys at the JWKS.
    key_set = jwt.PyJWKSet.from_dict(jwks)
    kid = jwt.get_unverified_header(issued["signature"]).get("kid")
    key = next((k for k in key_set.keys if k.key_id == kid), None)
    demo.check(key, f"the receipt's key {kid} is not in /api/v1/exchange/.well-known/jwks.json")
    assert key is not None
    try:
        signed = json.loads(jwt.api_jws.decode(issued["signature"], key.key, algorithms=["EdDSA"]))
    except jwt.PyJWTError as exc:
        raise StepFailed(f"the receipt's signature does not verify: {exc}") from None
    same = ("receipt_id", "department", "partner", "event_id", "type", "body_sha256")
    differs = [name for name in same if signed.get(name) != issued.get(name)]
    if not differs and _instant(signed.get("received_at")) != _instant(issued.get("received_at")):
        differs.append("received_at")
    demo.check(not differs, f"the receipt's signed payload differs from the receipt in {differs}: {signed}")
    demo.check(
        issued["body_sha256"] == hashlib.sha256(issued_body).hexdigest(), "the receipt's body_sha256 is not our body's"
    )
    demo.say(f"the centre verifies the receipt's signature (EdDSA, key {kid} from /api/v1/exchange/.well-known/jwks.json) "
             f"→ valid, and it names the SHA-256 of what was sent")  # fmt: skip

    again = receipt_of(push(issued_body), "the same push again")
    demo.check(again["duplicate"] is True and again["receipt_id"] == issued["receipt_id"],
               f"the same event again should be a duplicate of {issued['receipt_id']}: {again}")  # fmt: skip
    nonce, timestamp = new_nonce(), int(time.time())
    first = push(issued_body, nonce=nonce, timestamp=timestamp)
    replayed = push(issued_body, nonce=nonce, timestamp=timestamp)
    forged = push(event("licence.issued", {**certificate, "number": number + "X"}, 4), key="a-guessed-secret")
    demo.check(first.status_code == 200, f"a freshly signed repeat: {first.status_code}")
    demo.check(
        replayed.status_code == 401, f"a replayed request (same nonce) should be refused: {replayed.status_code}"
    )
    demo.check(forged.status_code == 401, f"a forged push should be refused: {forged.status_code}")
    copies = [item for item in demo.wallet(zhang.headers) if item.get("number", "").startswith(number)]
    demo.check(len(copies) == 1, f"the repeats changed the wallet: {len(copies)} certificates")
    demo.say(
        "the same push sent again → duplicate: true, same receipt; the very same request replayed → 401; "
        "a forged signature → 401; 张三's wallet still holds one certificate"
    )


def j7_anyone_checks_no_one_snoops(demo: Demo) -> None:
    """The neighbour with number and code; the bank clerk's QR check, offline and online; strangers get 404."""
    zhang: Person = demo.state["zhang"]
    case_no, code, licence_id = demo.state["case_no"], demo.state["query_code"], demo.state["licence_id"]
    public = httpx.Client(base_url=str(demo.client.base_url), timeout=demo.client.timeout)  # no one's session
    with public:
        page = public.get(f"/caseflow/progress/{case_no}", params={"code": code})
        demo.check(page.status_code == 200, f"the progress page answered {page.status_code}")
        progress = page.json()
        demo.check(progress["applicant"] == "张*", f"the applicant should be masked as 张*: {progress['applicant']}")
        steps = " → ".join(dict.fromkeys(step["to_state"] for step in progress["steps"]))
        demo.say(
            f"a neighbour with the case number and query code opens the progress page → applicant {progress['applicant']}, {steps}"
        )
        wrong = public.get(f"/caseflow/progress/{case_no}", params={"code": "ZZZZZZ"})
        demo.check(wrong.status_code == 404, f"a wrong query code should get 404, got {wrong.status_code}")
        demo.say("the same page with a guessed query code → 404")

        qr = demo.call(
            "GET", f"/licence/licences/{licence_id}/qr", expect=200, what="the licence QR", headers=zhang.headers
        )
        keys = public.get("/licence/keys")
        demo.check(keys.status_code == 200, f"GET /licence/keys answered {keys.status_code}")
        with tempfile.TemporaryDirectory(prefix="yiwang-demo-") as folder:
            image, key_file = Path(folder) / "qr.png", Path(folder) / "keys.json"
            image.write_bytes(base64.b64decode(qr["png_base64"]))
            key_file.write_text(keys.text, encoding="utf-8")
            # The bank clerk's desk tool: decodes the photo of the QR and checks the signature, no network.
            offline = subprocess.run(
                [sys.executable, "-m", "services.licence.verify", "--image", str(image), "--keys", str(key_file)],
                cwd=REPO, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        demo.check(
            offline.returncode == 0, f"the offline check failed ({offline.returncode}): {offline.stderr.strip()}"
        )
        demo.say("a bank clerk scans the QR on 张三's licence; his desk tool verifies it offline (cached keys) → valid")
        text = _qr_text(qr)
        online = public.post("/licence/licences/verify", json={"text": text})
        demo.check(
            online.status_code == 200 and online.json()["status"] == "valid", f"the online check: {online.text[:300]}"
        )
        demo.say("online, the same QR → valid (not revoked since)")

    stranger = demo.citizen("吴九")
    case = demo.client.get(f"/caseflow/cases/{case_no}", headers=stranger.headers)
    licence = demo.client.get(f"/licence/licences/{licence_id}", headers=stranger.headers)
    demo.check(case.status_code == 404 and licence.status_code == 404,
               f"another citizen should get 404 for the case and the licence: {case.status_code}, {licence.status_code}")  # fmt: skip
    demo.say(f"another citizen, {stranger.shown}, asks for 张三's case and licence → 404 and 404")


def _instant(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _qr_text(qr: dict[str, Any]) -> str:
    """The QR's text: as the API gives it, or decoded from the image by a real QR reader."""
    if qr.get("text"):
        return str(qr["text"])
    import zxingcpp
    from PIL import Image

    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(base64.b64decode(qr["png_base64"]))))
    return str(decoded.text)


def j9_one_visit_booked(demo: Demo) -> None:
    """The hall: booking, check-in, the counter, 统一窗口出件; the 24-hour kiosk (tools/demo_hall.py)."""
    from tools.demo_hall import j9_one_visit_booked as journey  # it imports this module's helpers

    journey(demo)


def j10_pay_online_instant(demo: Demo) -> None:
    """零填报, the fee paid online, 秒批 (tools/demo_hall.py)."""
    from tools.demo_hall import j10_pay_online_instant as journey

    journey(demo)


# J2's parcel travels while J3–J10 run; the supervisor's figures come last.
PLAN: list[tuple[str, Callable[[Demo], None]]] = [
    ("J1", j1_citizen_applies),
    ("J2", j2_officers_handle_it),
    ("J3", j3_agent_applies_for_company),
    ("J4", j4_one_form_four_departments),
    ("J6", j6_department_system),
    ("J7", j7_anyone_checks_no_one_snoops),
    ("J9", j9_one_visit_booked),
    ("J10", j10_pay_online_instant),
    ("J2", j2_parcel_arrives),
    ("J5", j5_supervisor_sees),
]


def play(gateway: str, *, out: Callable[[str], None] = print) -> int:
    """Every journey against ``gateway``; 0 when all did what they should, 1 at the first that did not."""
    started = time.monotonic()
    with httpx.Client(base_url=gateway.rstrip("/") + "/api/v1", timeout=30) as client:
        demo = Demo(client, out=out)
        for journey, step in PLAN:
            demo.journey = journey
            try:
                step(demo)
            except Skipped as skipped:
                demo.say(f"SKIPPED: {skipped}")
            except StepFailed as failed:
                demo.say(f"FAILED: {failed}")
                out(f"\ndemo failed in {journey} after {time.monotonic() - started:.1f} s")
                return 1
            except (httpx.HTTPError, LookupError, TypeError, ValueError) as exc:  # an answer not as documented
                demo.say(f"FAILED: unexpected {type(exc).__name__}: {exc}")
                out(f"\ndemo failed in {journey} after {time.monotonic() - started:.1f} s")
                return 1
    out(f"\nall journeys done in {time.monotonic() - started:.1f} s")
    return 0


# -- the platform ---------------------------------------------------------------------------------


def default_gateway() -> str:
    configured = os.environ.get("YIWANG_GATEWAY_URL", "").strip()
    if configured:
        return configured
    port = next((entry.port for entry in load().entries if entry.is_gateway), 8000)
    return f"http://127.0.0.1:{port}"


def readiness(gateway: str) -> int | None:
    """The gateway's /readyz status code, or None when nothing answers."""
    try:
        return httpx.get(gateway.rstrip("/") + "/readyz", timeout=3).status_code
    except httpx.HTTPError:
        return None


class Platform:
    """``python -m tools.run`` as ``make run`` starts it, stopped again by :meth:`stop`."""

    def __init__(self, data_dir: Path | None) -> None:
        self.kept = data_dir is not None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="yiwang-demo-"))
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float) -> str:
        """Start and wait until everything is ready; the gateway's URL."""
        # A quick sandbox carrier that delivers every parcel (a person waits for the demo); failed
        # delivery attempts, duplicated and reordered pushes stay on. The environment wins.
        quick = {
            "EMS_SANDBOX_STEP_SECONDS": "1",
            "EMS_SANDBOX_SEED": "20261201",
            "EMS_SANDBOX_REFUSAL_RATE": "0",
            "EMS_SANDBOX_RETURN_RATE": "0",
        }
        env = {**quick, **os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "tools.run", "--data-dir", str(self.data_dir)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # our Ctrl-C reaches us; we stop it in order
        )  # fmt: skip
        assert self.process.stdout is not None
        gateway = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("the platform exited while starting:\n" + "".join(self.output))
            self.output.append(line)
            match = re.match(r"^gateway\s+(http://127\.0\.0\.1:\d+)\s", line)
            if match:
                gateway = match.group(1)
            if "Ctrl-C stops everything" in line and gateway:
                return gateway
        raise RuntimeError(f"the platform was not ready after {timeout:.0f} s:\n" + "".join(self.output))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGTERM, not SIGINT: tools.run handles it the same way (children stopped in reverse
            # order), and a SIGINT would be ignored when the demo itself runs in the background.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if not self.kept:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default=None, help="the gateway's base URL (default: platform.toml's port)")
    parser.add_argument(
        "--data-dir", type=Path, help="data directory of a platform the demo starts (default: a temporary one)"
    )
    parser.add_argument("--start-timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    gateway = (args.gateway or default_gateway()).rstrip("/")

    signal.signal(signal.SIGTERM, _terminate)  # a platform the demo started is stopped either way
    platform: Platform | None = None
    status = readiness(gateway)
    if status is not None and status != 200:  # something is there, not ready yet: give it a moment
        deadline = time.monotonic() + 30
        while status != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            status = readiness(gateway)
        if status != 200:
            print(
                f"demo: {gateway}/readyz answers {status}: the platform there is not ready; not starting a second one"
            )
            return 1
    if status == 200:
        print(f"demo: the platform is running at {gateway}; playing against it\n", flush=True)
    else:
        platform = Platform(args.data_dir)
        print(
            f"demo: nothing answers at {gateway}; starting the platform (python -m tools.run, data in {platform.data_dir}) …",
            flush=True,
        )
        started = time.monotonic()
        try:
            gateway = platform.start(args.start_timeout)
        except (RuntimeError, KeyboardInterrupt) as exc:
            platform.stop()
            print(f"demo: could not start the platform: {exc}", file=sys.stderr)
            return 1
        print(f"demo: platform ready in {time.monotonic() - started:.0f} s, gateway {gateway}\n", flush=True)
    try:
        return play(gateway, out=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        return 130
    finally:
        if platform is not None:
            print("demo: stopping the platform it started …", flush=True)
            platform.stop()
            print("demo: stopped.", flush=True)


if __name__ == "__main__":
    # Played as the module tools.demo, not as __main__: tools.demo_hall's journeys raise tools.demo's
    # StepFailed, which only tools.demo's play() catches.
    from tools.demo import main as demo_main

    sys.exit(demo_main())
