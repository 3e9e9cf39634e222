"""Telling the applicant at every step (SMS / WeChat template messages), and sending it.

``message`` is the row written (by ``steps.write``) in the transaction of the step it reports, so a
committed step always has its message. ``NotificationDispatcher`` sends those rows afterwards through
an ``SmsGateway`` adapter, the way the outbox relay publishes events:

- Each round claims due rows in id order with ONE statement (``UPDATE … WHERE id IN (due rows,
  LIMIT n) RETURNING``; on PostgreSQL the due rows are picked ``FOR UPDATE SKIP LOCKED``, and SQLite
  runs one writer at a time), which counts the attempt and sets ``next_attempt_at`` to the end of
  the claim. No transaction is held open while the gateway answers, so replicas never send the same
  row twice and a crashed sender's rows come back when its claim ends (``claim_seconds``; every
  send is bounded by ``send_timeout`` so a live sender finishes well within it).
- A success sets ``sent_at`` and the gateway's message id (each row in its own short transaction).
  A failure stores a short, masked ``last_error`` and schedules the row again with exponential
  backoff and jitter; after ``max_attempts`` sends tried it is not tried again and stays visible
  with its error (``sent_at`` empty).
- Delivery is at least once: a send whose answer was lost, or a crash between the gateway's answer
  and the commit, sends the row again. Every send carries ``client_ref`` = the row id, so the
  gateway can deduplicate the resend.
- Rows of one batch are sent concurrently; two messages to one applicant pending at the same time
  may arrive in either order (as SMS may anyway). Each text names its case and step.

Adapters: ``SandboxGateway`` (in memory, with latency, failures and lost answers as a real gateway
has them; deterministic when seeded) and ``HttpSmsGateway`` (the SMS gateway at
``CASEFLOW_SMS_GATEWAY_URL``). Its request is ``POST`` with the JSON body
``{"key_id", "phone", "recipient", "template", "text", "client_ref"}`` (UTF-8, no spaces; ``phone`` the
mobile number, ``recipient`` the applicant's subject id) and the headers::

    X-Yiwang-Key-Id:    CASEFLOW_SMS_GATEWAY_KEY_ID
    X-Yiwang-Timestamp: Unix seconds, decimal
    X-Yiwang-Signature: lower-case hex HMAC-SHA256(CASEFLOW_SMS_GATEWAY_SECRET, TIMESTAMP + "\\n" + BODY)

BODY being the exact bytes sent. A gateway should refuse a timestamp far from its clock and a
signature that does not match, and treat a repeated ``client_ref`` as the same message. Its answer
is a 2xx with the JSON ``{"message_id": "..."}``; anything else (another status, a timeout, no
message id) is a failure and the row is tried again.

Recipients are logged masked (kit.masking) and the text (with its query code) is never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import math
import random
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.masking import mask_id_number, mask_phone, mask_text
from kit.tasks import BatchLoop
from services.caseflow.models import Case, Notification
from services.caseflow.settings import Settings

log = logging.getLogger("yiwang.caseflow.notifications")

TEMPLATES = {
    "submit": "您的办件{case_no}（{matter}）已提交，查询码{query_code}。",
    # A case the department handles in its own system, mirrored on the platform (ADR 0021).
    "mirror": "您在部门窗口办理的{matter}已登记为办件{case_no}，查询码{query_code}，可凭此查询办理进度。",
    "request_correction": "您的办件{case_no}需要补正材料，请一次性补齐：{items}。",
    "resubmit": "您的办件{case_no}已补正提交。",
    "accept": "您的办件{case_no}已受理。",
    "deem_accept": "您的办件{case_no}自收到材料之日起视为受理（行政许可法第三十二条）。",
    "reject": "您的办件{case_no}不予受理：{reason}。",
    "review": "您的办件{case_no}已完成审查。",
    "approve": "您的办件{case_no}已准予许可。",
    "licence_issued": "您的办件{case_no}的电子证照（{licence}）已签发，可在电子证照库中查看和使用。",
    # Art. 50: renewal is asked for 30 days before expiry
    "licence_expiring": "您经办件{case_no}取得的电子证照（{licence}）将于{valid_until}到期，如需延续，请在到期30日前申请。",
    "deny": "您的办件{case_no}不予许可：{reason}。您有依法申请行政复议或者提起行政诉讼的权利。",
    "suspend": "您的办件{case_no}进入{reason}程序，预计{days}个工作日，期间不计入办理时限。",
    "resume": "您的办件{case_no}恢复办理。",
    "extend": "您的办件{case_no}办理时限延长{days}个工作日，理由：{reason}。",
    "deliver": "您的办件{case_no}办理结果已交寄。",
    # EMS: the officer's "deliver" hands the result to express; the carrier's events tell the rest.
    "deliver_ems": "您的办件{case_no}办理结果将由EMS寄递，交寄后短信告知运单号。",
    "shipment_dispatched": "您的办件{case_no}办理结果已交寄EMS，运单号{waybill}。",
    "shipment_out_for_delivery": "您的办件{case_no}办理结果（EMS运单号{waybill}）正在派送中，请保持电话畅通。",
    "shipment_signed_for": "您的办件{case_no}办理结果（EMS运单号{waybill}）已签收。",
    "originals_received": "您的办件{case_no}的材料原件已收到。",
    "complete": "您的办件{case_no}已办结，欢迎评价。",
    "withdraw": "您的办件{case_no}已撤回。",
}


def render(action: str, case: Case, detail: dict) -> str | None:
    if action == "deliver" and json.loads(case.delivery).get("method") == "ems":
        action = "deliver_ems"
    template = TEMPLATES.get(action)
    if template is None:
        return None
    items = "、".join(item["material"] for item in detail.get("items", []))
    return template.format(
        case_no=case.case_no,
        matter=case.matter_name,
        query_code=case.query_code,
        items=items,
        reason=detail.get("reason") or detail.get("suspension") or "",
        days=detail.get("expected_days") or detail.get("days") or "",
        licence=detail.get("licence") or "",
        valid_until=detail.get("valid_until") or "",
        waybill=detail.get("waybill") or "",
    )


def message(case: Case, action: str, detail: dict, at: datetime) -> dict | None:
    """The notification row telling the applicant about this step, or None when it tells nothing."""
    text = render(action, case, detail)
    if text is None:
        return None
    if action == "deliver" and json.loads(case.delivery).get("method") == "ems":
        action = "deliver_ems"
    # attempts is given: on PostgreSQL steps.write inserts every column, a missing one as NULL.
    return {"case_id": case.id, "recipient": case.applicant, "phone": case.contact_phone, "channel": "sms",
            "template": action, "text": text, "created_at": at, "sent_at": None, "attempts": 0}  # fmt: skip


async def sandbox_messages(session: AsyncSession, *, recipient: str | None, case_no: str | None) -> list[dict]:
    query = select(Notification, Case.case_no).join(Case, Case.id == Notification.case_id)
    if recipient:
        query = query.where(Notification.recipient == recipient)
    if case_no:
        query = query.where(Case.case_no == case_no)
    rows = (await session.execute(query.order_by(Notification.id.desc()).limit(200))).all()
    return [
        {
            "case_no": number,
            "recipient": n.recipient,
            "channel": n.channel,
            "template": n.template,
            "text": n.text,
            "created_at": n.created_at.isoformat(),
            "sent_at": n.sent_at.isoformat() if n.sent_at else None,
            "attempts": n.attempts,
            "last_error": n.last_error,
            "gateway_message_id": n.gateway_message_id,
        }  # fmt: skip
        for n, number in rows
    ]


# ---- masking ----------------------------------------------------------------------------------
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def masked_recipient(recipient: str) -> str:
    """A recipient as it may be logged: a mobile number as ``138****8000``, an ID number, credit
    code or anything else with only its first and last four characters."""
    return mask_phone(recipient) if _MOBILE.match(recipient) else mask_id_number(recipient)


def _short_error(error: BaseException) -> str:
    """What is stored and logged of a failure: masked (a gateway may echo the recipient), short."""
    return mask_text(f"{type(error).__name__}: {error}")[:500]


# ---- gateway adapters -------------------------------------------------------------------------
@dataclass(frozen=True)
class OutgoingMessage:
    """One message as a gateway takes it; ``client_ref`` (the row id) lets it deduplicate resends."""

    client_ref: str
    recipient: str
    channel: str
    template: str
    text: str
    phone: str | None = None  # the mobile number; an SMS gateway cannot send without it


class GatewayError(Exception):
    """The gateway did not take the message (refused, failed, timed out, answered nonsense)."""


class SmsGateway(Protocol):
    """An SMS gateway adapter."""

    async def send(self, message: OutgoingMessage) -> str:
        """Hand the message over; the gateway's message id, or an exception when it was not taken."""
        ...

    async def aclose(self) -> None:
        """Release connections (called once on shutdown)."""
        ...


