"""Ordering a pickup or a delivery from the carrier (EMS), who answers with a UPU S10 waybill.

``POST {EXPRESS_CARRIER_URL}/orders`` with the JSON body of ``ShipmentOrder.body()``, signed as ADR
0003 says (kit.signing: ``X-Partner-Id`` = ``EXPRESS_CARRIER_KEY_ID``, HMAC-SHA256 under
``EXPRESS_CARRIER_SECRET`` over ``METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nhex(sha256(body))``, PATH being
the request's own path, e.g. ``/orders``). ``reference`` (the shipment id) is the carrier's
idempotency key: asking again for the same reference returns the same waybill, so a retry after a
timeout never books a second courier. Answers:

- 200/201 ``{"waybill", "expected_delivery"?}``: booked (``CarrierOrder``); a waybill that is not a
  valid S10 number is no answer (``CarrierUnavailable``);
- 4xx problem (400, 409, 422 …): refused for good (``OrderRefused`` with the carrier's reason, and
  the problem's ``errors[0]`` field and rule when it names them);
- 401/403 (our key is wrong: an operator fixes the settings), 404 (wrong URL), 408, 425, 429, any
  5xx, a timeout or no connection: ``CarrierUnavailable`` — retry later with backoff.

Adapters: ``HttpCarrier`` (used against ``services/express/sandbox_ems.py`` in dev and tests, and
against a real carrier's gateway) and ``SandboxCarrier`` (in memory, for service tests that need
no callbacks).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import httpx

from kit.signing import SignedJsonPoster, worth_retrying
from services.express.domain import s10

log = logging.getLogger("yiwang.express.carrier")


@dataclass(frozen=True)
class Party:
    """Who sends or receives: the courier needs a name, a phone and an address."""

    name: str
    phone: str
    address: str
    division_code: str | None = None  # 6-digit administrative division (GB/T 2260), when known


@dataclass(frozen=True)
class ShipmentOrder:
    """What express asks the carrier to do: ``deliver`` a case's result from the department to the
    applicant, or ``collect`` the applicant's originals for the department (a pickup)."""

    reference: str  # express's shipment id; the carrier's idempotency key
    kind: Literal["deliver", "collect"]
    sender: Party
    recipient: Party
    note: str = ""  # what is inside, e.g. "准予行政许可决定书"

    def body(self) -> dict[str, Any]:
        """The JSON body of ``POST /orders``."""
        return asdict(self)


@dataclass(frozen=True)
class CarrierOrder:
    """The carrier's yes: its waybill (UPU S10) and when it expects to deliver."""

    waybill: str
    expected_delivery: datetime | None = None


