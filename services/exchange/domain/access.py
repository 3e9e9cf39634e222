"""Who may do what in exchange, both halves (ADR 0019 inbound, ADR 0020 outbound): ONE table,
action × relation × role — pure.

The relation says where the caller stands to a department (a partner's, a push's, a
subscription's, a delivery's, or the one a list asks about), computed from the verified token, the
verified signature or the service key:

- ``platform``: an officer of the platform's own department (``ADMIN``): every department;
- ``department``: an officer of that very department;
- ``other_department``: an officer of another department;
- ``partner``: a department system whose signature checked out, pushing for its own department;
- ``partner_elsewhere``: the same, pushing for another department (403 ``wrong_department``);
- ``gateway``: the gateway reading the partners' keys (signed with its service key);
- ``none``: everybody else (citizens, enterprises, unsigned callers).

Only the ``admin`` role administers partners, pushes, subscriptions and deliveries: the platform's
admin for any department, a department's own admin for its own. Refusals: who may not read one
object (a partner, a push, a subscription, a delivery) learns nothing of it — 404 worded exactly as
for one that does not exist (``not_found``); a list or a creation is refused with 403 naming the
rule: ``officer`` for a caller who is no officer at all, else ``relation`` or ``role``. Pushes and
the keys' export are for signed callers only (401).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from kit.access import ANY, AccessTable, Decision
from kit.auth import Principal
from kit.errors import Problem

PLATFORM_DEPARTMENT: Final = "ADMIN"

# ---- relations --------------------------------------------------------------------------------
PLATFORM: Final = "platform"
DEPARTMENT: Final = "department"
OTHER_DEPARTMENT: Final = "other_department"
PARTNER: Final = "partner"
PARTNER_ELSEWHERE: Final = "partner_elsewhere"
GATEWAY: Final = "gateway"
NONE: Final = "none"
RELATIONS: Final = (PLATFORM, DEPARTMENT, OTHER_DEPARTMENT, PARTNER, PARTNER_ELSEWHERE, GATEWAY, NONE)

# ---- roles (identity's officer roles) -----------------------------------------------------------
ADMIN: Final = "admin"
OFFICER_ROLES: Final = ("acceptor", "reviewer", "decider", "counter", "supervisor", ADMIN)

_ADMINS = {PLATFORM: frozenset({ADMIN}), DEPARTMENT: frozenset({ADMIN})}

# action → relation → roles that may take it from there. Not listed: refused.
TABLE: Final[dict[str, dict[str, frozenset[str]]]] = {
    # inbound (ADR 0019)
    "partner.read": dict(_ADMINS),
    "partner.list": dict(_ADMINS),
    "partner.create": dict(_ADMINS),
    "partner.key_add": dict(_ADMINS),
    "partner.key_revoke": dict(_ADMINS),
    "partner.revoke": dict(_ADMINS),
    "partner.reinstate": dict(_ADMINS),
    "push.list": dict(_ADMINS),
    "push.read": dict(_ADMINS),
    "push.submit": {PARTNER: ANY},
    "partner_keys.export": {GATEWAY: ANY},
    # outbound (ADR 0020)
    "subscription.list": dict(_ADMINS),
    "subscription.create": dict(_ADMINS),
    "subscription.read": dict(_ADMINS),
    "subscription.manage": dict(_ADMINS),  # disable, enable, rotate the secret, replay since
    "delivery.list": dict(_ADMINS),
    "delivery.read": dict(_ADMINS),
    "delivery.replay": dict(_ADMINS),
}
ACTIONS: Final = tuple(TABLE)
# Actions on one existing object: a caller who may not read objects of the department gets 404.
HIDDEN: Final = frozenset(
    {"partner.read", "partner.key_add", "partner.key_revoke", "partner.revoke", "partner.reinstate", "push.read",
     "subscription.read", "subscription.manage", "delivery.read", "delivery.replay"}
)  # fmt: skip
# The 404's words, per object: the same for one that does not exist and for one hidden.
NOT_FOUND: Final = {
    "partner": "no such partner",
    "push": "no such push",
    "subscription": "no such subscription",
    "delivery": "no such delivery",
}


def _refusal(action: str, relation: str) -> Decision | None:
    if action == "push.submit":
        if relation == PARTNER_ELSEWHERE:
            return Decision(False, 403, "wrong_department", "this partner pushes for another department")
        return Decision(False, 401, "partner", "pushes come from a department's partner, signed")
    if action == "partner_keys.export":
        return Decision(False, 401, "service", "only the gateway reads the partners' keys")
    if relation == NONE:
        return Decision(False, 403, "officer", f"{action} is for the platform's or the department's administrators")
    return None


# Every object's read has the same cells (_ADMINS), so one read action stands for all of them.
ACCESS: Final = AccessTable(TABLE, read="partner.read", hidden=HIDDEN, refusal=_refusal)
permitted = ACCESS.permitted


def not_found(action: str) -> str:
    """The 404's words for ``action``'s object (``partner.revoke`` → ``no such partner``)."""
    return NOT_FOUND[action.split(".", 1)[0]]


def missing(action: str) -> Problem:
    """The 404 for an object that does not exist: the very answer a hidden one gets."""
    return Decision(False, 404, "visible", not_found(action)).problem()


def decide(action: str, relation: str, roles: tuple[str, ...] | list[str]) -> Decision:
    """The table's answer for one caller; a hidden object's 404 is worded as for a missing one."""
    decision = ACCESS.decide(action, relation, roles)
    return replace(decision, detail=not_found(action)) if decision.status == 404 else decision


def check(action: str, relation: str, roles: tuple[str, ...] | list[str]) -> None:
    """Raise the refusal's problem unless the table allows the action (every route ends here)."""
    decision = decide(action, relation, roles)
    if not decision.allowed:
        raise decision.problem()


def relation_to(principal: Principal, department: str | None) -> str:
    """An officer's relation to ``department`` (None: every department, as an unfiltered list asks;
    only the platform's officers stand in relation to all of them)."""
    if principal.kind != "officer" or not principal.department:
        return NONE
    if principal.department == PLATFORM_DEPARTMENT:
        return PLATFORM
    return DEPARTMENT if principal.department == department else OTHER_DEPARTMENT


def partner_relation(partner_department: str, pushed_for: str) -> str:
    """A verified partner's relation to the department in the push's path."""
    return PARTNER if partner_department == pushed_for else PARTNER_ELSEWHERE


def list_scope(principal: Principal, asked: str | None) -> str | None:
    """Which department a list is about: the one asked for, or the officer's own when a
    department's officer asked for none; ``None`` = every department (a platform officer asking
    for no particular one)."""
    if asked is not None:
        return asked
    if principal.kind == "officer" and principal.department and principal.department != PLATFORM_DEPARTMENT:
        return principal.department
    return None
