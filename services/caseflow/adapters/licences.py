"""Asking the licence service whether an e-licence may serve as a case's material (电子证照复用).

``POST {CASEFLOW_LICENCE_URL}/checks`` (the licence service's internal endpoint; the gateway never
routes it) with the JSON body ``{"identifier", "licence_type", "holder", "case_no", "material"}``,
signed as ADR 0003 says (kit.signing: ``X-Partner-Id`` = ``CASEFLOW_LICENCE_KEY_ID``, HMAC-SHA256
under ``CASEFLOW_LICENCE_SECRET`` over ``METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nhex(sha256(body))``, PATH
being the request's own path, e.g. ``/checks``). Answers:

- 200 ``{"identifier", "licence_type", "number", "holder", "holder_name", "status": "valid",
  "version", "valid_until"}``: usable; the licence service writes the read to the holder's access log;
- 422 problem whose ``errors[0].rule`` is ``not_found``, ``holder``, ``licence_type`` or ``status``:
  refused (``LicenceRefused``);
- anything else (401, 5xx, a timeout, no connection, an answer that does not match the question):
  ``LicenceUnavailable``, and the submission is refused with 503 (nothing is created).

``POST {CASEFLOW_LICENCE_URL}/holdings`` (internal, signed the same way) with ``{"holder",
"licence_types", "purpose", "case_no"}`` answers 200 ``{"holder", "holder_name", "licences": [{"identifier",
"licence_type", "number", "status", "valid_until", "data"}]}``: the holder's licences of those types
(秒批 facts, 零填报 values), each read logged; anything else is ``LicenceUnavailable``.

Adapters: ``HttpLicences`` and ``SandboxLicences`` (in memory, holding the licences registered in
it, refusing by the same rules in the same order, with latency and failures as a real service).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal, Protocol

import httpx

from kit.masking import mask_id_number
from kit.signing import SignedJsonPoster
from services.caseflow.domain.instant import Holding

log = logging.getLogger("yiwang.caseflow.licences")

Rule = Literal["not_found", "holder", "licence_type", "status"]
RULES: tuple[Rule, ...] = ("not_found", "holder", "licence_type", "status")


@dataclass(frozen=True)
class LicenceCheck:
    """One question: may ``holder`` use this licence, of this type, as ``material`` (of ``case_no``)?"""

    identifier: str
    licence_type: str
    holder: str
    material: str
    case_no: str | None = None

    def body(self) -> dict[str, str | None]:
        return {
            "identifier": self.identifier,
            "licence_type": self.licence_type,
            "holder": self.holder,
            "case_no": self.case_no,
            "material": self.material,
        }


@dataclass(frozen=True)
class CheckedLicence:
    """The licence service's yes: what the case records (never a copy of the licence's data)."""

    identifier: str
    licence_type: str
    number: str
    version: int
    valid_until: date | None


class LicenceRefused(Exception):
    """The licence may not serve: ``rule`` is one of RULES."""

    def __init__(self, rule: Rule) -> None:
        super().__init__(rule)
        self.rule = rule


class LicenceUnavailable(Exception):
    """No usable answer. ``maybe_read``: the question may have reached the service (which then logged
    a read in the holder's access log) — false only when no connection was made."""

    def __init__(self, reason: str, *, maybe_read: bool = True) -> None:
        super().__init__(reason)
        self.maybe_read = maybe_read


class LicenceService(Protocol):
    """A licence service adapter."""

    async def check(self, question: LicenceCheck) -> CheckedLicence:
        """The licence if it may serve; ``LicenceRefused`` or ``LicenceUnavailable`` otherwise."""
        ...

    async def holdings(self, holder: str, licence_types: list[str], *, purpose: str,
                       case_no: str | None = None) -> list[Holding]:  # fmt: skip
        """The holder's licences of these types (any status); ``LicenceUnavailable`` without an answer."""
        ...

    async def aclose(self) -> None:
        """Release connections (called once on shutdown)."""
        ...


# ---- the sandbox -------------------------------------------------------------------------------
@dataclass
class SandboxLicence:
    """A licence the sandbox holds."""

    identifier: str
    licence_type: str
    holder: str
    number: str
    holder_name: str = ""
    status: Literal["valid", "suspended", "revoked", "expired"] = "valid"
    version: int = 1
    valid_until: date | None = None
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxRead:
    """An access-log line as the licence service writes one for a granted check."""

    identifier: str
    reader: str
    case_no: str | None
    purpose: str


@dataclass
class SandboxLicences:
    """The licence service in memory: answers from the licences ``register``-ed in it, refusing by
    the contract's rules in its order (not_found, holder, licence_type, status — a licence past its
    ``valid_until`` is refused as ``status``); each check waits a latency drawn from ``latency``;
    the first ``fail_first`` checks and then a ``failure_rate`` share fail as an outage would;
    ``down`` makes every check fail without reaching the service. ``calls`` keeps every question,
    ``access_log`` every granted read."""

    latency: tuple[float, float] = (0.0, 0.0)
    failure_rate: float = 0.0
    fail_first: int = 0
    seed: int | None = None
    today: Callable[[], date] = date.today
    down: bool = False
    licences: dict[str, SandboxLicence] = field(default_factory=dict)
    calls: list[LicenceCheck] = field(default_factory=list)
    access_log: list[SandboxRead] = field(default_factory=list)
    holding_calls: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def register(self, identifier: str, *, licence_type: str, holder: str, number: str | None = None,
                 **more: object) -> SandboxLicence:  # fmt: skip
        """Hold a licence (``more``: holder_name, status, version, valid_until)."""
        licence = SandboxLicence(identifier, licence_type, holder, number or f"NO-{identifier}", **more)  # type: ignore[arg-type]
        self.licences[identifier] = licence
        return licence

    def change(self, identifier: str, **changes: object) -> None:
        """Change a held licence (suspend it, let it expire, re-issue it under a new version)."""
        self.licences[identifier] = replace(self.licences[identifier], **changes)  # type: ignore[arg-type]

    async def _answer_or_fail(self) -> None:
        """What every call meets first: the service down, its latency, its failures (``fail_first``,
        then at ``failure_rate``)."""
        delay, fails = self._random.uniform(*self.latency), self._random.random()
        if self.down:
            raise LicenceUnavailable("sandbox: the licence service is down", maybe_read=False)
        if delay > 0:
            await asyncio.sleep(delay)  # the service's latency, not synchronisation
        if self.fail_first > 0:
            self.fail_first -= 1
            raise LicenceUnavailable("sandbox: simulated failure (HTTP 503)")
        if fails < self.failure_rate:
            raise LicenceUnavailable("sandbox: simulated failure (HTTP 503)")

    async def check(self, question: LicenceCheck) -> CheckedLicence:
        self.calls.append(question)
        await self._answer_or_fail()
        licence = self.licences.get(question.identifier)
        if licence is None:
            raise LicenceRefused("not_found")
        if licence.holder != question.holder:
            raise LicenceRefused("holder")
        if licence.licence_type != question.licence_type:
            raise LicenceRefused("licence_type")
        expired = licence.valid_until is not None and licence.valid_until < self.today()
        if licence.status != "valid" or expired:
            raise LicenceRefused("status")
        self.access_log.append(SandboxRead(licence.identifier, "caseflow", question.case_no,
                                           f"material:{question.material}"))  # fmt: skip
        return CheckedLicence(licence.identifier, licence.licence_type, licence.number, licence.version,
                              licence.valid_until)  # fmt: skip

    async def holdings(self, holder: str, licence_types: list[str], *, purpose: str,
                       case_no: str | None = None) -> list[Holding]:  # fmt: skip
        self.holding_calls.append((holder, tuple(licence_types), purpose))
        await self._answer_or_fail()
        found = []
        for licence in self.licences.values():
            if licence.holder != holder or licence.licence_type not in licence_types:
                continue
            status = licence.status
            if status == "valid" and licence.valid_until is not None and licence.valid_until < self.today():
                status = "expired"
            self.access_log.append(SandboxRead(licence.identifier, "caseflow", case_no, purpose))
            found.append(Holding(licence.identifier, licence.licence_type, licence.number, status,
                                 licence.valid_until, dict(licence.data)))  # fmt: skip
        return found

    async def aclose(self) -> None:
        return None


# ---- over HTTP ---------------------------------------------------------------------------------
class HttpLicences:
    """The licence service over HTTP (httpx: one short internal call per licence material, DESIGN §7
    keeps it off the gateway's hot path only). ``timeout`` bounds each whole call."""

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
        client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._poster = SignedJsonPoster(url.rstrip("/") + "/checks", key_id=key_id, secret=secret,
                                        timeout=timeout, client=client, clock=clock)  # fmt: skip
        self._holdings = SignedJsonPoster(url.rstrip("/") + "/holdings", key_id=key_id, secret=secret,
                                          timeout=timeout, client=client, clock=clock)  # fmt: skip
        self.url, self.path, self.key_id, self.timeout = self._poster.url, self._poster.path, key_id, timeout

    async def _answer(self, poster: SignedJsonPoster, payload: dict[str, Any], *, rule_on_422: bool) -> httpx.Response:
        """POST ``payload``: the 200 answer; with ``rule_on_422`` a 422 is the service's refusal
        naming its rule (LicenceRefused); anything else LicenceUnavailable."""
        try:
            response = await poster.post(payload)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LicenceUnavailable(f"no answer within {self.timeout:g} s") from exc
        except httpx.ConnectError as exc:
            raise LicenceUnavailable(f"no connection: {exc}", maybe_read=False) from exc
        except httpx.HTTPError as exc:
            raise LicenceUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if rule_on_422 and response.status_code == 422:
            raise LicenceRefused(self._rule(response))
        if response.status_code != 200:
            if response.status_code in {401, 403}:  # our key or the service's key list is wrong
                log.error("licence service refused caseflow's signature (HTTP %d)", response.status_code)
            raise LicenceUnavailable(f"HTTP {response.status_code}", maybe_read=response.status_code >= 500)
        return response

    async def check(self, question: LicenceCheck) -> CheckedLicence:
        response = await self._answer(self._poster, question.body(), rule_on_422=True)
        return self._checked(question, response)

    @staticmethod
    def _rule(response: httpx.Response) -> Rule:
        try:
            rule = response.json()["errors"][0]["rule"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LicenceUnavailable("HTTP 422 without a rule") from exc
        if rule not in RULES:
            raise LicenceUnavailable(f"HTTP 422 with an unknown rule {str(rule)[:40]!r}")
        return rule

    @staticmethod
    def _checked(question: LicenceCheck, response: httpx.Response) -> CheckedLicence:
        try:
            data = response.json()
            checked = CheckedLicence(
                identifier=str(data["identifier"]),
                licence_type=str(data["licence_type"]),
                number=str(data["number"]),
                version=int(data["version"]),
                valid_until=date.fromisoformat(data["valid_until"]) if data.get("valid_until") else None,
            )
            holder, status = data["holder"], data["status"]
        except (ValueError, KeyError, TypeError) as exc:
            raise LicenceUnavailable("HTTP 200 with an answer that is not a licence") from exc
        # A yes about another licence, type or holder is no answer to this question.
        if (checked.identifier, checked.licence_type, holder, status) != (
            question.identifier, question.licence_type, question.holder, "valid",
        ):  # fmt: skip
            log.error("licence service answered another question for %s", mask_id_number(question.holder))
            raise LicenceUnavailable("HTTP 200 that does not answer the question")
        return checked

    async def holdings(self, holder: str, licence_types: list[str], *, purpose: str,
                       case_no: str | None = None) -> list[Holding]:  # fmt: skip
        question = {"holder": holder, "licence_types": licence_types, "purpose": purpose, "case_no": case_no}
        response = await self._answer(self._holdings, question, rule_on_422=False)
        try:
            data = response.json()
            if data["holder"] != holder:
                raise ValueError("another holder")
            found = [
                Holding(str(item["identifier"]), str(item["licence_type"]), str(item["number"]), str(item["status"]),
                        date.fromisoformat(item["valid_until"]) if item.get("valid_until") else None,
                        item["data"] if isinstance(item.get("data"), dict) else {})
                for item in data["licences"]
            ]  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise LicenceUnavailable("HTTP 200 with an answer that is not the holder's licences") from exc
        # a licence of another type is no answer to this question
        return [h for h in found if h.licence_type in licence_types]

    async def aclose(self) -> None:
        await self._poster.aclose()


def make_licences(
    *,
    adapter: str,
    url: str,
    key_id: str,
    secret: str,
    timeout: float,
    sandbox_latency: tuple[float, float] = (0.01, 0.05),
    sandbox_failure_rate: float = 0.0,
) -> LicenceService:
    """The adapter the settings name; "http" without its URL, key id or secret refuses to start."""
    if adapter == "http":
        missing = [
            name
            for name, value in (
                ("CASEFLOW_LICENCE_URL", url),
                ("CASEFLOW_LICENCE_KEY_ID", key_id),
                ("CASEFLOW_LICENCE_SECRET", secret),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"licence_adapter 'http' needs {', '.join(missing)}")
        return HttpLicences(url, key_id=key_id, secret=secret, timeout=timeout)
    return SandboxLicences(latency=sandbox_latency, failure_rate=sandbox_failure_rate)