@dataclass(frozen=True)
class Delivered:
    """A message the sandbox gateway took."""

    message: OutgoingMessage
    gateway_message_id: str
    at: datetime


class SandboxGateway:
    """An SMS gateway in memory that behaves like a real one: each send waits a random latency in
    ``latency`` (seconds); the first ``fail_first`` sends fail, then each fails with probability
    ``failure_rate``; with probability ``lost_answer_rate`` the message is taken but the answer is
    lost (the send raises, and the resend is deduplicated by ``client_ref`` as a real gateway
    does). Seeded, the same sends fail every run. ``calls`` records every send's client_ref (failed
    ones too), ``delivered`` what was taken, once per client_ref (the last ``keep`` of each).
    """

    def __init__(
        self,
        *,
        latency: tuple[float, float] = (0.0, 0.0),
        failure_rate: float = 0.0,
        lost_answer_rate: float = 0.0,
        fail_first: int = 0,
        seed: int | None = None,
        keep: int = 10_000,
    ) -> None:
        self.latency = latency
        self.failure_rate = failure_rate
        self.lost_answer_rate = lost_answer_rate
        self._failures_left = fail_first
        self._random = random.Random(seed)
        self._numbers = itertools.count(1)
        self._keep = keep
        self._taken: OrderedDict[str, str] = OrderedDict()  # client_ref → gateway message id
        self.calls: deque[str] = deque(maxlen=keep)
        self.delivered: deque[Delivered] = deque(maxlen=keep)

    async def send(self, message: OutgoingMessage) -> str:
        self.calls.append(message.client_ref)
        # Draw every number on every send, so a seeded run fails the same sends whatever the rates.
        delay, fails, loses = self._random.uniform(*self.latency), self._random.random(), self._random.random()
        if delay > 0:
            await asyncio.sleep(delay)  # the gateway's latency, not synchronisation
        if self._failures_left > 0:
            self._failures_left -= 1
            raise GatewayError("sandbox: simulated failure")
        if fails < self.failure_rate:
            raise GatewayError("sandbox: simulated failure")
        message_id = self._taken.get(message.client_ref)
        if message_id is None:  # a resend of a message already taken is the same message
            message_id = f"SBX{next(self._numbers):010d}"
            self._taken[message.client_ref] = message_id
            if len(self._taken) > self._keep:
                self._taken.popitem(last=False)
            self.delivered.append(Delivered(message, message_id, datetime.now(UTC)))
        if loses < self.lost_answer_rate:
            raise GatewayError("sandbox: simulated lost answer (the message was taken)")
        return message_id

    async def aclose(self) -> None:
        return None


