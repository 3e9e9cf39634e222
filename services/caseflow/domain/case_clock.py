"""Which clocks run on a case and how each is computed: pure (calendar and facts in, Deadlines out).

- ``pre_review``: 预审 within 2 working days of receipt; the correction pause (补正) is not counted.
- ``acceptance``: Art. 32, the last day a notice may be given (latest receipt + 5 working days);
  with none by then the timer deems the case accepted as of that receipt.
- ``decision``: from acceptance, the governing limit (the matter's promised limit where shorter,
  otherwise Art. 42: 20 working days, joint handling 45), plus the one approved extension (10 / 15),
  minus Art. 45 suspensions. Instant matters (即办件) have none: they are decided on acceptance.
- ``delivery``: Art. 44, within 10 working days of approval.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def decision_limit(matter: dict[str, Any]) -> tuple[int, str]:
    """The governing decision limit and the rule text that produced it."""
    if matter.get("matter_type") == LICENSING:
        days, _ = statutory_limit(LICENSING, joint=is_joint(matter))
        limit, rule = governing_limit(matter.get("promised_limit_days"), days)
        article = "Art. 42 (joint handling)" if is_joint(matter) else "Art. 42"
        return limit, f"{rule}; {article}"
    statutory = matter.get("statutory_limit_days")
    return governing_limit(matter.get("promised_limit_days"), statutory if statutory else None)


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
        limit, rule = decision_limit(matter)
        clocks["decision"] = compute_deadline(
            calendar,
            start=accepted_on,
            limit_days=limit,
            rule=rule,
            pauses=suspensions,
            extension_days=extension_days,
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
    }


def deadline_from_json(data: dict[str, Any]) -> Deadline:
    return Deadline(
        due=date.fromisoformat(data["due"]) if data.get("due") else None,
        limit_days=data["limit_days"],
        provisional=data["provisional"],
        rule=data["rule"],
        paused_days=data["paused_days"],
        explanation=list(data.get("explanation", [])),
    )


def yellow_threshold(limit_days: int, yellow_at: int) -> int:
    """A short clock (pre-review: 2 days) would be yellow from its first day; cap the threshold."""
    return max(0, min(yellow_at, limit_days - 1))
