"""Who may do what in exchange's inbound half: ONE table, action × relation × role — pure.

The relation says where the caller stands to a department (a partner's, a push's, or the one a
list asks about), computed from the verified token, the verified signature or the service key:

- ``platform``: an officer of the platform's own department (``ADMIN``): every department;
- ``department``: an officer of that very department;
- ``partner``: a department system whose signature checked out, pushing for its own department;
- ``partner_elsewhere``: the same, pushing for another department (403 ``wrong_department``);
- ``gateway``: the gateway reading the partners' keys (signed with its service key);
- ``none``: everybody else (citizens, other departments' officers, unsigned callers).

Only the ``admin`` role administers partners: the platform admin for any department, a department's
own admin for its own. Refusals: who may not read a partner learns nothing of it (404, as for one
that does not exist); lists and creation are refused with 403 naming the rule.
"""

from __future__ import annotations

from typing import Final

from kit.access import ANY, AccessTable, Decision
from kit.auth import Principal

PLATFORM_DEPARTMENT: Final = "ADMIN"

# ---- relations --------------------------------------------------------------------------------
PLATFORM: Final = "platform"
DEPARTMENT: Final = "department"
PARTNER: Final = "partner"
PARTNER_ELSEWHERE: Final = "partner_elsewhere"
GATEWAY: Final = "gateway"
NONE: Final = "none"
RELATIONS: Final = (PLATFORM, DEPARTMENT, PARTNER, PARTNER_ELSEWHERE, GATEWAY, NONE)

# ---- roles (identity's officer roles) -----------------------------------------------------------
OFFICER_ROLES: Final = ("acceptor", "reviewer", "decider", "counter", "supervisor", "admin")
ADMIN: Final = "admin"

_ADMINS = {PLATFORM: frozenset({ADMIN}), DEPARTMENT: frozenset({ADMIN})}

# action → relation → roles that may take it from there. Not listed: refused.
TABLE: Final[dict[str, dict[str, frozenset[str]]]] = {
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
}
ACTIONS: Final = tuple(TABLE)
# Actions on one existing partner (or push): a caller who cannot read it gets 404.
HIDDEN: Final = frozenset(
    {"partner.read", "partner.key_add", "partner.key_revoke", "partner.revoke", "partner.reinstate", "push.read"}
)


def _refusal(action: str, relation: str) -> Decision | None:
    if action == "push.submit":
        if relation == PARTNER_ELSEWHERE:
            return Decision(False, 403, "wrong_department", "this partner pushes for another department")
        return Decision(False, 401, "partner", "pushes come from a department's partner, signed")
    if action == "partner_keys.export":
        return Decision(False, 401, "service", "only the gateway reads the partners' keys")
    return None


ACCESS: Final = AccessTable(TABLE, read="partner.read", hidden=HIDDEN, not_found="no such partner",
                            refusal=_refusal)  # fmt: skip
permitted, decide, check = ACCESS.permitted, ACCESS.decide, ACCESS.check


def department_relation(principal: Principal, department: str | None) -> str:
    """An officer's relation to ``department`` (None: every department, as an unfiltered list asks)."""
    if principal.kind != "officer" or not principal.department:
        return NONE
    if principal.department == PLATFORM_DEPARTMENT:
        return PLATFORM
    return DEPARTMENT if department is not None and principal.department == department else NONE


def partner_relation(partner_department: str, pushed_for: str) -> str:
    """A verified partner's relation to the department in the push's path."""
    return PARTNER if partner_department == pushed_for else PARTNER_ELSEWHERE


def list_department(principal: Principal, asked: str | None) -> str | None:
    """Which department a list is about: the one asked for, or the officer's own when the caller
    is a department's officer who asked for none (the platform's officers see all)."""
    if asked is not None:
        return asked
    if principal.kind == "officer" and principal.department and principal.department != PLATFORM_DEPARTMENT:
        return principal.department
    return None
