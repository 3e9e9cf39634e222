"""The EMS sandbox: a stand-in for the carrier's order API and its tracking push, run by
``make run`` on port 8090 (``python -m services.express.sandbox_ems``) and by the tests.

- ``POST /orders`` (signed by express: key id ``express``, secret ``EMS_SANDBOX_ORDER_SECRET``,
  kit.signing, nonces remembered for the signature window) books an order: 201 ``{"waybill",
  "expected_delivery"}`` with an EMS S10 waybill (``E`` + letter + 8 digits + check digit + ``CN``)
  drawn from ``EMS_SANDBOX_SEED``; the same ``reference`` again gets the same answer (200). A
  ``EMS_SANDBOX_REFUSAL_RATE`` share of orders is refused: 422 problem naming field and rule.
  ``EMS_SANDBOX_OUTAGE`` (or ``PUT /sandbox/outage``) answers 503 with Retry-After.
- Then every ``EMS_SANDBOX_STEP_SECONDS`` the order moves on: 10 收寄 → 20 运输中 (once or twice) →
  30 派送中 → 40 妥投; a delivery attempt fails (50 未妥投, then 30 派送中 again) with
  ``EMS_SANDBOX_FAILURE_RATE``, at most twice; ``EMS_SANDBOX_RETURN_RATE`` of orders end
  50 未妥投 → 60 退回. Each event is POSTed to ``EMS_SANDBOX_CALLBACK_URL`` as JSON ``{"waybill",
  "code", "text", "at", "event_id", "signed_by"?}`` signed as partner ``ems`` with
  ``EMS_SANDBOX_PARTNER_SECRET``. Like a real carrier's push it is imperfect on purpose:
  ``_DUPLICATE_RATE`` of events are sent twice (same event_id, fresh nonce), ``_REORDER_RATE`` of
  events are held back and sent after the next one, and each send waits up to ``_LATE_SECONDS``.
  Sends run concurrently (one task each), so even with no reordering asked for, two events close
  together may cross on the wire — receivers must order by ``at``, never by arrival.
  A failed send (no connection, timeout, 5xx, 401/403/404/408/409/425/429) is retried with
  exponential backoff (``_RETRY_BASE_SECONDS`` doubling to ``_RETRY_MAX_SECONDS``, jittered) up
  to ``_CALLBACK_MAX_ATTEMPTS`` times; a 400 or 422 is not retried (the event will not get better).
- ``GET /orders/{waybill}``: what the sandbox knows (plan, events, every send and its attempts), no
  personal data. ``GET /healthz``, ``GET /readyz`` (503 during an outage).

Each order's plan (path, duplicates, reorders, delays) is drawn from its own ``Random(seed:waybill)``,
so the same seed and the same orders give the same journeys whatever the timing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from kit.errors import Problem, problem_response
from kit.masking import mask_name
from kit.sandbox import SandboxWork, parse_body, post_until_taken, sandbox_app, serve
from kit.signing import new_nonce, signed_headers
from services.express.adapters.carrier import new_ems_waybill
from services.express.domain import s10
from services.express.domain.tracking import EMS_CODES

log = logging.getLogger("yiwang.express.sandbox_ems")

BEIJING = timezone(timedelta(hours=8), "CST")
# Answers to a callback that a later try may change (the receiver restarting, not knowing the
# waybill yet, rate limiting, a key being rotated); 400 and 422 say the event itself is wrong.
RETRY_STATUSES = frozenset({401, 403, 404, 408, 409, 425, 429})


class SandboxEmsSettings(BaseSettings):
    """``EMS_SANDBOX_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="EMS_SANDBOX_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8090
    # Unset: a new seed each start, so a platform restarted on yesterday's data (whose express
    # already holds the waybills of the first seed) is not handed the same waybills again. Tests
    # and reproductions set it: the same seed and the same orders give the same journeys.
    seed: int | None = None
    # Express signs its orders with key id "express" and this secret (EXPRESS_CARRIER_SECRET there).
    order_key_id: str = "express"
    order_secret: SecretStr = SecretStr("dev-express-ems-order-secret")
    # The sandbox signs its callbacks as partner "ems" (the gateway's partner table holds the secret).
    partner_id: str = "ems"
    partner_secret: SecretStr = SecretStr("dev-ems-partner-secret")
    callback_url: str = "http://127.0.0.1:8000/api/v1/express/callbacks/ems"
    refusal_rate: float = Field(default=0.05, ge=0, le=1)
    failure_rate: float = Field(default=0.2, ge=0, le=1)
    return_rate: float = Field(default=0.05, ge=0, le=1)
    duplicate_rate: float = Field(default=0.1, ge=0, le=1)
    reorder_rate: float = Field(default=0.1, ge=0, le=1)
    late_seconds: float = Field(default=0.0, ge=0)
    step_seconds: float = Field(default=2.0, gt=0)
    outage: bool = False
    transit_days: int = Field(default=3, ge=0)
    callback_timeout_seconds: float = Field(default=5.0, gt=0)
    retry_base_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=30.0, gt=0)
    callback_max_attempts: int = Field(default=20, ge=1)
    signature_max_age_seconds: int = Field(default=300, ge=1)


