"""秒批 (instant approval): the facts an application brings and the matter's rules over them — pure.

A matter's ``instant`` rules (contracts.events.catalog.PublishedInstant) are lists of conditions
``{fact, op, value}``; a rule holds when every condition does, and the first rule that holds decides.
Facts come from verified sources only (``applicant_facts``: the token; ``licence_facts``: the
licence service's answer; ``form_facts``: the checked form) — never from a request's claims.

Odd data never raises: a missing fact, a fact of another type than the value (a number against a
string, a boolean against a number), a NaN, or a malformed condition makes that condition fail,
and the verdict says which and with what value. Conservative on purpose: when in doubt, officers
decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from kit.errors import RuleViolation
from kit.masking import mask_id_number
from kit.subject_ids import validate_id_number

Facts = dict[str, Any]
OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "exists")


@dataclass(frozen=True)
class Failed:
    """A condition that did not hold, and the fact's value it was tested with (None: no such fact)."""

    fact: str
    op: str
    value: Any
    actual: Any
    reason: str  # "false" | "missing" | "type" | "malformed"

    def out(self) -> dict[str, Any]:
        return {"fact": self.fact, "op": self.op, "value": self.value, "actual": self.actual, "reason": self.reason}


@dataclass(frozen=True)
class RuleOutcome:
    id: str
    description: str
    held: bool
    used: dict[str, Any] = field(default_factory=dict)  # the facts the rule read, as tested
    failed: list[Failed] = field(default_factory=list)

    def out(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description, "held": self.held, "facts": self.used,
                "failed": [f.out() for f in self.failed]}  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """Every rule's outcome in order; ``decided`` is the first that held (None: officers decide)."""

    outcomes: list[RuleOutcome]

    @property
    def decided(self) -> RuleOutcome | None:
        return next((o for o in self.outcomes if o.held), None)

    def out(self) -> dict[str, Any]:
        decided = self.decided
        return {"rule": decided.id if decided else None, "rules": [o.out() for o in self.outcomes]}


def _number(value: Any) -> float | None:
    """A real, finite number (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _same_type(actual: Any, value: Any) -> bool:
    if isinstance(actual, bool) or isinstance(value, bool):
        return isinstance(actual, bool) and isinstance(value, bool)
    if _number(actual) is not None and _number(value) is not None:
        return True
    return isinstance(actual, str) and isinstance(value, str)


def check_condition(condition: Any, facts: Facts) -> Failed | None:
    """None when the condition holds, else why not."""
    if not isinstance(condition, dict):
        return Failed(str(condition)[:100], "?", None, None, "malformed")
    fact, op, value = condition.get("fact"), condition.get("op"), condition.get("value")
    if not isinstance(fact, str):
        return Failed(str(fact)[:100], str(op)[:20], value, None, "malformed")
    actual = facts.get(fact)
    if op not in OPS:
        return Failed(fact, str(op)[:20], value, actual, "malformed")
    if op == "exists":
        return None if actual is not None else Failed(fact, op, value, None, "missing")
    if actual is None:
        return Failed(fact, op, value, None, "missing")
    if op == "in":
        if not isinstance(value, list):
            return Failed(fact, op, value, actual, "malformed")
        if not any(_same_type(actual, v) for v in value):
            return Failed(fact, op, value, actual, "type") if value else Failed(fact, op, value, actual, "false")
        return None if any(_same_type(actual, v) and _equal(actual, v) for v in value) else Failed(
            fact, op, value, actual, "false")  # fmt: skip
    if op in ("eq", "ne"):
        if isinstance(value, list) or value is None:
            return Failed(fact, op, value, actual, "malformed")
        if not _same_type(actual, value):
            return Failed(fact, op, value, actual, "type")
        holds = _equal(actual, value) if op == "eq" else not _equal(actual, value)
        return None if holds else Failed(fact, op, value, actual, "false")
    left, right = _number(actual), _number(value)
    if right is None:
        return Failed(fact, op, value, actual, "malformed")
    if left is None:
        return Failed(fact, op, value, actual, "type")
    holds = {"lt": left < right, "le": left <= right, "gt": left > right, "ge": left >= right}[op]
    return None if holds else Failed(fact, op, value, actual, "false")


def _equal(actual: Any, value: Any) -> bool:
    left, right = _number(actual), _number(value)
    if left is not None and right is not None:
        return left == right
    return bool(actual == value)


def evaluate(instant: Any, facts: Facts) -> Verdict:
    """Each rule of a matter's ``instant`` block against the facts. A block that is not one (None,
    no rules, odd shapes) gives no rule that holds."""
    rules = instant.get("rules") if isinstance(instant, dict) else None
    outcomes: list[RuleOutcome] = []
    for rule in rules if isinstance(rules, list) else []:
        if not isinstance(rule, dict):
            continue
        conditions = rule.get("conditions")
        conditions = conditions if isinstance(conditions, list) else []
        failed = [f for f in (check_condition(c, facts) for c in conditions) if f is not None]
        used = {
            c["fact"]: facts.get(c["fact"])
            for c in conditions
            if isinstance(c, dict) and isinstance(c.get("fact"), str)
        }
        outcomes.append(RuleOutcome(str(rule.get("id", "?"))[:64], str(rule.get("description", ""))[:300],
                                    held=bool(conditions) and not failed, used=used, failed=failed))  # fmt: skip
    return Verdict(outcomes)


# ---- facts --------------------------------------------------------------------------------------
def age_on(birth: date, today: date) -> int:
    """Full years of age on ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def applicant_facts(*, subject: str, kind: str, level: int, name: str | None, today: date) -> Facts:
    """From the verified token: kind, level, name; for a person whose ``sub`` is a valid GB 11643
    number, age (from the birth date in it) and division (its six-digit region code). An enterprise
    has no age; a number that does not validate gives neither."""
    facts: Facts = {"applicant.kind": kind, "applicant.level": level}
    if name:
        facts["applicant.name"] = name
    if kind == "person":
        try:
            number = validate_id_number(subject, today=today)
        except (RuleViolation, TypeError, ValueError):
            return facts
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        facts["applicant.age"] = age_on(birth, today)
        facts["applicant.division"] = number[:6]
    return facts


