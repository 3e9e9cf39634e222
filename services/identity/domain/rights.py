"""Who may do what in identity: ONE table of action × actor role × relation, no I/O.

Officers are managed by admins within their bounds (docs/adr/0009-identity-trust.md):
- the platform admin (role ``admin`` in department ``ADMIN``) creates, changes and disables any
  officer and grants any role, supervisors and other departments' admins included;
- a department admin (role ``admin`` in department X ≠ ADMIN) creates, changes and disables
  officers of X only, and grants only the case-work roles (acceptor, reviewer, decider, counter):
  never admin (not even of X), never supervisor, never anything in another department or in ADMIN;
- real-name L4 by counter check (一窗受理) needs the ``counter`` role, and so does a counter token
  made for the person the officer verified (ADR 0025);
- the hall's self-service kiosks belong to the department that runs the halls (setting
  ``kiosk_department``, ZWFW 政务服务中心 by default): the platform admin and that department's
  admin register, list, rotate and revoke them; nobody else.

Changing or disabling an officer needs the right for the officer's department before AND after
the change, and the right to grant every role the officer holds before and after: so a department
admin can neither move an officer out of its department nor touch an admin or a supervisor.
"""

from __future__ import annotations

from collections.abc import Iterable

PLATFORM_DEPARTMENT = "ADMIN"

# Actor roles: officers' roles, with admin split by where the admin sits; "person" is any
# citizen or enterprise token.
PLATFORM_ADMIN = "platform_admin"
DEPARTMENT_ADMIN = "department_admin"
ACTOR_ROLES = (PLATFORM_ADMIN, DEPARTMENT_ADMIN, "supervisor", "acceptor", "reviewer", "decider", "counter", "person")

# Relations of the actor to the object of the action.
SAME_DEPARTMENT = "same_department"  # the officer's department is the actor's own
OTHER_DEPARTMENT = "other_department"  # another department, not ADMIN
PLATFORM = "platform_department"  # department ADMIN, the actor being outside it
PERSON = "person"  # the object is a person (counter verification, counter token)
RELATIONS = (SAME_DEPARTMENT, OTHER_DEPARTMENT, PLATFORM, PERSON)

OFFICER_ROLES = ("acceptor", "reviewer", "decider", "counter", "supervisor", "admin")
GRANT = {role: f"grant_{role}" for role in OFFICER_ROLES}

_CASE_WORK = {PLATFORM_ADMIN: {SAME_DEPARTMENT, OTHER_DEPARTMENT}, DEPARTMENT_ADMIN: {SAME_DEPARTMENT}}
_PLATFORM_ONLY = {PLATFORM_ADMIN: {SAME_DEPARTMENT, OTHER_DEPARTMENT}}

# The table. Every (action, actor role, relation) not listed is refused.
RIGHTS: dict[str, dict[str, set[str]]] = {
    "create_officer": _CASE_WORK,
    "change_officer": _CASE_WORK,
    "disable_officer": _CASE_WORK,
    "grant_acceptor": _CASE_WORK,
    "grant_reviewer": _CASE_WORK,
    "grant_decider": _CASE_WORK,
    "grant_counter": _CASE_WORK,
    "grant_admin": _PLATFORM_ONLY,
    "grant_supervisor": _PLATFORM_ONLY,
    "counter_verification": {"counter": {PERSON}},
    "counter_session": {"counter": {PERSON}},
    # A kiosk's relation is its department's (kiosk_department) to the actor's.
    "register_kiosk": _CASE_WORK,
    "list_kiosks": _CASE_WORK,
    "rotate_kiosk_secret": _CASE_WORK,
    "revoke_kiosk": _CASE_WORK,
}
ACTIONS = tuple(RIGHTS)
PERSON_ACTIONS = ("counter_verification", "counter_session")
KIOSK_ACTIONS = ("register_kiosk", "list_kiosks", "rotate_kiosk_secret", "revoke_kiosk")
OFFICER_ACTIONS = tuple(a for a in ACTIONS if a not in PERSON_ACTIONS + KIOSK_ACTIONS)

# Cells no actor can be in: the platform admin's own department IS the platform department, and
# a person has no department; the table must refuse them (checked by test_rights.py).
UNREACHABLE = {(PLATFORM_ADMIN, PLATFORM)} | {("person", SAME_DEPARTMENT)}


def allowed(action: str, actor_role: str, relation: str) -> bool:
    """The table's answer for one cell."""
    return relation in RIGHTS[action].get(actor_role, set())


def actor_roles(kind: str, roles: Iterable[str], department: str | None) -> set[str]:
    """The table's actor roles of a caller (an officer may hold several)."""
    if kind != "officer":
        return {"person"}
    result = {role for role in roles if role in OFFICER_ROLES and role != "admin"}
    if "admin" in roles:
        result.add(PLATFORM_ADMIN if department == PLATFORM_DEPARTMENT else DEPARTMENT_ADMIN)
    return result


def relation_to_department(actor_department: str | None, department: str) -> str:
    """How an actor stands to an officer of ``department``."""
    if actor_department is not None and department == actor_department:
        return SAME_DEPARTMENT
    if department == PLATFORM_DEPARTMENT:
        return PLATFORM
    return OTHER_DEPARTMENT


def may(action: str, roles: set[str], relation: str) -> bool:
    """True when any of the actor's roles is allowed the action in that relation."""
    return any(allowed(action, role, relation) for role in roles)


def officer_change_refusal(
    action: str,
    roles: set[str],
    actor_department: str | None,
    departments: Iterable[str],
    granted: Iterable[str],
) -> str | None:
    """Why the actor may not do ``action`` (create/change/disable) to an officer who is (or will
    be) in ``departments`` and holds (or will hold) ``granted`` roles; None when allowed."""
    for department in sorted(set(departments)):
        relation = relation_to_department(actor_department, department)
        if not may(action, roles, relation):
            return f"{action} is not allowed for an officer of department {department} ({relation})"
        for role in sorted(set(granted)):
            if not may(GRANT[role], roles, relation):
                return f"role {role} in department {department} ({relation}) is beyond the caller's bounds"
    return None
