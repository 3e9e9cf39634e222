"""The case state machine (办件状态): pure, no I/O.

``transition(state, action, party, ...)`` returns the new state or raises: ``IllegalTransition``
(the action is not possible in this state: HTTP 409 naming the state), ``PartyNotAllowed`` (another
party's action), or a rule of the law (one correction notice, one extension, branches pending).
Which officer may act (role × relation) is domain/access.py's table, not this one. The workflow:

submitted ─instant_approve (system, 秒批)→ approved
submitted ─accept→ accepted (instant matters: approved) ─review→ reviewed ─approve→ approved
          ─reject→ rejected                                              ─deny→ denied
          ─request_correction→ correction_requested ─resubmit→ resubmitted ─accept/reject→ …
approved ─deliver→ delivering ─complete→ completed (window pickup may complete at once)
accepted/reviewed ─suspend→ suspended ─resume→ the state it was suspended from
withdraw (applicant) from any state before a decision.

Two steps change no state (like ``extend``): before a decision the applicant may ask the carrier to
collect the originals (``request_pickup``, 上门收件) until the department has them, and an officer of
the department records that the originals arrived (``originals_received``, once).
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

# States in which the department may still need the applicant's originals (checked before the
# decision): a pickup may be asked for and their arrival recorded.
AWAITING_ORIGINALS = BEFORE_DECISION

# Who takes an action: an officer (which officer, by role and relation, is domain/access.py's
# table), the applicant (or its agent), or the system (timers, other services' events).
OFFICER, APPLICANT, SYSTEM = "officer", "applicant", "system"
PARTIES = (OFFICER, APPLICANT, SYSTEM)

# (state, action) → (new state, parties that may take it). "suspended → resume" is resolved at runtime.
TABLE: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}
# The same table by state: action → parties (what ``allowed_actions`` looks through).
_ACTIONS_IN: dict[str, dict[str, frozenset[str]]] = {}


def _allow(states: tuple[str, ...], action: str, new_state: str, *parties: str) -> None:
    for state in states:
        TABLE[(state, action)] = (new_state, frozenset(parties))
        _ACTIONS_IN.setdefault(state, {})[action] = frozenset(parties)


_allow(("submitted", "resubmitted"), "accept", "accepted", OFFICER)
_allow(("submitted", "resubmitted"), "deem_accept", "accepted", SYSTEM)
_allow(("submitted", "resubmitted"), "reject", "rejected", OFFICER)
_allow(("submitted", "resubmitted"), "request_correction", "correction_requested", OFFICER)
_allow(("correction_requested",), "resubmit", "resubmitted", APPLICANT)
_allow(("accepted",), "review", "reviewed", OFFICER)
# A decision straight from "accepted" is legal (matters without a review step); where the matter
# has a review step the service records it as an anomaly.
_allow(("accepted", "reviewed"), "approve", "approved", OFFICER)
_allow(("accepted", "reviewed"), "deny", "denied", OFFICER, SYSTEM)  # system: a parallel branch denied
_allow(("accepted", "reviewed"), "suspend", "suspended", OFFICER)
_allow(("suspended",), "resume", "accepted", OFFICER)
_allow(("accepted", "reviewed"), "extend", "", OFFICER)  # "" = the state does not change
_allow(("approved",), "deliver", "delivering", OFFICER, SYSTEM)
_allow(("approved", "delivering"), "complete", "completed", OFFICER, SYSTEM)
_allow(tuple(BEFORE_DECISION), "withdraw", "withdrawn", APPLICANT)
_allow(tuple(AWAITING_ORIGINALS), "request_pickup", "", APPLICANT)
_allow(tuple(AWAITING_ORIGINALS), "originals_received", "", OFFICER)
# 秒批 (ADR 0027): the platform accepts and approves at once under an instant rule (at submission,
# or once the fee is paid, from where the case waited for it).
_allow(("submitted", "resubmitted", "accepted"), "instant_approve", "approved", SYSTEM)

ACTIONS = frozenset(action for _, action in TABLE)
OFFICER_ACTIONS = frozenset(action for (_, action), (_, parties) in TABLE.items() if OFFICER in parties)


class TransitionError(Exception):
    """Base of the state machine's refusals."""


@dataclass
class IllegalTransition(TransitionError):
    state: str
    action: str

    def __str__(self) -> str:
        return f"cannot {self.action} a case that is {self.state}"


@dataclass
class PartyNotAllowed(TransitionError):
    """The action is another party's (e.g. ``deem_accept`` is the timer's, ``resubmit`` the applicant's)."""

    action: str
    party: str

    def __str__(self) -> str:
        return f"{self.action} is not an action of the {self.party}"


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


@dataclass
class OriginalsReceived(TransitionError):
    """The department already has the originals: no pickup to ask for, nothing to record twice."""

    state: str

    def __str__(self) -> str:
        return "the department has recorded the originals as received already"


@dataclass
class NoOriginals(TransitionError):
    """The matter asks for no material in original form: there is nothing to collect or receive."""

    state: str

    def __str__(self) -> str:
        return "this matter asks for no originals"


@dataclass
class BranchesPending(TransitionError):
    """并联审批: the lead approves only when every parallel branch has approved."""

    state: str
    pending: tuple[str, ...]

    def __str__(self) -> str:
        return f"waiting for the decisions of {', '.join(self.pending)}"


def transition(
    state: str,
    action: str,
    party: str,
    *,
    instant: bool = False,
    suspended_from: str | None = None,
    corrections: int = 0,
    extended: bool = False,
    pending_branches: tuple[str, ...] = (),
    originals_received: bool = False,
    needs_originals: bool = True,
) -> str:
    """The state after ``action`` taken by ``party`` (officer, applicant or system); raises a
    ``TransitionError``. Which officer may take it is domain/access.py's question."""
    entry = TABLE.get((state, action))
    if entry is None:
        raise IllegalTransition(state, action)
    new_state, parties = entry
    if party not in parties:
        raise PartyNotAllowed(action, party)
    if action == "request_correction" and corrections >= 1:
        raise SecondCorrection(state)
    if action == "approve" and pending_branches:
        raise BranchesPending(state, tuple(pending_branches))
    if action == "extend" and extended:
        raise AlreadyExtended(state)
    if action in {"request_pickup", "originals_received"}:
        if not needs_originals:
            raise NoOriginals(state)
        if originals_received:
            raise OriginalsReceived(state)
    if new_state == "":  # a step that changes no state
        return state
    if action == "resume":
        return suspended_from or new_state
    if action in {"accept", "deem_accept"} and instant:
        return "approved"  # 即办件: decided on acceptance
    return new_state


def allowed_actions(state: str, party: str, **facts: object) -> list[str]:
    """Every action ``transition`` would accept from ``party`` in ``state`` with these facts of the
    case (``corrections``, ``extended``, ``pending_branches``, …): derived from the same rules, so
    what is offered is exactly what would be accepted (by the state machine)."""
    offered = []
    for action, parties in _ACTIONS_IN.get(state, {}).items():
        if party not in parties:
            continue
        try:
            transition(state, action, party, **facts)  # type: ignore[arg-type]
        except TransitionError:
            continue
        offered.append(action)
    return sorted(offered)
