"""The payment gateway sandbox: a stand-in for WeChat Pay / UnionPay, run by ``make run`` on port
8092 (``python -m services.payment.sandbox_gateway``) and by the tests.

- ``POST /transactions`` (signed by payment with kit.signing: key id ``PAYMENT_SANDBOX_MERCHANT_ID``,
  secret ``PAYMENT_SANDBOX_MERCHANT_SECRET``; nonces remembered for the signature window) opens a
  transaction: 201 ``{"prepay_id", "pay_url", "expires_at"}``; the same out_trade_no again → 200 and
  the same answer (another amount → 409). ``pay_url`` = ``{PUBLIC_URL}/cashier/{prepay_id}``.
- The cashier, where the payer (the demo, a test) pays: ``GET /cashier/{prepay_id}`` shows what is
  to be paid; ``POST /cashier/{prepay_id}`` ``{"result": "success" | "fail"}`` pays (a new
  ``transaction_id``, 28 digits like WeChat Pay's) or fails (the prepay stays payable). A paid
  prepay cannot be paid again (409); an expired one neither (410). For tests, ``"amount_fen"``
  makes the gateway report another amount than the one asked for.
- ``POST /refunds`` (signed like /transactions) ``{"out_refund_no", "out_trade_no", "amount_fen",
  "reason"}``: 201 ``{"refund_id", "status": "PROCESSING"}``; idempotent on out_refund_no; more than
  was paid or a transaction not paid → 422/409.
- Notifications: each result (``TRANSACTION.SUCCESS``, ``TRANSACTION.FAIL``, ``REFUND.SUCCESS``) is
  POSTed to the transaction's ``notify_url`` (``PAYMENT_SANDBOX_NOTIFY_URL`` when payment gave
  none) as JSON ``{"id", "create_time", "event_type", "resource": {…}}``, signed with the sandbox's
  key (domain/signature.py: ``Pay-Serial`` / ``Pay-Timestamp`` / ``Pay-Nonce`` / ``Pay-Signature``
  over ``timestamp\\nnonce\\nbody\\n``). Like a real gateway it is imperfect on purpose: each send
  waits up to ``DELAY_SECONDS``; ``DUPLICATE_RATE`` of notifications are sent twice (same id, a
  fresh nonce and signature); a send that is not answered 2xx is retried with backoff
  (``RETRY_BASE_SECONDS`` doubling to ``RETRY_MAX_SECONDS``, jittered; WeChat Pay retries on a
  schedule of 15 s … 3 h) up to ``NOTIFY_MAX_ATTEMPTS`` times; refunds succeed after
  ``REFUND_DELAY_SECONDS``.
- ``GET /transactions/{out_trade_no}``, ``GET /refunds/{out_refund_no}``: what the sandbox knows,
  every notification and its sends. ``GET /keys``: ``{serial: public key}`` (base64 DER).
  ``GET /healthz``, ``GET /readyz``.

The signing key: ``PAYMENT_SANDBOX_SIGNING_KEY`` (base64 PKCS#8 DER or PEM; Ed25519 or RSA), else
``PAYMENT_SANDBOX_SIGNING_KEY_FILE`` (an Ed25519 key made there on first start). Payment is given
the public half in ``PAYMENT_PROVIDER_KEYS``. Draws (ids, delays, duplicates) come from
``PAYMENT_SANDBOX_SEED``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from kit.errors import Problem
from kit.sandbox import SandboxWork, parse_body, post_until_taken, sandbox_app, serve
from kit.signing import new_nonce
from services.payment.domain import signature

log = logging.getLogger("yiwang.payment.sandbox_gateway")

BEIJING = timezone(timedelta(hours=8), "CST")
_ID = r"^[A-Za-z0-9_-]{6,32}$"


class SandboxGatewaySettings(BaseSettings):
    """``PAYMENT_SANDBOX_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="PAYMENT_SANDBOX_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8092
    seed: int | None = None
    public_url: str = "http://127.0.0.1:8092"  # what pay_url starts with: the cashier a client reaches
    merchant_id: str = "payment"
    merchant_secret: SecretStr = SecretStr("dev-payment-merchant-secret")
    signing_key: SecretStr = SecretStr("")
    signing_key_file: str = ".data/payment-sandbox-key.txt"  # base64 PKCS#8 DER (PEM is read too)
    key_serial: str = "sandbox-1"
    notify_url: str = "http://127.0.0.1:8000/api/v1/payment/notifications/sandbox"
    delay_seconds: float = Field(default=1.0, ge=0)
    duplicate_rate: float = Field(default=0.2, ge=0, le=1)
    refund_delay_seconds: float = Field(default=2.0, ge=0)
    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_max_seconds: float = Field(default=60.0, gt=0)
    notify_max_attempts: int = Field(default=15, ge=1)
    notify_timeout_seconds: float = Field(default=5.0, gt=0)
    signature_max_age_seconds: int = Field(default=300, ge=1)


