"""The department-system sandbox: a stand-in for the real-estate registration centre's own system
(德州市不动产登记中心, BDCDJ), run by ``make run`` on port 8091 (``python -m
services.exchange.sandbox_department``) and by the tests. It is what a department's integrators
build against (ADR 0020, ADR 0019).

- ``POST /webhooks`` receives the platform's webhooks and verifies them with the
  ``standardwebhooks`` library and ``BDCDJ_SANDBOX_WEBHOOK_SECRET`` (the secret exchange's seed
  subscribed it with): a bad or missing signature, or a timestamp out of the 5-minute window, is
  401; a ``webhook-id`` it already has is answered 200 and ignored. What it accepted is kept in
  arrival order (``GET /sandbox/received``).
- ``POST /sandbox/outage`` ``{"on": true}`` takes it down (every webhook answered 503, readyz 503)
  until ``{"on": false}``: the platform retries, and what was missed arrives in order.
- Like the real centre: on ``case.accepted`` of its own department it works the case in its own
  system and, ``STEP_SECONDS`` later, pushes a ``case.decision`` (approve) — only that: the
  platform's licence service issues a platform case's result licence itself on approval.
  ``POST /sandbox/own-cases`` ``{applicant, applicant_kind, matter_code}`` starts a case it handles
  itself at its own counter: ``case.progress`` received → accepted → approved, its 不动产权证书
  (``licence.issued``, licence type ``real_estate_certificate``), then completed, ``STEP_SECONDS``
  apart.
- Pushes go to ``PUSH_URL`` (the gateway's ``/api/v1/departments/<code>/events``) signed as partner
  ``PARTNER_ID`` with ``PARTNER_SECRET`` (ADR 0003 scheme, kit.signing), one case's pushes in order;
  a push that got no answer, a 5xx or a 429 is sent again (same event id, fresh nonce), with
  backoff. Every answer (receipt or problem) is kept: ``GET /sandbox/receipts``.
- ``GET /healthz``, ``GET /readyz``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from contracts.departments import CODE, SUBJECT_ID
from kit.sandbox import SandboxWork, sandbox_app, serve
from kit.signing import SignedJsonPoster

log = logging.getLogger("yiwang.exchange.sandbox_department")

BEIJING = timezone(timedelta(hours=8), "CST")
RETRY_STATUSES = frozenset({408, 425, 429})


class SandboxDepartmentSettings(BaseSettings):
    """``BDCDJ_SANDBOX_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="BDCDJ_SANDBOX_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8091
    department: str = "BDCDJ"
    # The Standard Webhooks secret exchange signs this department's webhooks with (its seed
    # subscribes the sandbox with it: EXCHANGE_DEMO_WEBHOOK_SECRET there).
    webhook_secret: SecretStr = SecretStr("")
    partner_id: str = "dept-bdcdj"
    partner_secret: SecretStr = SecretStr("")
    push_url: str = "http://127.0.0.1:8000/api/v1/departments/BDCDJ/events"
    step_seconds: float = Field(default=5.0, ge=0)
    licence_type: str = "real_estate_certificate"
    # The holder's name on an own case's certificate when the request gives none.
    holder_name: str = "张三"
    push_timeout_seconds: float = Field(default=5.0, gt=0)
    push_max_attempts: int = Field(default=8, ge=1)
    retry_base_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=30.0, gt=0)
    outage: bool = False


class OutageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool


class OwnCaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    applicant: str = Field(pattern=SUBJECT_ID)
    applicant_kind: Literal["person", "enterprise"]
    matter_code: str = Field(pattern=CODE)
    holder_name: str | None = Field(default=None, min_length=1, max_length=200)


