"""Who may manage webhook subscriptions and deliveries: ONE table, action × relation × role — pure.

The relation is where the caller stands to the department a subscription (or delivery) is for,
from the verified token alone:

- ``platform``: an officer of the platform department (``ADMIN``): every department;
- ``department``: an officer of that department;
- ``other_department``: an officer of another department;
- ``none``: everybody else (citizens, enterprises, services).

Only the admin role manages them, the platform's for any department, a department's for its own.
Refusals: who may not read a subscription or delivery learns nothing of it (404, as for one that
does not exist); lists and creation for a department name the rule (403).
"""

from __future__ import annotations

from typing import Final

from kit.access import AccessTable, Decision
from kit.auth import Principal

PLATFORM_DEPARTMENT: Final = "ADMIN"
PLATFORM: Final = "platform"
DEPARTMENT: Final = "department"
OTHER_DEPARTMENT: Final = "other_department"
NONE: Final = "none"
RELATIONS: Final = (PLATFORM, DEPARTMENT, OTHER_DEPARTMENT, NONE)

ADMIN: Final = "admin"
OFFICER_ROLES: Final = ("acceptor", "reviewer", "decider", "counter", "supervisor", ADMIN)

_ADMINS = {PLATFORM: frozenset({ADMIN}), DEPARTMENT: frozenset({ADMIN})}

# action → relation → roles that may take it from there. Not listed: refused.
TABLE: Final[dict[str, dict[str, frozenset[str]]]] = {
    "subscription.list": dict(_ADMINS),
    "subscription.create": dict(_ADMINS),
    "subscription.read": dict(_ADMINS),
    "subscription.manage": dict(_ADMINS),  # disable, enable, rotate the secret, replay since
    "delivery.list": dict(_ADMINS),
    "delivery.read": dict(_ADMINS),
    "delivery.replay": dict(_ADMINS),
}
ACTIONS: Final = tuple(TABLE)
# Actions on one existing subscription or delivery: a caller who may not read it gets 404.
OBJECT_ACTIONS: Final = frozenset({"subscription.read", "subscription.manage", "delivery.read", "delivery.replay"})


def _refusal(action: str, relation: str) -> Decision | None:
    if relation == NONE:
        return Decision(False, 403, "officer", f"{action} is for the platform's or the department's administrators")
    return None


ACCESS: Final = AccessTable(TABLE, read="subscription.read", hidden=OBJECT_ACTIONS, not_found="no such subscription or delivery",
                            refusal=_refusal)  # fmt: skip
permitted, decide, check = ACCESS.permitted, ACCESS.decide, ACCESS.check


def relation_to(principal: Principal, department: str) -> str:
    """The caller's relation to ``department`` (the one a subscription or delivery is for)."""
    if principal.kind != "officer" or not principal.department:
        return NONE
    if principal.department == PLATFORM_DEPARTMENT:
        return PLATFORM
    return DEPARTMENT if principal.department == department else OTHER_DEPARTMENT


def list_scope(principal: Principal, department: str | None) -> str | None:
    """Which department a list is for: the one asked for, or the caller's own when none is asked
    for; ``None`` = every department (a platform caller asking for no particular one)."""
    if department is not None:
        return department
    if principal.kind == "officer" and principal.department and principal.department != PLATFORM_DEPARTMENT:
        return principal.department
    return None
