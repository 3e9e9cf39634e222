"""Who may do what with shipments: ONE table, action × relation × role — pure.

The relation says where the caller stands to a shipment, computed from the verified token (or, for
the carrier, from the partner id the gateway set after checking the signature):

- ``applicant``: the case's applicant itself (a person, or an enterprise token without an agent);
- ``agent``: a person acting for the applicant (``act``) whose mandate covers the case or
  express (scope ``*``, ``caseflow`` or ``express``); ``agent_outside_scope`` otherwise;
- ``department``: an officer of the case's department (the sender of a result, the receiver of
  originals);
- ``supervisor``: an officer of another department holding the supervisor role (效能监督: sees
  every shipment, masked);
- ``carrier``: EMS, calling back with tracking events (X-Partner-Id: ems);
- ``none``: everybody else (another citizen, another department's officer).

Refusals: who may not read a shipment learns nothing about it — 404, exactly as for a shipment
that does not exist. Reading is either full or masked: names, phones and addresses are shown
only to the applicant's side and the case's department (``shipment.read_unmasked``).
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

# ---- relations (the applicant's side, department, supervisor, none: kit.access) ----------------
APPLICANT: Final = "applicant"
CARRIER: Final = "carrier"
RELATIONS: Final = (APPLICANT, AGENT, AGENT_OUTSIDE_SCOPE, DEPARTMENT, SUPERVISOR_RELATION, CARRIER, NONE)

# ---- roles (identity's officer roles) ---------------------------------------------------------
ACCEPTOR, REVIEWER, DECIDER, COUNTER, SUPERVISOR, ADMIN = (
    "acceptor", "reviewer", "decider", "counter", "supervisor", "admin",
)  # fmt: skip
OFFICER_ROLES: Final = (ACCEPTOR, REVIEWER, DECIDER, COUNTER, SUPERVISOR, ADMIN)

_OWN = {APPLICANT: ANY, AGENT: ANY}
_STAFF = frozenset(OFFICER_ROLES)  # anyone working the department's cases sends and receives parcels

# action → relation → roles that may take it from there. Not listed: refused.
TABLE: Final[dict[str, dict[str, frozenset[str]]]] = {
    "shipment.read": {**_OWN, DEPARTMENT: _STAFF, SUPERVISOR_RELATION: frozenset({SUPERVISOR})},
    "shipment.read_unmasked": {**_OWN, DEPARTMENT: _STAFF},
    "tracking.callback": {CARRIER: ANY},
}
ACTIONS: Final = tuple(TABLE)
# Actions on one existing shipment: a caller who cannot read it gets 404.
SHIPMENT_ACTIONS: Final = frozenset({"shipment.read", "shipment.read_unmasked"})


def _refusal(action: str, relation: str) -> Decision | None:
    if action == "tracking.callback":
        return Decision(False, 401, "partner", "tracking callbacks come from the carrier through the gateway")
    return None


ACCESS: Final = AccessTable(TABLE, read="shipment.read", hidden=SHIPMENT_ACTIONS, not_found="no such shipment",
                            refusal=_refusal)  # fmt: skip
permitted, decide, check = ACCESS.permitted, ACCESS.decide, ACCESS.check


def mandate_covers(principal: Principal) -> bool:
    """An agent's mandate covers shipments: ``*``, ``caseflow`` (the case itself) or ``express``."""
    return bool({"*", "caseflow", "express"} & set(principal.scopes))


def shipment_relation(principal: Principal, *, applicant: str, department: str) -> str:
    """The caller's relation to one shipment (its case's applicant and department)."""
    return applicant_side_relation(principal, applicant=applicant, department=department, own=APPLICANT,
                                   covers=mandate_covers)  # fmt: skip


def carrier_relation(partner_id: str | None, *, carrier_partner: str) -> str:
    """The caller's relation to the tracking callback: the carrier, as the gateway vouched."""
    return CARRIER if partner_id and partner_id == carrier_partner else NONE


def list_scope(principal: Principal) -> tuple[str, str | None]:
    """Which shipments a caller's list shows: ``("applicant", subject)``, ``("department", code)``
    or ``("all", None)`` for a supervisor; ``("none", None)`` when nothing (an agent whose mandate
    does not cover shipments, an officer without a department)."""
    return applicant_side_list_scope(principal, own="applicant", covers=mandate_covers)
