"""A licence's status and what moves it: one table of (status, action) → new status — pure.

``valid`` ⇄ ``suspended`` (suspend / reinstate, by the issuing department, with a reason);
``valid`` or ``suspended`` → ``revoked`` (revoke: final); ``valid`` or ``suspended`` → ``expired``
(the timer, when ``valid_until`` has passed: final — a renewal is a new issuance). A suspended
licence that reaches its end date expires: reinstating it afterwards would revive a dead licence.
"""

from __future__ import annotations

from typing import Final

from kit.errors import Problem

VALID, SUSPENDED, REVOKED, EXPIRED = "valid", "suspended", "revoked", "expired"
STATUSES: Final = (VALID, SUSPENDED, REVOKED, EXPIRED)
FINAL: Final = frozenset({REVOKED, EXPIRED})

# (status, action) → status after. Not listed: the action is not possible in that status (409).
TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    (VALID, "suspend"): SUSPENDED,
    (SUSPENDED, "reinstate"): VALID,
    (VALID, "revoke"): REVOKED,
    (SUSPENDED, "revoke"): REVOKED,
    (VALID, "expire"): EXPIRED,
    (SUSPENDED, "expire"): EXPIRED,
}
ACTIONS: Final = ("suspend", "reinstate", "revoke", "expire")
# The actions officers take (the timer alone expires).
OFFICER_ACTIONS: Final = ("suspend", "reinstate", "revoke")


def next_status(status: str, action: str) -> str:
    """The status after ``action``, or a 409 problem naming the rule when it is not possible."""
    after = TRANSITIONS.get((status, action))
    if after is None:
        raise Problem(
            409,
            "invalid-transition",
            "Not possible in this status",
            f"{action} is not possible for a {status} licence",
            rule="status",
            status_now=status,
        )
    return after


def usable(status: str) -> bool:
    """Whether a licence in this status may be used as application material."""
    return status == VALID