class CarrierUnavailable(Exception):
    """No usable answer now (outage, timeout, 5xx, our key refused): retry later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OrderRefused(Exception):
    """The carrier will not take this order (an address it does not serve, a malformed order):
    final. ``field`` and ``rule`` when the carrier's problem named them."""

    def __init__(self, reason: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.rule = rule


class Carrier(Protocol):
    """A carrier adapter."""

    name: str

    async def create_order(self, order: ShipmentOrder) -> CarrierOrder:
        """Book ``order``: its waybill, or ``OrderRefused`` (final) / ``CarrierUnavailable`` (retry)."""
        ...

    async def aclose(self) -> None:
        """Release connections (called once on shutdown)."""
        ...


class HttpCarrier:
    """A carrier over HTTP (httpx: one low-volume call per shipment, DESIGN §7). ``timeout`` bounds
    each whole call, connection included."""

    name = "ems"

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
        self._poster = SignedJsonPoster(url.rstrip("/") + "/orders", key_id=key_id, secret=secret,
                                        timeout=timeout, client=client, clock=clock)  # fmt: skip
        self.url, self.path, self.key_id, self.timeout = self._poster.url, self._poster.path, key_id, timeout

    async def create_order(self, order: ShipmentOrder) -> CarrierOrder:
        try:
            response = await self._poster.post(order.body())
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise CarrierUnavailable(f"no answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:  # connection refused or reset, protocol errors
            raise CarrierUnavailable(f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status in {200, 201}:
            return self._booked(response)
        if worth_retrying(status):
            if status in {401, 403}:  # our key id or secret is wrong: retrying will not fix it alone
                log.error("carrier refused express's signature (HTTP %d): check EXPRESS_CARRIER_*", status)
            raise CarrierUnavailable(f"HTTP {status}")
        raise self._refusal(response)

    @staticmethod
    def _booked(response: httpx.Response) -> CarrierOrder:
        try:
            data = response.json()
            waybill = data["waybill"]
            expected = data.get("expected_delivery")
            expected_delivery = datetime.fromisoformat(expected) if expected else None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CarrierUnavailable(f"HTTP {response.status_code} without a waybill") from exc
        if not isinstance(waybill, str) or not s10.is_valid(waybill):
            raise CarrierUnavailable(f"HTTP {response.status_code} with a waybill that is not UPU S10")
        if expected_delivery is not None and expected_delivery.tzinfo is None:
            raise CarrierUnavailable("expected_delivery without a timezone")
        return CarrierOrder(waybill, expected_delivery)

    @staticmethod
    def _refusal(response: httpx.Response) -> OrderRefused:
        reason, field_name, rule = f"HTTP {response.status_code}", None, None
        try:
            problem = response.json()
            reason = str(problem.get("detail") or problem.get("title") or reason)[:200]
            first = (problem.get("errors") or [{}])[0]
            field_name = str(first["field"])[:100] if first.get("field") else None
            rule = str(first["rule"])[:50] if first.get("rule") else None
        except (ValueError, TypeError, AttributeError, IndexError):
            pass  # a refusal without a readable problem is still a refusal
        return OrderRefused(reason, field=field_name, rule=rule)

    async def aclose(self) -> None:
        await self._poster.aclose()


@dataclass
class SandboxCarrier:
    """A carrier in memory: EMS waybills (``E`` + letter + 8 digits + check + ``CN``) drawn from
    ``seed``, the same waybill again for the same reference; ``refuse`` holds references to refuse,
    a ``refusal_rate`` share of the others is refused; the first ``fail_first`` calls and ``down``
    raise ``CarrierUnavailable``. ``orders`` keeps what was booked."""

    seed: int | None = None
    refusal_rate: float = 0.0
    fail_first: int = 0
    down: bool = False
    refuse: set[str] = field(default_factory=set)
    transit_days: int = 3
    orders: dict[str, CarrierOrder] = field(default_factory=dict)
    calls: list[ShipmentOrder] = field(default_factory=list)
    name: str = "ems"

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    async def create_order(self, order: ShipmentOrder) -> CarrierOrder:
        self.calls.append(order)
        if self.down:
            raise CarrierUnavailable("sandbox: the carrier is down")
        if self.fail_first > 0:
            self.fail_first -= 1
            raise CarrierUnavailable("sandbox: simulated failure (HTTP 503)")
        if order.reference in self.orders:
            return self.orders[order.reference]
        if order.reference in self.refuse or self._random.random() < self.refusal_rate:
            self.refuse.add(order.reference)
            raise OrderRefused("address outside the service area", field="recipient.address", rule="service_area")
        booked = CarrierOrder(new_ems_waybill(self._random, taken={o.waybill for o in self.orders.values()}),
                              datetime.now(UTC) + timedelta(days=self.transit_days))  # fmt: skip
        self.orders[order.reference] = booked
        return booked

    async def aclose(self) -> None:
        return None


# EX–EZ need a bilateral agreement (UPU S10 Table 1), so the sandbox stays within EA–EW.
EMS_SECOND_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVW"


def new_ems_waybill(rng: random.Random, *, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A fresh EMS waybill drawn from ``rng`` (deterministic for a seeded ``rng``), not in ``taken``."""
    while True:
        waybill = s10.build("E" + rng.choice(EMS_SECOND_LETTERS), f"{rng.randrange(100_000_000):08d}", "CN")
        if waybill not in taken:
            return waybill