# ---- the order API's body ---------------------------------------------------------------------
_REFERENCE = r"^[A-Za-z0-9_-]{1,64}$"


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(pattern=r"^\+?[0-9-]{5,20}$")
    address: str = Field(min_length=1, max_length=200)
    division_code: str | None = Field(default=None, pattern=r"^[0-9]{6}$")


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(pattern=_REFERENCE)
    kind: Literal["deliver", "collect"]
    sender: PartyIn
    recipient: PartyIn
    note: str = Field(default="", max_length=200)


# ---- what the sandbox keeps -------------------------------------------------------------------
@dataclass
class Send:
    """One POST of one event (a duplicate is a second Send of the same event)."""

    event_id: str
    code: str
    copy: int
    attempts: int = 0
    delivered_at: str | None = None
    last_error: str | None = None
    gave_up: bool = False


@dataclass
class SandboxOrder:
    reference: str
    kind: str
    waybill: str | None
    refusal: dict[str, Any] | None
    created_at: datetime
    expected_delivery: datetime | None
    signed_by: str | None  # the recipient's name, masked, as the courier would record it
    plan: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        return {
            "waybill": self.waybill,
            "expected_delivery": self.expected_delivery.isoformat() if self.expected_delivery else None,
        }


REFUSALS = (
    ("recipient.address", "service_area", "收件地址超出服务范围 (address outside the service area)"),
    ("recipient.phone", "unreachable", "收件人电话无法接通 (the recipient's phone cannot be reached)"),
    ("sender.address", "pickup_area", "揽收地址不在揽收范围 (no pickup at this address)"),
)


def plan_journey(rng: random.Random, *, failure_rate: float, return_rate: float) -> list[str]:
    """EMS codes an order goes through, drawn from ``rng``."""
    codes = ["10", "20"] + (["20"] if rng.random() < 0.5 else []) + ["30"]
    if rng.random() < return_rate:
        return codes + ["50", "60"]
    for _ in range(2):
        if rng.random() >= failure_rate:
            break
        codes += ["50", "30"]
    return codes + ["40"]


class EmsSandbox(SandboxWork):
    """The sandbox's state and background work (one per app)."""

    def __init__(self, settings: SandboxEmsSettings, *, client: httpx.AsyncClient | None = None) -> None:
        self.outage = settings.outage
        if settings.seed is None:
            settings = settings.model_copy(update={"seed": random.SystemRandom().randrange(2**32)})
        self.settings = settings
        self._client = client or httpx.AsyncClient(timeout=settings.callback_timeout_seconds)
        super().__init__(close=self._client.aclose)
        self._random = random.Random(settings.seed)
        self._jitter = random.Random(settings.seed + 1)
        self.by_reference: dict[str, SandboxOrder] = {}
        self.by_waybill: dict[str, SandboxOrder] = {}
        self._callback_path = urlsplit(settings.callback_url).path or "/"
        query = urlsplit(settings.callback_url).query
        if query:
            self._callback_path += "?" + query

    # -- orders --
    def verify(self, request: Request, body: bytes) -> None:
        """Express's signature, and its nonce not seen within the window (401 problem otherwise)."""
        keys = {self.settings.order_key_id: [self.settings.order_secret.get_secret_value()]}
        self._verify_signed(request, body, keys, max_age=self.settings.signature_max_age_seconds)

    def book(self, order: OrderIn) -> tuple[int, SandboxOrder]:
        """201 and a new order, or 200 and the order already booked under this reference."""
        known = self.by_reference.get(order.reference)
        if known is not None:
            return 200, known
        now = datetime.now(BEIJING)
        if self._random.random() < self.settings.refusal_rate:
            field_name, rule, reason = self._random.choice(REFUSALS)
            refused = SandboxOrder(order.reference, order.kind, None, {"field": field_name, "rule": rule,
                                   "message": reason}, now, None, None)  # fmt: skip
            self.by_reference[order.reference] = refused
            return 422, refused
        waybill = new_ems_waybill(self._random, taken=set(self.by_waybill))
        booked = SandboxOrder(order.reference, order.kind, waybill, None, now,
                              now + timedelta(days=self.settings.transit_days), mask_name(order.recipient.name))  # fmt: skip
        rng = random.Random(f"{self.settings.seed}:{waybill}")
        booked.plan = plan_journey(rng, failure_rate=self.settings.failure_rate, return_rate=self.settings.return_rate)
        self.by_reference[order.reference] = booked
        self.by_waybill[waybill] = booked
        self._spawn(self._drive(booked, rng))
        return 201, booked

    # -- tracking push --
    async def _drive(self, order: SandboxOrder, rng: random.Random) -> None:
        """Emit the order's events one step apart, sending each (held, doubled, late) as planned."""
        assert order.waybill is not None
        held: dict[str, Any] | None = None
        last = len(order.plan) - 1
        for index, code in enumerate(order.plan):
            await asyncio.sleep(self.settings.step_seconds)  # the parcel's journey, not synchronisation
            event: dict[str, Any] = {
                "waybill": order.waybill,
                "code": code,
                "text": EMS_CODES[code].text,
                "at": datetime.now(BEIJING).isoformat(timespec="milliseconds"),
                "event_id": f"{order.waybill}-{index + 1:02d}",
            }
            if code == "40":
                event["signed_by"] = order.signed_by
            order.events.append(event)
            due = [event]
            if held is None and index < last and rng.random() < self.settings.reorder_rate:
                held = event  # goes out after the next event: a late, out-of-order callback
                continue
            if held is not None:
                due.append(held)
                held = None
            for item in due:
                copies = 2 if rng.random() < self.settings.duplicate_rate else 1
                for copy in range(copies):
                    delay = rng.uniform(0, self.settings.late_seconds) + copy * self.settings.step_seconds / 4
                    send = Send(item["event_id"], item["code"], copy)
                    order.sends.append(send)
                    self._spawn(self._deliver(item, send, delay))

    async def _deliver(self, event: dict[str, Any], send: Send, delay: float) -> None:
        """POST one event until the callback URL takes it (or the attempts run out)."""
        if delay > 0:
            await asyncio.sleep(delay)  # lateness the settings ask for
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        secret = self.settings.partner_secret.get_secret_value()

        def headers() -> dict[str, str]:
            # A fresh nonce and timestamp every time: the receiver refuses a nonce it has seen.
            return {
                "Content-Type": "application/json",
                **signed_headers(self.settings.partner_id, secret, "POST", self._callback_path, body,
                                 nonce=new_nonce(), timestamp=int(time.time())),
            }  # fmt: skip

        delivered = await post_until_taken(
            self._client, self.settings.callback_url, body, headers, send,
            max_attempts=self.settings.callback_max_attempts, retry_statuses=RETRY_STATUSES,
            retry_base_seconds=self.settings.retry_base_seconds, retry_max_seconds=self.settings.retry_max_seconds,
            jitter=self._jitter, now=lambda: datetime.now(BEIJING).isoformat(timespec="milliseconds"),
        )  # fmt: skip
        if not delivered:
            log.warning("ems sandbox gave up on %s (code %s): %s", send.event_id, send.code, send.last_error)