def request_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Yiwang-Signature``: hex HMAC-SHA256 over ``timestamp + "\\n" + body`` (see the module doc)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"\n" + body, hashlib.sha256).hexdigest()


class HttpSmsGateway:
    """The SMS gateway over HTTPS: signed JSON POSTs (scheme in the module docstring).

    httpx is fine here: one short call per message, a few per second at most (DESIGN §7 keeps it
    off the gateway's hot path, not off low-volume calls). ``timeout`` bounds the whole call.
    """

    def __init__(
        self,
        url: str,
        *,
        key_id: str,
        secret: str,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.key_id = key_id
        self._secret = secret
        self.timeout = timeout
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._clock = clock

    async def send(self, message: OutgoingMessage) -> str:
        if not message.phone:
            raise GatewayError("no mobile number for this message")
        body = json.dumps(
            {
                "key_id": self.key_id,
                "phone": message.phone,
                "recipient": message.recipient,
                "template": message.template,
                "text": message.text,
                "client_ref": message.client_ref,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Yiwang-Key-Id": self.key_id,
            "X-Yiwang-Timestamp": timestamp,
            "X-Yiwang-Signature": request_signature(self._secret, timestamp, body),
        }
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(self.url, content=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise GatewayError(f"no answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise GatewayError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise GatewayError(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            message_id = response.json()["message_id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise GatewayError(f"HTTP {response.status_code} without a message_id") from exc
        if not isinstance(message_id, str | int) or isinstance(message_id, bool) or str(message_id) == "":
            raise GatewayError(f"HTTP {response.status_code} without a message_id")
        return str(message_id)

    async def aclose(self) -> None:
        await self._client.aclose()


def make_gateway(settings: Settings) -> SmsGateway:
    """The adapter the settings name; "http" without its URL, key id or secret refuses to start."""
    if settings.notification_adapter == "http":
        missing = [
            name
            for name, value in (
                ("CASEFLOW_SMS_GATEWAY_URL", settings.sms_gateway_url),
                ("CASEFLOW_SMS_GATEWAY_KEY_ID", settings.sms_gateway_key_id),
                ("CASEFLOW_SMS_GATEWAY_SECRET", settings.sms_gateway_secret.get_secret_value()),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"notification_adapter 'http' needs {', '.join(missing)}")
        return HttpSmsGateway(
            settings.sms_gateway_url,
            key_id=settings.sms_gateway_key_id,
            secret=settings.sms_gateway_secret.get_secret_value(),
        )
    # Development: as slow as a gateway; no simulated failures (settings do not name a rate yet).
    return SandboxGateway(latency=(0.02, 0.2))


# ---- the dispatcher ---------------------------------------------------------------------------
@dataclass
class Round:
    """What one round of the dispatcher did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    given_up: int = 0


@dataclass(frozen=True)
class _Claimed:
    id: int
    recipient: str
    channel: str
    template: str
    text: str
    attempts: int  # including this one; also the claim's token
    phone: str | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


_TABLE = Notification.__table__
MARK_SENT = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"), _TABLE.c.sent_at.is_(None))
    .values(sent_at=bindparam("at"), gateway_message_id=bindparam("gateway_id"), next_attempt_at=None)
)


class NotificationDispatcher(BatchLoop):
    """Sends unsent notification rows through ``gateway``; safe with several replicas (module doc)."""

    task_name = "notification-dispatcher"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: SmsGateway,
        *,
        channel: str = "sms",
        batch_size: int = 100,
        concurrency: int = 8,
        send_timeout: float = 10.0,
        max_attempts: int = 8,
        base_backoff: float = 10.0,
        backoff_factor: float = 3.0,
        max_backoff: float = 7200.0,
        poll_interval: float = 1.0,
        clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.channel = channel
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.send_timeout = send_timeout
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.backoff_factor = backoff_factor
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.clock = clock
        self._random = rng or random.Random()
        # A live sender finishes a batch within this (every send is cut at send_timeout), so a
        # claim only runs out when its sender died.
        self.claim_seconds = send_timeout * (math.ceil(batch_size / concurrency) + 1) + 5.0
        self.max_backoff = 30.0
        self.sent_total = 0

    async def batch(self) -> int:
        return (await self.dispatch_once()).claimed

    async def dispatch_once(self) -> Round:
        """Claim one batch of due rows and send them; raises when the database does."""
        claimed = await self._claim(self.clock())
        done = Round(claimed=len(claimed))
        if not claimed:
            return done
        limit = asyncio.Semaphore(self.concurrency)
        delivered: list[tuple[_Claimed, str]] = []
        outcomes = await asyncio.gather(*(self._send(row, limit, delivered) for row in claimed),
                                        return_exceptions=True)  # fmt: skip
        if delivered:
            await self._sent(delivered)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        for outcome in outcomes:
            if outcome == "sent":
                done.sent += 1
            elif outcome == "failed":
                done.failed += 1
            elif outcome == "given_up":
                done.failed += 1
                done.given_up += 1
        self.sent_total += done.sent
        if errors:
            raise errors[0]  # a row whose outcome was not stored: its claim runs out, it is sent again
        return done

    async def _claim(self, now: datetime) -> list[_Claimed]:
        """One statement: pick due rows in id order, count the attempt, hold them for claim_seconds."""
        due = (
            select(Notification.id)
            .where(
                Notification.sent_at.is_(None),
                Notification.channel == self.channel,
                Notification.attempts < self.max_attempts,
                or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
            )
            .order_by(Notification.id)
            .limit(self.batch_size)
        )
        async with self.sessionmaker() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)  # replicas claim different rows, never wait
            picked = due.cte("due")
            claim = (
                update(Notification)
                .where(Notification.id == picked.c.id)
                .values(
                    attempts=Notification.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=self.claim_seconds),
                )
                .returning(
                    Notification.id,
                    Notification.recipient,
                    Notification.channel,
                    Notification.template,
                    Notification.text,
                    Notification.attempts,
                    Notification.phone,
                )
            )
            rows = (await session.execute(claim)).all()
        return sorted((_Claimed(*row) for row in rows), key=lambda row: row.id)

    async def _send(self, row: _Claimed, limit: asyncio.Semaphore, delivered: list[tuple[_Claimed, str]]) -> str:
        outgoing = OutgoingMessage(str(row.id), row.recipient, row.channel, row.template, row.text, row.phone)
        async with limit:
            try:
                message_id = await asyncio.wait_for(self.gateway.send(outgoing), self.send_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                return await self._failed(row, exc)
        delivered.append((row, str(message_id)))
        log.info("notification %s (%s) sent to %s, attempt %d, gateway id %s",
                 row.id, row.template, masked_recipient(row.recipient), row.attempts, message_id)  # fmt: skip
        return "sent"

    async def _sent(self, delivered: list[tuple[_Claimed, str]]) -> None:
        """Mark a batch's deliveries in one transaction (one statement per row would cost a request's
        worth of CPU each). Only rows not yet marked: a sender whose claim ran out may have sent it too
        (the gateway deduplicates by client_ref), and the first mark stands."""
        params = [
            {"row_id": row.id, "at": self.clock(), "gateway_id": message_id[:100]} for row, message_id in delivered
        ]
        async with self.sessionmaker() as session, session.begin():
            await session.execute(MARK_SENT, params)

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failed sends (exponential, capped, jittered)."""
        delay = min(self.base_backoff * self.backoff_factor ** (attempts - 1), self.max_backoff)
        return delay * self._random.uniform(0.8, 1.2)

    async def _failed(self, row: _Claimed, error: BaseException) -> str:
        reason = _short_error(error)
        given_up = row.attempts >= self.max_attempts
        retry_at = None if given_up else self.clock() + timedelta(seconds=self.backoff(row.attempts))
        async with self.sessionmaker() as session, session.begin():
            # Only while the row is still this claim's (attempts unchanged): a sender whose claim
            # ran out must not push back a newer claim's row.
            await session.execute(
                update(Notification)
                .where(Notification.id == row.id, Notification.sent_at.is_(None))
                .where(Notification.attempts == row.attempts)
                .values(last_error=reason, next_attempt_at=retry_at)
            )
        if given_up:
            log.error("notification %s (%s) to %s given up after %d attempts: %s",
                      row.id, row.template, masked_recipient(row.recipient), row.attempts, reason)  # fmt: skip
            return "given_up"
        log.warning("notification %s (%s) to %s failed (attempt %d), next try at %s: %s",
                    row.id, row.template, masked_recipient(row.recipient), row.attempts,
                    retry_at.isoformat() if retry_at else "-", reason)  # fmt: skip
        return "failed"
