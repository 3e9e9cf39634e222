"""Who may do what with orders, payments and receipts: ONE table, action × relation × role — pure.

The relation says where the caller stands to an order, from the verified token (or, for the
gateway's notifications, from the signature payment verified itself):

- ``payer``: the case's applicant itself (a person, or an enterprise token without an agent);
- ``agent``: a person acting for the applicant (``act``) whose mandate covers payment (scope
  ``*``, ``caseflow`` — the case itself — or ``payment``); ``agent_outside_scope`` otherwise;
- ``department``: an officer of the order's department;
- ``supervisor``: an officer of another department holding the supervisor role (reads orders);
- ``provider``: the payment gateway, its notification signature verified;
- ``none``: everybody else.

Refusals: who may not read an order learns nothing of it — 404 as for an order that does not
exist. Only the payer's side pays. A receipt is the payer's and the department's.
"""

from __future__ import annotations

from typing import Final

from kit.access import (
    AGENT,
    AGENT_OUTSIDE_SCOPE,
    ANY,
    DEPARTMENT,
    NONE,
    SUPERVISOR_RELATION,
    AccessTable,
    Decision,
    applicant_side_list_scope,
    applicant_side_relation,
)
from kit.auth import Principal

PAYER: Final = "payer"
PROVIDER: Final = "provider"
RELATIONS: Final = (PAYER, AGENT, AGENT_OUTSIDE_SCOPE, DEPARTMENT, SUPERVISOR_RELATION, PROVIDER, NONE)

ACCEPTOR, REVIEWER, DECIDER, COUNTER, SUPERVISOR, ADMIN = (
    "acceptor", "reviewer", "decider", "counter", "supervisor", "admin",
)  # fmt: skip
OFFICER_ROLES: Final = (ACCEPTOR, REVIEWER, DECIDER, COUNTER, SUPERVISOR, ADMIN)

_OWN = {PAYER: ANY, AGENT: ANY}
_STAFF = frozenset(OFFICER_ROLES)

# action → relation → roles that may take it from there. Not listed: refused.
TABLE: Final[dict[str, dict[str, frozenset[str]]]] = {
    "order.read": {**_OWN, DEPARTMENT: _STAFF, SUPERVISOR_RELATION: frozenset({SUPERVISOR})},
    "order.pay": {**_OWN},
    "receipt.read": {**_OWN, DEPARTMENT: _STAFF},
    "notification.receive": {PROVIDER: ANY},
}
ACTIONS: Final = tuple(TABLE)
ORDER_ACTIONS: Final = frozenset({"order.read", "order.pay", "receipt.read"})


def _refusal(action: str, relation: str) -> Decision | None:
    if action == "notification.receive":
        return Decision(False, 401, "signature", "notifications come from the payment gateway, signed")
    return None


ACCESS: Final = AccessTable(TABLE, read="order.read", hidden=ORDER_ACTIONS, not_found="no such order",
                            refusal=_refusal)  # fmt: skip
permitted, decide, check = ACCESS.permitted, ACCESS.decide, ACCESS.check


def mandate_covers(principal: Principal) -> bool:
    return bool({"*", "caseflow", "payment"} & set(principal.scopes))


def order_relation(principal: Principal, *, payer: str, department: str) -> str:
    """The caller's relation to one order (its payer and department)."""
    return applicant_side_relation(principal, applicant=payer, department=department, own=PAYER, covers=mandate_covers)


def provider_relation(verified: bool) -> str:
    return PROVIDER if verified else NONE


def list_scope(principal: Principal) -> tuple[str, str | None]:
    """Which orders a caller's list shows: ``("payer", subject)``, ``("department", code)``,
    ``("all", None)`` for a supervisor, or ``("none", None)``."""
    return applicant_side_list_scope(principal, own="payer", covers=mandate_covers)