def load_signing_key(settings: SandboxGatewaySettings) -> signature.PrivateKey:
    """The configured key, or the development key file (an Ed25519 key made on first start)."""
    secret = settings.signing_key.get_secret_value()
    if secret:
        return signature.load_private_key(secret)
    path = Path(settings.signing_key_file)
    if path.exists():
        return signature.load_private_key(path.read_text())
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(signature.private_text(key))
    path.chmod(0o600)
    return key


class TransactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out_trade_no: str = Field(pattern=_ID)
    description: str = Field(min_length=1, max_length=127)
    amount_fen: int = Field(ge=1, le=10**11)
    notify_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    expire_minutes: int = Field(default=30, ge=1, le=24 * 60)


class CashierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: Literal["success", "fail"]
    amount_fen: int | None = Field(default=None, ge=1, le=10**11, description="tests: report another amount")


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out_refund_no: str = Field(pattern=_ID)
    out_trade_no: str = Field(pattern=_ID)
    amount_fen: int = Field(ge=1, le=10**11)
    reason: str = Field(default="", max_length=80)
    notify_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")


@dataclass
class Send:
    copy: int
    attempts: int = 0
    delivered_at: str | None = None
    last_error: str | None = None
    gave_up: bool = False


@dataclass
class Notice:
    id: str
    event_type: str
    body: dict[str, Any]
    sends: list[Send] = field(default_factory=list)


@dataclass
class Transaction:
    out_trade_no: str
    description: str
    amount_fen: int
    notify_url: str
    prepay_id: str
    expires_at: datetime
    state: str = "NOTPAY"  # NOTPAY → SUCCESS; PAYERROR (may be paid again)
    transaction_id: str | None = None
    paid_amount_fen: int | None = None
    refunded_fen: int = 0
    notices: list[Notice] = field(default_factory=list)


@dataclass
class SandboxRefund:
    out_refund_no: str
    out_trade_no: str
    refund_id: str
    amount_fen: int
    notify_url: str
    status: str = "PROCESSING"
    notices: list[Notice] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(BEIJING)


