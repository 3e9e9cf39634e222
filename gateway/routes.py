"""Which routes are public, signed, officer-only or closed: a table of data and pure matching.

A rule's ``pattern`` is a full gateway path: ``{name}`` or ``*`` matches one segment, a final
``**`` matches whatever follows (also nothing). The area (``/api/v1/<area>/``) may be ``*`` for a
rule that holds in every area. The first rule that matches path and method decides; a path that
no rule matches needs a valid token and nothing more. Later services add rows here (or through
``GATEWAY_EXTRA_ROUTES``), not code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kit.errors import Problem

PUBLIC = "public"  # no token needed (one that verifies is still used for the identity headers)
TOKEN = "token"  # a valid bearer token
SIGNED = "signed"  # an HMAC-signed partner request (see gateway.signing), no token
DENY = "deny"  # never forwarded: answered 404 as if it did not exist
KIOSK = "kiosk"  # signed by a registered self-service kiosk (gateway.kiosks), no token

ACCESS_KINDS = frozenset({PUBLIC, TOKEN, SIGNED, DENY, KIOSK})
API_PREFIX = "/api/v1/"
_AREA = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


@dataclass(frozen=True)
class RouteRule:
    pattern: str
    methods: frozenset[str] = frozenset()  # empty: every method
    access: str = TOKEN
    min_level: int = 0  # real-name level the subject (or acting person) must have
    kinds: frozenset[str] = frozenset()  # subject kinds allowed (empty: any)
    roles: frozenset[str] = frozenset()  # officer roles, any one of them suffices
    max_body_bytes: int | None = None  # overrides the gateway default
    timeout_seconds: float | None = None  # upstream read timeout override
    environments: frozenset[str] = frozenset()  # only in these environments (empty: all)
    label: str = field(default="", compare=False)  # metrics label; the pattern if empty

    def __post_init__(self) -> None:
        if self.access not in ACCESS_KINDS:
            raise ValueError(f"unknown access {self.access!r} in rule {self.pattern}")
        if not self.pattern.startswith(API_PREFIX):
            raise ValueError(f"rule pattern must start with {API_PREFIX}: {self.pattern}")
        if "**" in self.pattern and not self.pattern.endswith("/**"):
            raise ValueError(f"'**' may only end a pattern: {self.pattern}")
        if not self.label:
            object.__setattr__(self, "label", self.pattern)

    @property
    def area(self) -> str:
        return self.pattern[len(API_PREFIX) :].split("/", 1)[0]


def rule(pattern: str, methods: str = "", access: str = TOKEN, **options: Any) -> RouteRule:
    """Shorthand: ``rule("/api/v1/x/{id}", "GET POST", PUBLIC)``."""
    for key in ("kinds", "roles", "environments"):
        if key in options:
            options[key] = frozenset(options[key])
    return RouteRule(pattern, frozenset(methods.upper().split()), access, **options)


def rule_from_config(data: Mapping[str, Any]) -> RouteRule:
    """A rule from settings JSON: ``{"pattern": …, "methods": "GET", "access": "public", …}``."""
    data = dict(data)
    methods = data.pop("methods", "")
    if isinstance(methods, list | tuple):
        methods = " ".join(methods)
    return rule(data.pop("pattern"), methods, data.pop("access", TOKEN), **data)


MIB = 1024 * 1024

DEFAULT_RULES: tuple[RouteRule, ...] = (
    # Services' own metrics stay inside; the gateway has its own /metrics.
    rule("/api/v1/*/metrics", access=DENY),
    # identity
    rule("/api/v1/identity/register", "POST", PUBLIC),
    rule("/api/v1/identity/sessions", "POST", PUBLIC),
    rule("/api/v1/identity/sessions/refresh", "POST", PUBLIC),
    rule("/api/v1/identity/sms-codes", "POST", PUBLIC),
    rule("/api/v1/identity/.well-known/jwks.json", "GET", PUBLIC),
    rule("/api/v1/identity/sandbox/sms", "GET", PUBLIC, environments={"development", "test"}),
    rule("/api/v1/identity/sandbox/enterprises", "GET", PUBLIC, environments={"development", "test"}),
    rule("/api/v1/identity/sandbox/**", access=DENY),
    # the hall (ADR 0025): a kiosk's card read is signed by the kiosk; the kiosks' keys are the gateway's alone
    rule("/api/v1/identity/kiosk-sessions", "POST", KIOSK),
    rule("/api/v1/identity/kiosks/keys", access=DENY),
    # catalog: browsing is public
    rule("/api/v1/catalog/**", "GET", PUBLIC, label="/api/v1/catalog/**"),
    # caseflow
    rule("/api/v1/caseflow/progress/{case_no}", "GET", PUBLIC),
    rule("/api/v1/caseflow/results", "GET", PUBLIC),  # 结果公示, personal data masked
    # the working-day calendar and due-date previews: front-ends show them before login
    rule("/api/v1/caseflow/calendar/due", "GET", PUBLIC),
    rule("/api/v1/caseflow/calendar/{year}", "GET", PUBLIC),
    rule("/api/v1/caseflow/sandbox/notifications", "GET", PUBLIC, environments={"development", "test"}),
    rule("/api/v1/caseflow/sandbox/**", access=DENY),
    rule("/api/v1/caseflow/materials", "POST", max_body_bytes=20 * MIB),  # upload before the case exists
    rule("/api/v1/caseflow/worklist", kinds={"officer"}),
    rule("/api/v1/caseflow/cases/{case_no}/actions", kinds={"officer"}),
    rule("/api/v1/caseflow/reviews", "GET", kinds={"officer"}),  # 秒批 decisions sampled for review (ADR 0027)
    rule("/api/v1/caseflow/cases/{case_no}/sample-review", "POST", kinds={"officer"}),
    rule("/api/v1/caseflow/matters/{code}/prefill", "GET", kinds={"person", "enterprise"}),  # 零填报
    rule("/api/v1/caseflow/supervision/**", kinds={"officer"}, roles={"supervisor"}),
    rule("/api/v1/caseflow/cases/{case_no}/materials", "POST PUT", max_body_bytes=20 * MIB),
    # department pushes reach caseflow only through the signed area below
    rule("/api/v1/caseflow/departments/**", access=DENY),
    # licence
    rule("/api/v1/licence/licences/verify", "POST", PUBLIC),  # anyone checks a licence shown to them
    # a department's bulk import: NDJSON, large and slow (≥ 10,000 rows/s is the target)
    rule("/api/v1/licence/imports", "POST", TOKEN, kinds={"officer"}, max_body_bytes=64 * MIB, timeout_seconds=300),
    rule("/api/v1/licence/types", "GET", PUBLIC),
    rule("/api/v1/licence/keys", "GET", PUBLIC),  # offline verifiers fetch the issuers' keys …
    rule("/api/v1/licence/status-list", "GET", PUBLIC),  # … and cache the signed revocation list
    rule("/api/v1/licence/checks", access=DENY),  # caseflow's signed internal check, never from outside
    rule("/api/v1/licence/holdings", access=DENY),  # caseflow's signed internal read (秒批 facts, 零填报)
    # express: a citizen's or officer's shipments (token); the carrier's callbacks are signed (below)
    rule("/api/v1/express/shipments", "GET"),
    rule("/api/v1/express/shipments/{ref}", "GET"),
    # exchange: the receipts' public keys are public; the partners' keys are the gateway's alone
    rule("/api/v1/exchange/.well-known/jwks.json", "GET", PUBLIC),
    rule("/api/v1/exchange/partners/keys", access=DENY),
    # signed partner requests
    rule("/api/v1/departments/{code}/events", "POST", SIGNED),
    rule("/api/v1/departments/**", access=DENY),
    rule("/api/v1/express/callbacks/ems", "POST", SIGNED),
    rule("/api/v1/express/callbacks/**", access=DENY),
    # payment (issue 14): the gateway's notifications are public here, their signature checked by
    # payment itself (ADR 0024); orders, paying and receipts need a token
    rule("/api/v1/payment/notifications/{provider}", "POST", PUBLIC, max_body_bytes=64 * 1024),
    rule("/api/v1/payment/notifications/**", access=DENY),
    rule("/api/v1/payment/orders", "GET"),
    rule("/api/v1/payment/orders/{order_id}", "GET"),
    rule("/api/v1/payment/orders/{order_id}/payments", "POST"),
    rule("/api/v1/payment/receipts/{receipt_no}", "GET"),
    # hall (issue 14): halls, slots, the queue board and the check-in machine are public (the service
    # limits wrong codes per source); officers' routes need the roles; the sandbox SMS page only in
    # development and test
    rule("/api/v1/hall/halls", "GET", PUBLIC),
    rule("/api/v1/hall/halls/{code}", "GET", PUBLIC),
    rule("/api/v1/hall/halls/{code}/slots", "GET", PUBLIC),
    rule("/api/v1/hall/halls/{code}/queue", "GET", PUBLIC),
    rule("/api/v1/hall/halls/{code}/check-ins", "POST", PUBLIC, max_body_bytes=1024),
    rule("/api/v1/hall/halls/{code}", "PUT", kinds={"officer"}, roles={"admin"}),
    rule("/api/v1/hall/halls/{code}/windows/{window}", "PUT", kinds={"officer"}, roles={"admin"}),
    rule("/api/v1/hall/halls/{code}/bookings", "GET", kinds={"officer"}, roles={"counter", "supervisor", "admin"}),
    rule("/api/v1/hall/halls/{code}/calls", "POST", kinds={"officer"}, roles={"counter"}),
    rule("/api/v1/hall/tickets/**", "POST", kinds={"officer"}, roles={"counter"}),
    rule("/api/v1/hall/bookings/**", kinds={"person", "enterprise"}),
    rule("/api/v1/hall/bookings", kinds={"person", "enterprise"}),
    rule("/api/v1/hall/sandbox/sms", "GET", PUBLIC, environments={"development", "test"}),
    rule("/api/v1/hall/sandbox/**", access=DENY),
)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for segment in pattern.strip("/").split("/"):
        if segment == "**":
            parts.append(r"(?:/.*)?")
        elif segment == "*" or (segment.startswith("{") and segment.endswith("}")):
            parts.append(r"/[^/]+")
        else:
            parts.append("/" + re.escape(segment))
    return re.compile("".join(parts) + r"/?\Z")


@dataclass(frozen=True)
class CompiledRule:
    rule: RouteRule
    regex: re.Pattern[str]


class RouteTable:
    """Rules indexed by area; ``match`` is what the hot path calls."""

    def __init__(self, rules: Iterable[RouteRule], environment: str) -> None:
        active = [r for r in rules if not r.environments or environment in r.environments]
        compiled = [CompiledRule(r, _pattern_regex(r.pattern)) for r in active]
        self.rules = tuple(active)
        self._everywhere = [c for c in compiled if c.rule.area == "*"]
        self._by_area: dict[str, list[CompiledRule]] = {}
        for area in {c.rule.area for c in compiled} - {"*"}:
            self._by_area[area] = [c for c in compiled if c.rule.area in (area, "*")]

    def match(self, area: str, method: str, path: str) -> RouteRule | None:
        """The first rule for this method and path, or None (then: token required)."""
        if method == "HEAD":
            method = "GET"
        for compiled in self._by_area.get(area, self._everywhere):
            if compiled.rule.methods and method not in compiled.rule.methods:
                continue
            if compiled.regex.match(path):
                return compiled.rule
        return None


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    """Regexes for path patterns outside the table (partners' allowed paths)."""
    return [re.compile(r".*\Z") if p == "**" else _pattern_regex(p) for p in patterns]


def split_api_path(path: str) -> tuple[str, str] | None:
    """``/api/v1/identity/me`` → ``("identity", "/me")``; None if not under /api/v1/<area>."""
    if not path.startswith(API_PREFIX):
        return None
    rest = path[len(API_PREFIX) :]
    area, slash, tail = rest.partition("/")
    if not _AREA.match(area):
        return None
    return area, slash + tail


_DOT_SEGMENT = re.compile(r"(?:^|/)\.{1,2}(?:/|$)")
_ENCODED_TRICKS = re.compile(rb"%(?:2[fFeE]|5[cC]|00)")


def path_is_clean(path: str, raw_path: bytes | None) -> bool:
    """Refuse paths that could mean one thing to the rule table and another to the service.

    Dot segments, empty segments, backslashes and encoded ``/``, ``\\``, ``.`` or NUL are not
    used by any of our APIs; allowing them would let ``/progress/..%2Fworklist`` slip past a rule.
    """
    if "\\" in path or "\x00" in path or "//" in path or _DOT_SEGMENT.search(path):
        return False
    return not (raw_path and _ENCODED_TRICKS.search(raw_path))


def authorize(rule: RouteRule | None, claims: Mapping[str, Any]) -> Problem | None:
    """Why a verified caller may not use this route, or None if it may."""
    if rule is None:
        return None
    kind = claims.get("kind", "person")
    if rule.kinds and kind not in rule.kinds:
        return Problem(403, "forbidden", "Not allowed", f"this route is for {' or '.join(sorted(rule.kinds))} accounts")
    if rule.roles and not set(claims.get("roles") or ()) & rule.roles:
        return Problem(403, "forbidden", "Not allowed", f"requires one of the roles: {', '.join(sorted(rule.roles))}")
    if rule.min_level:
        try:
            level = int(claims.get("lvl", 1))
        except (TypeError, ValueError):
            level = 0
        if level < rule.min_level:
            return Problem(
                403,
                "real-name-level",
                "Higher real-name level required",
                f"this route needs real-name level L{rule.min_level}; the token has L{level}",
                required_level=rule.min_level,
            )
    return None