@dataclass(frozen=True)
class Holding:
    """One e-licence of the applicant as the licence service describes it."""

    identifier: str
    licence_type: str
    number: str
    status: str
    valid_until: date | None
    data: dict[str, Any] = field(default_factory=dict)

    def usable(self, today: date) -> bool:
        return self.status == "valid" and (self.valid_until is None or self.valid_until >= today)


def best_holding(holdings: list[Holding], licence_type: str, today: date) -> Holding | None:
    """The licence of this type the facts speak of: a usable one before any other, then the one
    valid longest (no end date counts as longest)."""
    mine = [h for h in holdings if h.licence_type == licence_type]
    if not mine:
        return None
    return max(mine, key=lambda h: (h.usable(today), h.valid_until is None, h.valid_until or date.min))


def licence_facts(licence_types: set[str], holdings: list[Holding], today: date) -> Facts:
    """``licence:<type>.valid`` (the applicant holds a usable one) and ``.days_left`` (days until the
    best one's end; absent when it has none, negative when it has ended)."""
    facts: Facts = {}
    for licence_type in sorted(licence_types):
        best = best_holding(holdings, licence_type, today)
        facts[f"licence:{licence_type}.valid"] = best is not None and best.usable(today)
        if best is not None and best.valid_until is not None:
            facts[f"licence:{licence_type}.days_left"] = (best.valid_until - today).days
    return facts


def form_facts(form: dict[str, Any]) -> Facts:
    return {f"form.{name}": value for name, value in form.items() if isinstance(value, str | int | float | bool)}


def licence_types_of(instant: Any) -> set[str]:
    """The licence types a matter's rules ask about."""
    rules = instant.get("rules") if isinstance(instant, dict) else None
    types: set[str] = set()
    for rule in rules if isinstance(rules, list) else []:
        for condition in (rule.get("conditions") or []) if isinstance(rule, dict) else []:
            fact = condition.get("fact") if isinstance(condition, dict) else None
            if isinstance(fact, str) and fact.startswith("licence:") and "." in fact:
                types.add(fact[len("licence:") : fact.index(".")])
    return types


def shown(facts: dict[str, Any]) -> dict[str, Any]:
    """Facts as a timeline shows them: an ID number among them masked."""
    out = {}
    for key, value in facts.items():
        if isinstance(value, str) and len(value) == 18 and value[:17].isdigit():
            value = mask_id_number(value)
        out[key] = value
    return out


# ---- 零填报 ---------------------------------------------------------------------------------------
def prefill_licence_types(form_fields: list[dict[str, Any]]) -> set[str]:
    types = set()
    for f in form_fields:
        source = f.get("prefill") if isinstance(f, dict) else None
        if isinstance(source, str) and source.startswith("licence:") and "." in source:
            types.add(source[len("licence:") : source.index(".")])
    return types


def prefill(form_fields: list[dict[str, Any]], *, subject: str, applicant: Facts, holdings: list[Holding],
            today: date) -> tuple[dict[str, Any], dict[str, str]]:  # fmt: skip
    """The form fields a matter prefills, with values from verified facts only, and each value's
    source. A field whose source has no value (no such licence, no such data key, a value of the
    wrong kind for the field) is left for the applicant to fill."""
    form: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for f in form_fields:
        source = f.get("prefill") if isinstance(f, dict) else None
        if not isinstance(source, str):
            continue
        value: Any = None
        if source == "applicant.subject":
            value = subject
        elif source.startswith("applicant."):
            value = applicant.get(source)
        elif source.startswith("licence:") and "." in source:
            licence_type, _, what = source[len("licence:") :].partition(".")
            best = best_holding(holdings, licence_type, today)
            if best is not None and best.usable(today):
                if what == "number":
                    value = best.number
                elif what == "valid_until":
                    value = best.valid_until.isoformat() if best.valid_until else None
                elif what.startswith("data."):
                    value = best.data.get(what[len("data.") :])
        if value is None or isinstance(value, dict | list):
            continue
        if f.get("kind") == "number" and _number(value) is None:
            continue
        if f.get("kind") != "number" and not isinstance(value, str):
            value = str(value)
        form[f["name"]] = value
        sources[f["name"]] = source
    return form, sources
