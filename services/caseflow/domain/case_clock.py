"""Which clocks run on a case and how each is computed: pure (calendar and facts in, Deadlines out).

- ``pre_review``: 预审 within 2 working days of receipt; the correction pause (补正) is not counted.
- ``acceptance``: Art. 32, the last day a notice may be given (latest receipt + 5 working days);
  with none by then the timer deems the case accepted as of that receipt.
- ``decision``: from acceptance, the governing limit of the pinned guide (its promised limit where
  shorter than its statutory one; Art. 42's 20 working days, joint handling 45, only where the
  guide states no statutory limit), plus the one approved extension (10 / 15), minus Art. 45
  suspensions. Instant matters (即办件) have none: they are decided on acceptance.
- ``delivery``: Art. 44, within 10 working days of approval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from services.caseflow.domain.calendar import WorkdayCalendar
from services.caseflow.domain.clock import (
    DEEMED_ACCEPTANCE_DAYS,
    DELIVERY_DAYS,
    PRE_REVIEW_DAYS,
    Deadline,
    Pause,
    compute_deadline,
    governing_limit,
    statutory_limit,
)
from services.caseflow.domain.states import AWAITING_ACCEPTANCE, IN_DECISION

LICENSING = "行政许可"
# Non-licensing matters have no statutory extension; the same one-time 10 days is our policy.
DEFAULT_EXTENSION_DAYS = 10


def is_joint(matter: dict[str, Any]) -> bool:
    return bool(matter.get("parallel_departments"))


@dataclass(frozen=True)
class Limits:
    """The decision limits a case runs under, as the pinned guide states them, and the one that governs.

    ``statutory_days`` and ``promised_days`` are the guide's own (承诺时限 may be absent); the law's
    default (Art. 42: 20, joint handling 45) stands in only where the guide gives no statutory
    limit, and ``statutory_source`` says which it was."""

    statutory_days: int | None
    promised_days: int | None
    statutory_source: str  # "guide" | "Art. 42" | "Art. 42 (joint handling)" | "none"
    governing_days: int
    rule: str


def _guide_days(value: Any) -> int | None:
    """A limit the guide states (0 means none for a promised matter; instant ones have no clock)."""
    return int(value) if value not in (None, 0) else None


def matter_limits(matter: dict[str, Any]) -> Limits:
    """The case's decision limits from its pinned matter version (or bundle): one truth with the guide.

    A bundle has no guide of its own: where it has parallel departments and its lead is a licensing
    matter, the combined case runs under Art. 42's joint-handling limit (45) with the lead's promise;
    each branch keeps its own matters' limits (``bundles.branch_limit``)."""
    promised = _guide_days(matter.get("promised_limit_days"))
    licensing = matter.get("matter_type") == LICENSING
    joint = is_joint(matter)
    guide_statutory = _guide_days(matter.get("statutory_limit_days"))
    statutory: int | None
    if matter.get("bundle") and licensing and joint:
        statutory, source = statutory_limit(LICENSING, joint=True)[0], "Art. 42 (joint handling)"
    elif guide_statutory is not None:
        statutory, source = guide_statutory, "guide"
    elif licensing:
        statutory, source = (
            statutory_limit(LICENSING, joint=joint)[0],
            "Art. 42 (joint handling)" if joint else "Art. 42",
        )
    else:
        statutory, source = None, "none"
    if matter.get("kind") == "instant":  # 即办件: decided on acceptance, whatever limits the guide states
        return Limits(statutory_days=statutory, promised_days=promised, statutory_source=source, governing_days=0,
                      rule="instant matter: decided on acceptance")  # fmt: skip
    days, rule = governing_limit(promised, statutory)
    with_others = f"joint handling with {', '.join(matter['parallel_departments'])}" if joint else ""
    if source.startswith("Art. 42"):
        rule = f"{rule}; {source}"
    elif licensing:  # say where the law's default would have been, so a shorter or longer guide stands out
        default = statutory_limit(LICENSING, joint=joint)[0]
        rule = f"{rule}; from the guide (Art. 42 default {default}{', ' + with_others if joint else ''})"
    elif joint:
        rule = f"{rule}; {with_others}"
    return Limits(statutory_days=statutory, promised_days=promised, statutory_source=source, governing_days=days,
                  rule=rule)  # fmt: skip


