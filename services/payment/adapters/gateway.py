"""The payment gateway (支付渠道): opening a transaction and asking for a refund.

Modelled on WeChat Pay API v3 / UnionPay: the merchant (payment) opens a transaction for an
``out_trade_no`` (a payment attempt's id) and gets what the payer's client needs to pay (a
``prepay_id`` and a cashier ``pay_url``); the result comes later as a signed, asynchronous
notification (domain/signature.py, notifications.py). A refund is asked for the same way and
also answered by a notification.

Requests are JSON POSTs signed with kit.signing (ADR 0003 canonical string, HMAC-SHA256): key id =
``PAYMENT_MERCHANT_ID``, secret = ``PAYMENT_MERCHANT_SECRET``:

- ``POST {url}/transactions`` ``{"out_trade_no", "description", "amount_fen", "notify_url",
  "expire_minutes"}`` → 200/201 ``{"prepay_id", "pay_url", "expires_at"}``; the same
  out_trade_no again gets the same answer (a retry after a lost answer opens nothing twice);
- ``POST {url}/refunds`` ``{"out_refund_no", "out_trade_no", "amount_fen", "reason",
  "notify_url"}`` → 200/201 ``{"refund_id", "status"}``; idempotent on out_refund_no.

Answers: a 4xx problem other than 401/403/404/408/425/429 is a refusal for good
(``GatewayRefused``, with the problem's field and rule); 401/403/404/408/425/429, any 5xx, a
timeout or no connection is ``GatewayUnavailable`` (try again later).

One implementation, ``HttpGateway``: the sandbox (services/payment/sandbox_gateway.py, its own
process in development and tests) and a real gateway's adapter service both speak this API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from kit.signing import SignedJsonPoster, worth_retrying

log = logging.getLogger("yiwang.payment.gateway")


@dataclass(frozen=True)
class TransactionRequest:
    out_trade_no: str
    description: str
    amount_fen: int
    notify_url: str
    expire_minutes: int


@dataclass(frozen=True)
class Prepay:
    prepay_id: str
    pay_url: str
    expires_at: datetime | None


@dataclass(frozen=True)
class RefundRequest:
    out_refund_no: str
    out_trade_no: str
    amount_fen: int
    reason: str
    notify_url: str


@dataclass(frozen=True)
class RefundAccepted:
    refund_id: str
    status: str


class GatewayUnavailable(Exception):
    """No usable answer now: try again later."""


class GatewayRefused(Exception):
    """The gateway will not do it (final); ``field`` and ``rule`` when its problem named them."""

    def __init__(self, reason: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.field, self.rule = reason, field, rule


class PaymentGateway(Protocol):
    name: str

    async def create_transaction(self, request: TransactionRequest) -> Prepay: ...

    async def refund(self, request: RefundRequest) -> RefundAccepted: ...

    async def aclose(self) -> None: ...


class HttpGateway:
    """The gateway over HTTP (httpx: one low-volume call per payment attempt or refund)."""

    def __init__(self, url: str, *, name: str, merchant_id: str, secret: str, timeout: float = 10.0,
                 client: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        base = url.rstrip("/")
        self.name = name
        self.timeout = timeout
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._transactions = SignedJsonPoster(base + "/transactions", key_id=merchant_id, secret=secret,
                                              timeout=timeout, client=self._client, clock=clock)  # fmt: skip
        self._refunds = SignedJsonPoster(base + "/refunds", key_id=merchant_id, secret=secret, timeout=timeout,
                                         client=self._client, clock=clock)  # fmt: skip

    async def _post(self, poster: SignedJsonPoster, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await poster.post(payload)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise GatewayUnavailable(f"no answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"{type(exc).__name__}") from exc
        status = response.status_code
        if status in {200, 201}:
            try:
                data = response.json()
            except ValueError as exc:
                raise GatewayUnavailable(f"HTTP {status} without JSON") from exc
            if not isinstance(data, dict):
                raise GatewayUnavailable(f"HTTP {status} without a JSON object")
            return data
        if worth_retrying(status):
            if status in {401, 403}:
                log.error("the payment gateway refused payment's signature (HTTP %d): check PAYMENT_MERCHANT_*", status)
            raise GatewayUnavailable(f"HTTP {status}")
        raise _refusal(response)

    async def create_transaction(self, request: TransactionRequest) -> Prepay:
        data = await self._post(self._transactions, asdict(request))
        try:
            prepay_id, pay_url = data["prepay_id"], data["pay_url"]
            expires = data.get("expires_at")
            expires_at = datetime.fromisoformat(expires) if expires else None
        except (KeyError, TypeError, ValueError) as exc:
            raise GatewayUnavailable("an answer without prepay_id and pay_url") from exc
        if not (isinstance(prepay_id, str) and isinstance(pay_url, str) and 0 < len(prepay_id) <= 64
                and pay_url.startswith(("http://", "https://")) and len(pay_url) <= 500):  # fmt: skip
            raise GatewayUnavailable("an answer with an unusable prepay_id or pay_url")
        if expires_at is not None and expires_at.tzinfo is None:
            raise GatewayUnavailable("expires_at without a timezone")
        return Prepay(prepay_id, pay_url, expires_at)

    async def refund(self, request: RefundRequest) -> RefundAccepted:
        data = await self._post(self._refunds, asdict(request))
        refund_id, status = data.get("refund_id"), data.get("status")
        if not isinstance(refund_id, str) or not 0 < len(refund_id) <= 64 or not isinstance(status, str):
            raise GatewayUnavailable("an answer without refund_id and status")
        return RefundAccepted(refund_id, status[:20])

    async def aclose(self) -> None:
        await self._client.aclose()


def _refusal(response: httpx.Response) -> GatewayRefused:
    reason, field_name, rule = f"HTTP {response.status_code}", None, None
    try:
        problem = response.json()
        reason = str(problem.get("detail") or problem.get("title") or reason)[:200]
        first = (problem.get("errors") or [{}])[0]
        field_name = str(first["field"])[:100] if first.get("field") else None
        rule = str(first["rule"])[:50] if first.get("rule") else None
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        pass
    return GatewayRefused(reason, field=field_name, rule=rule)