class OutageIn(BaseModel):
    outage: bool


def create_app(settings: SandboxEmsSettings | None = None, *, client: httpx.AsyncClient | None = None) -> FastAPI:
    """The sandbox EMS app; ``client`` is what it POSTs callbacks with (default: a new httpx client)."""
    settings = settings or SandboxEmsSettings()
    sandbox = EmsSandbox(settings, client=client)

    app = sandbox_app("EMS sandbox", sandbox, ready=lambda: not sandbox.outage)

    @app.post("/orders", status_code=201)
    async def create_order(request: Request) -> JSONResponse:
        body = await request.body()
        sandbox.verify(request, body)  # before anything else: an unsigned caller learns nothing
        if sandbox.outage:
            problem = Problem(503, "unavailable", "EMS is unavailable", "sandbox outage", headers={"Retry-After": "5"})
            return problem_response(problem, request.url.path)
        order = parse_body(OrderIn, body)
        status, booked = sandbox.book(order)
        if booked.refusal is not None:
            problem = Problem(422, "order-refused", "order refused", booked.refusal["message"], errors=[booked.refusal])
            return problem_response(problem, request.url.path)
        return JSONResponse(booked.answer(), status_code=status)

    @app.get("/orders/{waybill}")
    async def show_order(waybill: str) -> dict[str, Any]:
        order = sandbox.by_waybill.get(waybill) if s10.is_valid(waybill) else None
        if order is None:
            raise Problem(404, "not-found", "no such order", "the sandbox booked no order with this waybill")
        return {
            "waybill": order.waybill,
            "reference": order.reference,
            "kind": order.kind,
            "created_at": order.created_at.isoformat(),
            **order.answer(),
            "plan": order.plan,
            "events": order.events,
            "sends": [vars(send) for send in order.sends],
            "done": len(order.events) == len(order.plan) and all(s.delivered_at or s.gave_up for s in order.sends),
        }

    @app.put("/sandbox/outage")
    async def set_outage(body: OutageIn) -> dict[str, bool]:
        sandbox.outage = body.outage
        return {"outage": sandbox.outage}

    return app


def main() -> None:
    """``python -m services.express.sandbox_ems``: serve on EMS_SANDBOX_HOST:EMS_SANDBOX_PORT."""
    serve(create_app, SandboxEmsSettings())


if __name__ == "__main__":
    main()