class GatewaySandbox(SandboxWork):
    """The sandbox's state and background work (one per app)."""

    def __init__(self, settings: SandboxGatewaySettings, *, client: httpx.AsyncClient | None = None) -> None:
        if settings.seed is None:
            settings = settings.model_copy(update={"seed": random.SystemRandom().randrange(2**32)})
        self.settings = settings
        self._client = client or httpx.AsyncClient(timeout=settings.notify_timeout_seconds)
        super().__init__(close=self._client.aclose)
        self.key = load_signing_key(settings)
        self._random = random.Random(settings.seed)
        self._jitter = random.Random(settings.seed + 1)
        self.transactions: dict[str, Transaction] = {}
        self.by_prepay: dict[str, Transaction] = {}
        self.refunds: dict[str, SandboxRefund] = {}

    def _digits(self, n: int) -> str:
        return "".join(self._random.choice("0123456789") for _ in range(n))

    def verify(self, request: Request, body: bytes) -> None:
        keys = {self.settings.merchant_id: [self.settings.merchant_secret.get_secret_value()]}
        self._verify_signed(request, body, keys, max_age=self.settings.signature_max_age_seconds)

    # -- transactions --
    def open(self, order: TransactionIn) -> tuple[int, Transaction]:
        known = self.transactions.get(order.out_trade_no)
        if known is not None:
            if known.amount_fen != order.amount_fen:
                raise Problem(409, "out-trade-no-used", "out_trade_no already used",
                              "this out_trade_no was opened with another amount", rule="out_trade_no")  # fmt: skip
            return 200, known
        prepay_id = "wx" + _now().strftime("%d%H%M%S") + self._digits(16)
        opened = Transaction(order.out_trade_no, order.description, order.amount_fen,
                             order.notify_url or self.settings.notify_url, prepay_id,
                             _now() + timedelta(minutes=order.expire_minutes))  # fmt: skip
        self.transactions[order.out_trade_no] = opened
        self.by_prepay[prepay_id] = opened
        return 201, opened

    def answer(self, transaction: Transaction) -> dict[str, Any]:
        return {"prepay_id": transaction.prepay_id, "expires_at": transaction.expires_at.isoformat(),
                "pay_url": f"{self.settings.public_url.rstrip('/')}/cashier/{transaction.prepay_id}"}  # fmt: skip

    def pay(self, transaction: Transaction, body: CashierIn) -> Transaction:
        if transaction.state == "SUCCESS":
            raise Problem(409, "already-paid", "already paid", "this transaction is paid", rule="state")
        if _now() > transaction.expires_at:
            raise Problem(410, "expired", "expired", "this transaction expired unpaid", rule="expires_at")
        at = _now().isoformat(timespec="seconds")
        if body.result == "fail":
            transaction.state = "PAYERROR"
            resource = {"out_trade_no": transaction.out_trade_no, "trade_state": "PAYERROR",
                        "trade_state_desc": "支付失败，请重新支付", "amount": {"total": transaction.amount_fen,
                                                                        "currency": "CNY"}}  # fmt: skip
            self._notify(transaction.notices, transaction.notify_url, "TRANSACTION.FAIL", "支付失败", resource)
            return transaction
        transaction.state = "SUCCESS"
        transaction.transaction_id = "42000" + _now().strftime("%Y%m%d") + self._digits(15)
        transaction.paid_amount_fen = body.amount_fen or transaction.amount_fen
        resource = {"out_trade_no": transaction.out_trade_no, "transaction_id": transaction.transaction_id,
                    "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "success_time": at,
                    "amount": {"total": transaction.paid_amount_fen, "currency": "CNY"}}  # fmt: skip
        self._notify(transaction.notices, transaction.notify_url, "TRANSACTION.SUCCESS", "支付成功", resource)
        return transaction

    # -- refunds --
    def refund(self, body: RefundIn) -> tuple[int, SandboxRefund]:
        known = self.refunds.get(body.out_refund_no)
        if known is not None:
            return 200, known
        transaction = self.transactions.get(body.out_trade_no)
        if transaction is None or transaction.state != "SUCCESS":
            raise Problem(409, "not-paid", "transaction not paid", "only a paid transaction is refunded", rule="state")
        assert transaction.paid_amount_fen is not None
        if transaction.refunded_fen + body.amount_fen > transaction.paid_amount_fen:
            raise Problem(422, "validation", "Request is not valid", "amount_fen: more than was paid",
                          errors=[{"field": "amount_fen", "rule": "refundable", "message": "more than was paid"}])  # fmt: skip
        transaction.refunded_fen += body.amount_fen
        refund = SandboxRefund(body.out_refund_no, body.out_trade_no, "50" + self._digits(27), body.amount_fen,
                               body.notify_url or transaction.notify_url)  # fmt: skip
        self.refunds[body.out_refund_no] = refund
        self._spawn(self._finish_refund(refund, transaction))
        return 201, refund

    async def _finish_refund(self, refund: SandboxRefund, transaction: Transaction) -> None:
        await asyncio.sleep(self.settings.refund_delay_seconds)  # the bank's time, not synchronisation
        refund.status = "SUCCESS"
        resource = {"out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id,
                    "out_trade_no": refund.out_trade_no, "transaction_id": transaction.transaction_id,
                    "refund_status": "SUCCESS", "success_time": _now().isoformat(timespec="seconds"),
                    "amount": {"refund": refund.amount_fen, "total": transaction.paid_amount_fen,
                               "currency": "CNY"}}  # fmt: skip
        self._notify(refund.notices, refund.notify_url, "REFUND.SUCCESS", "退款成功", resource)

    # -- notifications --
    def _notify(self, notices: list[Notice], url: str, event_type: str, summary: str,
                resource: dict[str, Any]) -> None:  # fmt: skip
        notice_id = f"{self._digits(8)}-{self._digits(4)}-{self._digits(4)}-{self._digits(12)}"
        body = {"id": notice_id, "create_time": _now().isoformat(timespec="seconds"), "event_type": event_type,
                "summary": summary, "resource": resource}  # fmt: skip
        notice = Notice(notice_id, event_type, body)
        notices.append(notice)
        copies = 2 if self._random.random() < self.settings.duplicate_rate else 1
        for copy in range(copies):
            send = Send(copy)
            notice.sends.append(send)
            delay = self._random.uniform(0, self.settings.delay_seconds) + copy * self.settings.delay_seconds
            self._spawn(self._deliver(url, notice, send, delay))

    async def _deliver(self, url: str, notice: Notice, send: Send, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)  # the lateness the settings ask for
        body = json.dumps(notice.body, ensure_ascii=False, separators=(",", ":")).encode()

        def headers() -> dict[str, str]:
            return {"Content-Type": "application/json",
                    **signature.signed_headers(self.key, self.settings.key_serial, body,
                                               timestamp=int(time.time()), nonce=new_nonce())}  # fmt: skip

        if not await post_until_taken(
            self._client, url, body, headers, send, max_attempts=self.settings.notify_max_attempts,
            retry_base_seconds=self.settings.retry_base_seconds, retry_max_seconds=self.settings.retry_max_seconds,
            jitter=self._jitter, now=lambda: _now().isoformat(timespec="milliseconds"),
        ):  # fmt: skip
            log.warning("payment sandbox gave up on notification %s (%s): %s", notice.id, notice.event_type,
                        send.last_error)  # fmt: skip


