"""The case state machine (办件状态): pure, no I/O.

``transition(state, action, role, ...)`` returns the new state or raises: ``IllegalTransition``
(the action is not possible in this state: HTTP 409 naming the state) or ``RoleNotAllowed`` (the
caller's role may not take it: HTTP 403). The table below is the whole workflow:

submitted ─accept→ accepted (instant matters: approved) ─review→ reviewed ─approve→ approved
          ─reject→ rejected                                              ─deny→ denied
          ─request_correction→ correction_requested ─resubmit→ resubmitted ─accept/reject→ …
approved ─deliver→ delivering ─complete→ completed (window pickup may complete at once)
accepted/reviewed ─suspend→ suspended ─resume→ the state it was suspended from
withdraw (applicant) from any state before a decision.
"""

from __future__ import annotations

from dataclasses import dataclass

STATES = (
    "submitted",
    "correction_requested",
    "resubmitted",
    "accepted",
    "reviewed",
    "suspended",
    "approved",
    "delivering",
    "completed",
    "rejected",
    "denied",
    "withdrawn",
)
TERMINAL = frozenset({"completed", "rejected", "denied", "withdrawn"})
BEFORE_DECISION = frozenset({"submitted", "correction_requested", "resubmitted", "accepted", "reviewed", "suspended"})
# States in which the acceptance clock (pre-review, Art. 32) runs.
AWAITING_ACCEPTANCE = frozenset({"submitted", "resubmitted"})
# States in which the decision clock (Art. 42) runs; suspended stops it.
IN_DECISION = frozenset({"accepted", "reviewed", "suspended"})

ACCEPTOR, REVIEWER, DECIDER = "acceptor", "reviewer", "decider"
APPLICANT, SYSTEM = "applicant", "system"

# (state, action) → (new state, roles that may act). "suspended → resume" is resolved at runtime.
TABLE: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}


def _allow(states: tuple[str, ...], action: str, new_state: str, *roles: str) -> None:
    for state in states:
        TABLE[(state, action)] = (new_state, frozenset(roles))


_allow(("submitted", "resubmitted"), "accept", "accepted", ACCEPTOR)
_allow(("submitted", "resubmitted"), "deem_accept", "accepted", SYSTEM)
_allow(("submitted", "resubmitted"), "reject", "rejected", ACCEPTOR)
_allow(("submitted", "resubmitted"), "request_correction", "correction_requested", ACCEPTOR)
_allow(("correction_requested",), "resubmit", "resubmitted", APPLICANT)
_allow(("accepted",), "review", "reviewed", REVIEWER)
# A decision straight from "accepted" is legal (matters without a review step); where the matter
# has a review step the service records it as an anomaly.
_allow(("accepted", "reviewed"), "approve", "approved", DECIDER)
_allow(("accepted", "reviewed"), "deny", "denied", DECIDER, SYSTEM)  # system: a parallel branch denied
_allow(("accepted", "reviewed"), "suspend", "suspended", REVIEWER, DECIDER)
_allow(("suspended",), "resume", "accepted", REVIEWER, DECIDER)
_allow(("accepted", "reviewed"), "extend", "", DECIDER)  # "" = the state does not change
_allow(("approved",), "deliver", "delivering", ACCEPTOR, SYSTEM)
_allow(("approved", "delivering"), "complete", "completed", ACCEPTOR, SYSTEM)
_allow(tuple(BEFORE_DECISION), "withdraw", "withdrawn", APPLICANT)

ACTIONS = frozenset(action for _, action in TABLE)
OFFICER_ACTIONS = frozenset(
    action for (_, action), (_, roles) in TABLE.items() if roles & {ACCEPTOR, REVIEWER, DECIDER}
)


class TransitionError(Exception):
    """Base of the state machine's refusals."""


@dataclass
class IllegalTransition(TransitionError):
    state: str
    action: str

    def __str__(self) -> str:
        return f"cannot {self.action} a case that is {self.state}"


@dataclass
class RoleNotAllowed(TransitionError):
    action: str
    roles: tuple[str, ...]
    needed: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.action} needs one of the roles {', '.join(self.needed)}"


@dataclass
class SecondCorrection(TransitionError):
    """Art. 32: all corrections are told in ONE notice; a second request is refused."""

    state: str

    def __str__(self) -> str:
        return "the case was already sent back once for corrections; all items must be told in one notice"


@dataclass
class AlreadyExtended(TransitionError):
    state: str

    def __str__(self) -> str:
        return "the decision limit was already extended once (Art. 42 allows one extension)"


def transition(
    state: str,
    action: str,
    roles: tuple[str, ...] | frozenset[str] | set[str] | str,
    *,
    instant: bool = False,
    suspended_from: str | None = None,
    corrections: int = 0,
    extended: bool = False,
) -> str:
    """The state after ``action`` by a caller holding ``roles``; raises a ``TransitionError``."""
    held = {roles} if isinstance(roles, str) else set(roles)
    entry = TABLE.get((state, action))
    if entry is None:
        raise IllegalTransition(state, action)
    new_state, allowed = entry
    if not held & allowed:
        raise RoleNotAllowed(action, tuple(sorted(held)), tuple(sorted(allowed)))
    if action == "request_correction" and corrections >= 1:
        raise SecondCorrection(state)
    if action == "extend":
        if extended:
            raise AlreadyExtended(state)
        return state
    if action == "resume":
        return suspended_from or new_state
    if action in {"accept", "deem_accept"} and instant:
        return "approved"  # 即办件: decided on acceptance
    return new_state


def allowed_actions(state: str, roles: tuple[str, ...] | set[str]) -> list[str]:
    """Actions the holder of ``roles`` may try in ``state`` (for the case detail and worklist)."""
    held = set(roles)
    return sorted(action for (s, action), (_, allowed) in TABLE.items() if s == state and held & allowed)