class DepartmentSandbox(SandboxWork):
    """What the sandbox knows: webhooks received, pushes sent and their answers."""

    def __init__(self, settings: SandboxDepartmentSettings, *, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.outage = settings.outage
        self.received: list[dict[str, Any]] = []
        self.seen_ids: set[str] = set()
        self.duplicates = 0
        self.refused = 0
        self.receipts: list[dict[str, Any]] = []
        # Pushes are signed JSON POSTs (ADR 0003), each try with a new nonce.
        self._poster = SignedJsonPoster(settings.push_url, key_id=settings.partner_id,
                                        secret=settings.partner_secret.get_secret_value(),
                                        timeout=settings.push_timeout_seconds, client=client)  # fmt: skip
        super().__init__(close=self._poster.aclose)
        self._numbers = itertools.count(1)
        self._verifier = StandardWebhook(settings.webhook_secret.get_secret_value()) if (
            settings.webhook_secret.get_secret_value()
        ) else None  # fmt: skip

    # ---- webhooks in ---------------------------------------------------------------------------
    def receive(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """One webhook: (status, answer). Verified first; a duplicate id changes nothing."""
        if self.outage:
            return 503, {"error": "the department system is down (sandbox outage)"}
        if self._verifier is None:
            return 503, {"error": "no webhook secret configured"}
        try:
            webhook = self._verifier.verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            self.refused += 1
            return 401, {"error": f"signature: {exc}"}
        webhook_id = headers.get("webhook-id", "")
        if webhook_id in self.seen_ids:
            self.duplicates += 1
            return 200, {"duplicate": True}
        self.seen_ids.add(webhook_id)
        self.received.append({"webhook_id": webhook_id, "received_at": _now_text(), **webhook})
        data = webhook.get("data") or {}
        if webhook.get("type") == "case.accepted" and data.get("department") == self.settings.department:
            self._spawn(self._work_platform_case(data))
        return 200, {"ok": True}

    # ---- cases worked in the department's own system -------------------------------------------
    async def _work_platform_case(self, case: dict[str, Any]) -> None:
        """Approve the case, a step after it arrived. No certificate: for a platform case the
        platform's licence service issues the result licence on approval (ADR 0020)."""
        case_no = case["case_no"]
        await asyncio.sleep(self.settings.step_seconds)
        await self.push("case.decision", f"bdcdj-{case_no}-approve", {"case_no": case_no, "action": "approve"})

    def start_own_case(self, case: OwnCaseIn) -> str:
        """A case the centre handles itself: its id; its progress is pushed in the background."""
        department_case_id = f"BDC-{datetime.now(BEIJING):%Y%m%d}-{next(self._numbers):05d}"
        self._spawn(self._work_own_case(department_case_id, case))
        return department_case_id

    async def _work_own_case(self, department_case_id: str, case: OwnCaseIn) -> None:
        base = {"department_case_id": department_case_id, "matter_code": case.matter_code,
                "applicant": case.applicant, "applicant_kind": case.applicant_kind}  # fmt: skip
        for step in ("received", "accepted", "approved"):
            await self.push("case.progress", f"{department_case_id}-{step}", {**base, "step": step})
            await asyncio.sleep(self.settings.step_seconds)
        certificate = self._certificate(case.applicant, case.applicant_kind, case.holder_name or self.settings.holder_name,
                                        department_case_id=department_case_id)  # fmt: skip
        await self.push("licence.issued", f"{department_case_id}-certificate", certificate)
        await asyncio.sleep(self.settings.step_seconds)
        await self.push("case.progress", f"{department_case_id}-completed", {**base, "step": "completed"})

    def _certificate(self, holder: str, kind: str, name: str, **link: str) -> dict[str, Any]:
        today = datetime.now(BEIJING).date()
        serial = next(self._numbers)
        return {
            "licence_type": self.settings.licence_type,
            "number": f"鲁({today.year})德州市不动产权第{serial:07d}号",
            "holder": holder, "holder_kind": kind, "holder_name": name, "issued_on": today.isoformat(),
            "valid_until": None,
            "data": {"location": f"德州市德城区新华路{serial}号", "unit_number": f"371402001001GB{serial:05d}F0001",
                     "right_type": "国有建设用地使用权/房屋所有权", "usage": "城镇住宅用地/住宅", "area": 89.5,
                     "land_term_until": (date(today.year + 70, 1, 1)).isoformat()},
            **link,
        }  # fmt: skip

    # ---- pushes out ----------------------------------------------------------------------------
    async def push(self, push_type: str, event_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """POST one signed push until it is answered for good; the answer is kept and returned."""
        payload = {"event_id": event_id, "type": push_type, "occurred_at": _now_text(), "data": data}
        record: dict[str, Any] = {"event_id": event_id, "type": push_type, "attempts": 0, "status": None,
                                  "answer": None, "error": None}  # fmt: skip
        for attempt in range(1, self.settings.push_max_attempts + 1):
            record["attempts"] = attempt
            try:
                response = await self._poster.post(payload)
            except (httpx.HTTPError, TimeoutError) as exc:
                record["error"] = type(exc).__name__
            else:
                record["status"] = response.status_code
                with suppress(ValueError):
                    record["answer"] = response.json()
                if response.status_code < 500 and response.status_code not in RETRY_STATUSES:
                    record["error"] = None if response.status_code < 300 else f"HTTP {response.status_code}"
                    break
                record["error"] = f"HTTP {response.status_code}"
            if attempt < self.settings.push_max_attempts:
                await asyncio.sleep(
                    min(self.settings.retry_base_seconds * 2 ** (attempt - 1), self.settings.retry_max_seconds)
                )
        self.receipts.append(record)
        if record["error"]:
            log.warning("bdcdj sandbox: push %s (%s) not taken: %s", event_id, push_type, record["error"])
        return record


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def create_app(
    settings: SandboxDepartmentSettings | None = None, *, client: httpx.AsyncClient | None = None
) -> FastAPI:
    """The sandbox department system; ``client`` is what it pushes with (default: a new one)."""
    settings = settings or SandboxDepartmentSettings()
    sandbox = DepartmentSandbox(settings, client=client)

    app = sandbox_app(f"{settings.department} department system sandbox", sandbox, ready=lambda: not sandbox.outage)

    @app.post("/webhooks")
    async def webhooks(request: Request) -> JSONResponse:
        status, answer = sandbox.receive(await request.body(), dict(request.headers))
        return JSONResponse(answer, status_code=status)

    @app.get("/sandbox/received")
    async def received() -> dict[str, Any]:
        return {"items": sandbox.received, "duplicates": sandbox.duplicates, "refused": sandbox.refused}

    @app.post("/sandbox/outage")
    async def outage(body: OutageIn) -> dict[str, bool]:
        sandbox.outage = body.on
        return {"on": sandbox.outage}

    @app.post("/sandbox/own-cases", status_code=202)
    async def own_case(body: OwnCaseIn) -> dict[str, str]:
        return {"department_case_id": sandbox.start_own_case(body)}

    @app.get("/sandbox/receipts")
    async def receipts() -> dict[str, Any]:
        return {"items": sandbox.receipts}

    return app


def main() -> None:
    """``python -m services.exchange.sandbox_department``: serve on BDCDJ_SANDBOX_HOST:PORT."""
    serve(create_app, SandboxDepartmentSettings())


if __name__ == "__main__":
    main()
