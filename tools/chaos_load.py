"""The chaos run's load: people registering, cases submitted and handled, department pushes —
all through the gateway, a few dozen workers at once, for a fixed time (tools/chaos.py).

Every answer is tallied by kind; every 2xx is a promise the reconciliation (tools/chaos_check.py)
then looks for in the databases. A request that got no answer or a 5xx is tried again the way a
client would: a submission with the same Idempotency-Key, a push with the same event id, an
action after reading the case again (it may have been applied before the connection broke).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, TypeGuard

import httpx

from kit.signing import new_nonce, signed_headers
from tools.demo import (
    BDCDJ_MATTER,
    BDCDJ_PARTNER,
    BDCDJ_SECRET_DEFAULT,
    CITIZEN_PASSWORD,
    JPEG,
    OFFICER_PASSWORD,
    PDF,
    SOLE_TRADER,
    new_id_number,
    new_mobile,
)

OFFICER = "scjgj.officer"  # acts on SOLE_TRADER (市场监管局)
PUSH_PATH = "/api/v1/departments/BDCDJ/events"
# The officer's path through a case, and the states from which each action is already done.
STEPS = (("accept", "accepted"), ("review", "reviewed"), ("approve", "approved"))
STATE_ORDER = ("submitted", "accepted", "reviewed", "approved", "delivering", "completed")
TRIES = 8  # attempts of one request before the worker gives it up (about 20 s of backoff)
BUSY = 6  # caseflow requests in flight (this one included) when the run kills a replica
MAILBOX_READS = 10
CODE = re.compile(r"\d{6}")
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class Promises:
    """What the platform answered 2xx to: each must be found in its database afterwards."""

    people: set[str] = field(default_factory=set)  # id numbers registered (201)
    verified: set[str] = field(default_factory=set)  # id numbers verified at real-name L2 (200)
    blobs: set[str] = field(default_factory=set)  # uploaded material ids (201)
    cases: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # idempotency key → case numbers
    actions: list[tuple[str, str]] = field(default_factory=list)  # (case number, action) answered 200
    approved: set[str] = field(default_factory=set)  # cases approved (200): a licence, then an EMS shipment
    pushes: set[str] = field(default_factory=set)  # department event ids answered 200
    mirrored: set[str] = field(default_factory=set)  # department case ids whose 'received' push got 200
    certificates: set[str] = field(default_factory=set)  # certificate numbers pushed as licence.issued (200)


class Load:
    """The workers, one shared client, the tallies and the promises."""

    def __init__(self, gateway: str, *, workers: int, seed: str, partner_secret: str = BDCDJ_SECRET_DEFAULT) -> None:
        self.gateway = gateway.rstrip("/")
        self.workers = workers
        self.seed = seed
        self.run = uuid.uuid4().hex[:6]
        self.partner_secret = partner_secret
        self.tally: dict[str, Counter[str]] = defaultdict(Counter)
        self.promises = Promises()
        self.in_flight: Counter[str] = Counter()  # by area (caseflow, identity, …)
        # Called (once) as a caseflow request starts while BUSY - 1 others are in flight: with the
        # replicas taken in turn, some are on the replica it kills there and then.
        self.on_caseflow_busy: Callable[[], None] | None = None
        self.failed: Counter[str] = Counter()  # non-2xx answers and no answers, by area
        self.stop_at = 0.0
        self._officer: dict[str, str] = {}
        self._officer_lock = asyncio.Lock()
        self._pushes = 0
        self.client: httpx.AsyncClient | None = None

    # -- running --------------------------------------------------------------------------------
    async def run_for(self, seconds: float) -> None:
        """Every worker until ``seconds`` have passed (a journey under way is finished, bounded)."""
        limits = httpx.Limits(max_connections=self.workers * 2, max_keepalive_connections=self.workers)
        async with httpx.AsyncClient(base_url=self.gateway + "/api/v1", timeout=20, limits=limits) as client:
            self.client = client
            self.stop_at = time.monotonic() + seconds
            await asyncio.gather(*(self.worker(n) for n in range(self.workers)))
        self.client = None

    def stopping(self) -> bool:
        return time.monotonic() >= self.stop_at

    async def worker(self, n: int) -> None:
        rng = random.Random(f"{self.seed}-{n}")
        person: dict[str, Any] | None = None
        serial = 0
        while not self.stopping():
            serial += 1
            if person is None or rng.random() < 0.15:
                person = await self.new_person(rng)
                if person is None:
                    await asyncio.sleep(0.5)
                    continue
            if rng.random() < 0.25:
                await self.department_case(rng, person, f"{n}-{serial}")
                continue
            case_no = await self.submit_case(person, f"chaos-{self.run}-{n}-{serial}")
            if case_no and rng.random() < 0.7:
                await self.handle(case_no)

    # -- requests -------------------------------------------------------------------------------
    async def request(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One request, tallied under ``kind``: the response, or None when none came."""
        assert self.client is not None
        area = path.strip("/").split("/", 1)[0]
        self.tally[kind]["sent"] += 1
        self.in_flight[area] += 1
        if area == "caseflow" and self.on_caseflow_busy is not None and self.in_flight[area] >= BUSY:
            trigger, self.on_caseflow_busy = self.on_caseflow_busy, None
            trigger()
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.tally[kind][type(exc).__name__] += 1
            self.failed[area] += 1
            return None
        finally:
            self.in_flight[area] -= 1
        status = response.status_code
        if not 200 <= status < 300:
            self.failed[area] += 1
        self.tally[kind]["2xx" if 200 <= status < 300 else str(status)] += 1
        return response

    async def tried(self, attempt: Callable[[], Awaitable[httpx.Response | None]]) -> httpx.Response | None:
        """``attempt`` again while it gets no answer or a passing failure (5xx, 429), with backoff."""
        response = None
        for n in range(TRIES):
            response = await attempt()
            if response is not None and response.status_code not in RETRYABLE:
                return response
            await asyncio.sleep(min(0.25 * 2**n, 4.0))
        return response

    @staticmethod
    def ok(response: httpx.Response | None, *statuses: int) -> TypeGuard[httpx.Response]:
        return response is not None and response.status_code in statuses

    # -- people ---------------------------------------------------------------------------------
    async def new_person(self, rng: random.Random) -> dict[str, Any] | None:
        """Register (SMS code from the sandbox mailbox), log in, real-name check, log in at L2."""
        id_number, mobile = new_id_number(rng), new_mobile(rng)
        registered, used = False, set[str]()
        for _ in range(4):
            code = await self.sms_code(mobile, used)
            if code is None:
                continue
            body = {"id_number": id_number, "name": "混沌测", "mobile": mobile, "password": CITIZEN_PASSWORD,
                    "sms_code": code}  # fmt: skip
            answer = await self.tried(partial(self.request, "register", "POST", "/identity/register", json=body))
            if self.ok(answer, 201):
                self.promises.people.add(id_number)
            if self.ok(answer, 201, 409):  # 409: an earlier attempt went through before its answer was lost
                registered = True
                break
        if not registered:
            return None
        headers = await self.login(id_number)
        if headers is None:
            return None
        verified = await self.tried(lambda: self.request("verify", "POST", "/identity/me/verification",
                                                         json={"method": "registry"}, headers=headers))  # fmt: skip
        if not self.ok(verified, 200):
            return None
        self.promises.verified.add(id_number)
        headers = await self.login(id_number)
        return None if headers is None else {"id_number": id_number, "mobile": mobile, "headers": headers}

    async def sms_code(self, mobile: str, used: set[str]) -> str | None:
        """A fresh code from the sandbox mailbox. The mailbox lives in the memory of the identity
        replica that sent it (a sandbox, not the deployment's SMS gateway), and the gateway takes
        replicas in turn: it is read until the code shows up, skipping codes already tried."""
        sent = await self.tried(lambda: self.request("sms-code", "POST", "/identity/sms-codes",
                                                     json={"mobile": mobile, "purpose": "register"}))  # fmt: skip
        if not self.ok(sent, 202):
            return None
        for _ in range(MAILBOX_READS):
            inbox = await self.tried(lambda: self.request("sms-read", "GET", "/identity/sandbox/sms",
                                                          params={"mobile": mobile}))  # fmt: skip
            texts = [item["text"] for item in inbox.json()] if self.ok(inbox, 200) else []
            codes = [found.group(0) for found in map(CODE.search, texts) if found]
            fresh = [code for code in codes if code not in used]
            if fresh:
                used.add(fresh[0])
                return fresh[0]
            await asyncio.sleep(0.05)
        return None

    async def login(
        self, login: str, password: str = CITIZEN_PASSWORD, method: str = "password"
    ) -> dict[str, str] | None:
        body = {"method": method, "login": login, "password": password}
        answer = await self.tried(lambda: self.request("login", "POST", "/identity/sessions", json=body))
        if not self.ok(answer, 201):
            return None
        return {"Authorization": "Bearer " + answer.json()["access_token"]}

    async def officer(self, stale: dict[str, str] | None = None) -> dict[str, str]:
        """The officer's session, shared by the workers; logged in again when ``stale`` was refused."""
        async with self._officer_lock:
            if not self._officer or self._officer == stale:
                self._officer = await self.login(OFFICER, OFFICER_PASSWORD, "officer") or {}
            return self._officer

    # -- cases ----------------------------------------------------------------------------------
    async def upload(self, headers: dict[str, str], content: bytes) -> str | None:
        answer = await self.tried(lambda: self.request("upload", "POST", "/caseflow/materials", headers=headers,
                                                       files={"file": ("m.jpg", content, "application/octet-stream")}))  # fmt: skip
        if not self.ok(answer, 201):
            return None
        blob = str(answer.json()["id"])
        self.promises.blobs.add(blob)
        return blob

    async def submit_case(self, person: dict[str, Any], key: str) -> str | None:
        """SOLE_TRADER with EMS delivery; retried with the same Idempotency-Key until answered."""
        headers = person["headers"]
        blobs = [await self.upload(headers, content) for content in (JPEG, JPEG, PDF)]
        if None in blobs:
            return None
        address = "山东省德州市德城区新湖大街1号"
        body = {
            "matter_code": SOLE_TRADER,
            "form": {"applicant_name": "混沌测", "mobile": person["mobile"], "business_scope": "餐饮", "address": address},
            "materials": [
                {"name": "申请人居民身份证", "blob_id": blobs[0]},
                {"name": "经营场所使用证明（房产证明或租赁合同）", "blob_id": blobs[1]},
                {"name": "个体工商户登记（备案）申请书", "blob_id": blobs[2]},
            ],
            "delivery": {"method": "ems", "recipient": "混沌测", "phone": person["mobile"], "address": address,
                         "division_code": "371402"},
        }  # fmt: skip
        answer = await self.tried(lambda: self.request("submit", "POST", "/caseflow/cases", json=body,
                                                       headers={**headers, "Idempotency-Key": key}))  # fmt: skip
        if not self.ok(answer, 200, 201):
            return None
        case_no = str(answer.json()["case_no"])
        self.promises.cases[key].add(case_no)
        return case_no

    async def read_case(self, case_no: str, headers: dict[str, str]) -> dict[str, Any] | None:
        answer = await self.tried(lambda: self.request("read", "GET", f"/caseflow/cases/{case_no}", headers=headers))
        return dict(answer.json()) if self.ok(answer, 200) else None

    async def handle(self, case_no: str) -> None:
        """Accept, review, approve; after a lost answer the case is read again: done is done."""
        headers = await self.officer()
        for action, reached in STEPS:
            for _ in range(TRIES):
                case = await self.read_case(case_no, headers)
                if case is None:
                    headers = await self.officer(headers)
                    continue
                if case["state"] in STATE_ORDER and STATE_ORDER.index(case["state"]) >= STATE_ORDER.index(reached):
                    break  # an earlier attempt went through; its answer was lost
                answer = await self.request("action", "POST", f"/caseflow/cases/{case_no}/actions",
                                            json={"action": action},
                                            headers={**headers, "If-Match": str(case["version"])})  # fmt: skip
                if self.ok(answer, 200):
                    self.promises.actions.append((case_no, action))
                    if action == "approve":
                        self.promises.approved.add(case_no)
                    break
                if answer is not None and answer.status_code == 401:
                    headers = await self.officer(headers)
                await asyncio.sleep(0.3)
            else:
                return

    # -- department pushes ----------------------------------------------------------------------
    async def push(self, kind: str, data: dict[str, Any]) -> bool:
        """One signed push (ADR 0003) as the registration centre's system; retried with the same event id."""
        self._pushes += 1
        event_id = f"chaos-{self.run}-{self._pushes}"
        body = json.dumps({"event_id": event_id, "type": kind, "occurred_at": datetime.now(UTC).isoformat(),
                           "data": data}, ensure_ascii=False).encode()  # fmt: skip

        async def attempt() -> httpx.Response | None:
            headers = signed_headers(BDCDJ_PARTNER, self.partner_secret, "POST", PUSH_PATH, body, nonce=new_nonce(),
                                     timestamp=int(time.time()))  # fmt: skip
            return await self.request("push", "POST", PUSH_PATH.removeprefix("/api/v1"), content=body,
                                      headers={**headers, "Content-Type": "application/json"})  # fmt: skip

        answer = await self.tried(attempt)
        if self.ok(answer, 200):
            self.promises.pushes.add(event_id)
            return True
        return False

    async def department_case(self, rng: random.Random, person: dict[str, Any], serial: str) -> None:
        """The department's own case for this person: received, accepted, sometimes its certificate."""
        department_case = f"BDC-{self.run}-{serial}"
        progress = {"department_case_id": department_case, "matter_code": BDCDJ_MATTER,
                    "applicant": person["id_number"], "applicant_kind": "person"}  # fmt: skip
        if not await self.push("case.progress", {**progress, "step": "received"}):
            return
        self.promises.mirrored.add(department_case)
        if not await self.push("case.progress", {**progress, "step": "accepted"}) or rng.random() > 0.4:
            return
        number = f"371402-{date.today():%Y}-{self._pushes:07d}"  # unique in the run: the push counter
        certificate = {"licence_type": "real_estate_certificate", "number": number, "holder": person["id_number"],
                       "holder_kind": "person", "holder_name": "混沌测", "issued_on": date.today().isoformat(),
                       "data": {"location": "山东省德州市德城区新湖大街8号", "usage": "住宅", "area": 89.5},
                       "department_case_id": department_case}  # fmt: skip
        if await self.push("licence.issued", certificate):
            self.promises.certificates.add(number)