def _notices(notices: list[Notice]) -> list[dict[str, Any]]:
    return [{"id": n.id, "event_type": n.event_type, "sends": [vars(s) for s in n.sends]} for n in notices]


def create_app(settings: SandboxGatewaySettings | None = None, *, client: httpx.AsyncClient | None = None) -> FastAPI:
    """The sandbox gateway app; ``client`` is what it POSTs notifications with."""
    settings = settings or SandboxGatewaySettings()
    sandbox = GatewaySandbox(settings, client=client)

    app = sandbox_app("payment gateway sandbox", sandbox)

    @app.post("/transactions", status_code=201)
    async def open_transaction(request: Request) -> JSONResponse:
        body = await request.body()
        sandbox.verify(request, body)
        status, transaction = sandbox.open(parse_body(TransactionIn, body))
        return JSONResponse(sandbox.answer(transaction), status_code=status)

    def by_prepay(prepay_id: str) -> Transaction:
        transaction = sandbox.by_prepay.get(prepay_id)
        if transaction is None:
            raise Problem(404, "not-found", "no such transaction", "no transaction with this prepay_id")
        return transaction

    @app.get("/cashier/{prepay_id}")
    async def cashier(prepay_id: str) -> dict[str, Any]:
        transaction = by_prepay(prepay_id)
        return {"prepay_id": prepay_id, "description": transaction.description, "amount_fen": transaction.amount_fen,
                "state": transaction.state, "expires_at": transaction.expires_at.isoformat()}  # fmt: skip

    @app.post("/cashier/{prepay_id}")
    async def pay(prepay_id: str, request: Request) -> dict[str, Any]:
        transaction = by_prepay(prepay_id)
        paid = sandbox.pay(transaction, parse_body(CashierIn, await request.body()))
        return {"out_trade_no": paid.out_trade_no, "state": paid.state, "transaction_id": paid.transaction_id}

    @app.get("/transactions/{out_trade_no}")
    async def show_transaction(out_trade_no: str) -> dict[str, Any]:
        transaction = sandbox.transactions.get(out_trade_no)
        if transaction is None:
            raise Problem(404, "not-found", "no such transaction", "no transaction with this out_trade_no")
        return {"out_trade_no": out_trade_no, "state": transaction.state, "amount_fen": transaction.amount_fen,
                "transaction_id": transaction.transaction_id, "paid_amount_fen": transaction.paid_amount_fen,
                "refunded_fen": transaction.refunded_fen, "notices": _notices(transaction.notices)}  # fmt: skip

    @app.post("/refunds", status_code=201)
    async def refund(request: Request) -> JSONResponse:
        body = await request.body()
        sandbox.verify(request, body)
        status, made = sandbox.refund(parse_body(RefundIn, body))
        return JSONResponse({"refund_id": made.refund_id, "status": made.status}, status_code=status)

    @app.get("/refunds/{out_refund_no}")
    async def show_refund(out_refund_no: str) -> dict[str, Any]:
        made = sandbox.refunds.get(out_refund_no)
        if made is None:
            raise Problem(404, "not-found", "no such refund", "no refund with this out_refund_no")
        return {"out_refund_no": out_refund_no, "out_trade_no": made.out_trade_no, "refund_id": made.refund_id,
                "amount_fen": made.amount_fen, "status": made.status, "notices": _notices(made.notices)}  # fmt: skip

    @app.get("/keys")
    async def keys() -> dict[str, str]:
        return {settings.key_serial: signature.public_text(sandbox.key)}

    return app


def main() -> None:
    """``python -m services.payment.sandbox_gateway``: serve on PAYMENT_SANDBOX_HOST:PORT."""
    serve(create_app, SandboxGatewaySettings())


if __name__ == "__main__":
    main()