def decision_limit(matter: dict[str, Any]) -> tuple[int, str]:
    """The governing decision limit and the rule text that produced it (see ``matter_limits``)."""
    limits = matter_limits(matter)
    return limits.governing_days, limits.rule


def extension_limit(matter: dict[str, Any]) -> int:
    """Working days the one extension adds (Art. 42: 10, joint handling 15)."""
    if matter.get("matter_type") == LICENSING:
        return statutory_limit(LICENSING, joint=is_joint(matter))[1]
    return DEFAULT_EXTENSION_DAYS


def case_deadlines(
    calendar: WorkdayCalendar,
    *,
    matter: dict[str, Any],
    state: str,
    received_on: date,
    resubmitted_on: date | None,
    accepted_on: date | None,
    approved_on: date | None,
    pauses: Sequence[Pause],
    extension_days: int,
) -> dict[str, Deadline]:
    """Every clock that applies to the case now, by step name."""
    clocks: dict[str, Deadline] = {}
    corrections = [p for p in pauses if p.reason == "correction"]
    suspensions = [p for p in pauses if p.reason != "correction"]
    if state in AWAITING_ACCEPTANCE or state == "correction_requested":
        clocks["pre_review"] = compute_deadline(
            calendar,
            start=received_on,
            limit_days=PRE_REVIEW_DAYS,
            rule=f"pre-review within {PRE_REVIEW_DAYS} working days of receipt",
            pauses=corrections,
        )
        receipt = resubmitted_on or received_on
        clocks["acceptance"] = compute_deadline(
            calendar,
            start=receipt,
            limit_days=DEEMED_ACCEPTANCE_DAYS,
            rule=f"Art. 32: notice within {DEEMED_ACCEPTANCE_DAYS} working days of receipt, else accepted as of receipt",
            pauses=[p for p in corrections if p.end is None],
        )
    if accepted_on is not None and matter.get("kind") != "instant" and state in IN_DECISION:
        limits = matter_limits(matter)
        clocks["decision"] = replace(
            compute_deadline(
                calendar,
                start=accepted_on,
                limit_days=limits.governing_days,
                rule=limits.rule,
                pauses=suspensions,
                extension_days=extension_days,
            ),
            statutory_days=limits.statutory_days,
            promised_days=limits.promised_days,
        )
    if approved_on is not None and state in {"approved", "delivering"}:
        clocks["delivery"] = compute_deadline(
            calendar,
            start=approved_on,
            limit_days=DELIVERY_DAYS,
            rule=f"Art. 44: issued and delivered within {DELIVERY_DAYS} working days of approval",
        )
    return clocks


# The clock the worklist orders by and the supervisor watches, per state.
STEP_OF_STATE = {
    "submitted": "pre_review",
    "resubmitted": "pre_review",
    "accepted": "decision",
    "reviewed": "decision",
    "suspended": "decision",
    "approved": "delivery",
    "delivering": "delivery",
}


def deadline_json(deadline: Deadline) -> dict[str, Any]:
    return {
        "due": deadline.due.isoformat() if deadline.due else None,
        "limit_days": deadline.limit_days,
        "provisional": deadline.provisional,
        "rule": deadline.rule,
        "paused_days": deadline.paused_days,
        "explanation": list(deadline.explanation),
        "statutory_days": deadline.statutory_days,
        "promised_days": deadline.promised_days,
    }


def deadline_from_json(data: dict[str, Any]) -> Deadline:
    return Deadline(
        due=date.fromisoformat(data["due"]) if data.get("due") else None,
        limit_days=data["limit_days"],
        provisional=data["provisional"],
        rule=data["rule"],
        paused_days=data["paused_days"],
        explanation=list(data.get("explanation", [])),
        statutory_days=data.get("statutory_days"),
        promised_days=data.get("promised_days"),
    )


def yellow_threshold(limit_days: int, yellow_at: int) -> int:
    """A short clock (pre-review: 2 days) would be yellow from its first day; cap the threshold."""
    return max(0, min(yellow_at, limit_days - 1))
