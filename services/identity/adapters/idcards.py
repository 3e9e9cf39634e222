"""身份证核验: checking an ID card read (number, name, validity, serial) against the population
registry, as a kiosk's card reader gives it (ADR 0025). A sandbox that behaves like the real
service and an HTTP implementation configured by settings."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from services.identity.adapters.registry import CheckUnavailable, post_check
from services.identity.domain.idcards import card_date_refusal, today_in_china


@dataclass(frozen=True)
class CardRead:
    id_number: str
    name: str
    valid_from: date
    valid_until: date | None  # None: 长期 (long-term)
    card_serial: str | None = None


@dataclass(frozen=True)
class CardCheckResult:
    passed: bool
    rule: str = ""  # which rule refused it (a slug), empty when passed
    reason: str = ""


class IdCardCheck(Protocol):
    async def check(self, card: CardRead) -> CardCheckResult: ...


class SandboxIdCardCheck:
    """Deterministic outcomes like SandboxRegistry's, plus the card's own checks.

    Sequence code (digits 15–17) ``998``: the service is down (CheckUnavailable); ``999``: no such
    person; a name starting with ``假``: name does not match the number; a card past its end date or
    not yet valid: refused; a card serial starting ``LOST``: reported lost (挂失). ``failure_rate``
    of the calls fail as the real service does now and then; every call takes ``delay_ms``.
    """

    def __init__(self, delay_ms: int = 5, failure_rate: float = 0.0, clock=lambda: datetime.now(UTC)) -> None:
        self.delay_ms = delay_ms
        self.failure_rate = failure_rate
        self.clock = clock
        self.calls = 0

    async def check(self, card: CardRead) -> CardCheckResult:
        self.calls += 1
        await asyncio.sleep(self.delay_ms / 1000)
        sequence = card.id_number[14:17]
        if sequence == "998" or (self.failure_rate and random.random() < self.failure_rate):
            raise CheckUnavailable("id card check timeout")
        if sequence == "999":
            return CardCheckResult(False, "registry_no_person", "no such person in the registry")
        if card.name.startswith("假"):
            return CardCheckResult(False, "registry_name_mismatch", "name does not match the number")
        refusal = card_date_refusal(card.valid_from, card.valid_until, today_in_china(self.clock()))
        if refusal is not None:
            return CardCheckResult(False, *refusal)
        if card.card_serial and card.card_serial.upper().startswith("LOST"):
            return CardCheckResult(False, "card_reported_lost", "this card was reported lost")
        return CardCheckResult(True)


class HttpIdCardCheck:
    """The real service: POST JSON {id_number, name, valid_from, valid_until, card_serial}, answer
    {"passed": bool, "rule": str, "reason": str}; anything else is CheckUnavailable."""

    def __init__(self, url: str, api_key: str, timeout: float) -> None:
        self.url = url
        self.api_key = api_key
        self.timeout = timeout

    async def check(self, card: CardRead) -> CardCheckResult:
        payload = {
            "id_number": card.id_number,
            "name": card.name,
            "valid_from": card.valid_from.isoformat(),
            "valid_until": card.valid_until.isoformat() if card.valid_until else None,
            "card_serial": card.card_serial,
        }
        body = await post_check(self.url, self.api_key, self.timeout, payload)
        if not isinstance(body, dict) or not isinstance(body.get("passed"), bool):
            raise CheckUnavailable("malformed answer")
        passed = body["passed"]
        rule = "" if passed else str(body.get("rule") or "id_card_check_failed")[:60]
        return CardCheckResult(passed, rule, str(body.get("reason", ""))[:200])
