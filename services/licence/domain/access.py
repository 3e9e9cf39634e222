"""Who may do what with e-licences: ONE table, action × relation × role — pure.

The relation says where the caller stands to the licence (or, without a licence, to the licence
type or its own wallet), computed from the verified token only:

- ``holder``: the licence's holder itself (a person, or an enterprise token without an agent);
- ``agent``: a person acting for the holder (``act``) whose mandate covers licences
  (scope ``*``, ``licence`` or ``licence:<type>``); ``agent_outside_scope`` otherwise;
- ``issuer_officer``: an officer of the department that issued the licence (for issuing and
  importing: of a department that issues the type);
- ``caseflow``: the caseflow service, authenticated by its HMAC signature on ``POST /checks``;
- ``none``: everybody else (another citizen, another department's officer).

A cell lists the officer roles that may act from that relation; ``ANY`` is for holders, agents
and services, who hold no roles. Every route ends in ``check``; nothing else decides.

Refusals: who may not read a licence learns nothing about it — 404, exactly as for a licence that
does not exist (another citizen gets 404 on my licence, never 403). Who may read it but not take
the action gets 403 naming the rule (``role``, ``relation`` or ``mandate_scope``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from kit.access import ANY, AccessTable, Decision
from kit.auth import Principal

# ---- relations ------------------------------------------------------------------------------
HOLDER: Final = "holder"
AGENT: Final = "agent"
AGENT_OUTSIDE_SCOPE: Final = "agent_outside_scope"
ISSUER_OFFICER: Final = "issuer_officer"
CASEFLOW: Final = "caseflow"
NONE: Final = "none"
RELATIONS: Final = (HOLDER, AGENT, AGENT_OUTSIDE_SCOPE, ISSUER_OFFICER, CASEFLOW, NONE)

# ---- roles (identity's officer roles) ---------------------------------------------------------
ACCEPTOR, REVIEWER, DECIDER, COUNTER, SUPERVISOR, ADMIN = (
    "acceptor", "reviewer", "decider", "counter", "supervisor", "admin",
)  # fmt: skip
OFFICER_ROLES: Final = (ACCEPTOR, REVIEWER, DECIDER, COUNTER, SUPERVISOR, ADMIN)

_HOLDING = {HOLDER: ANY, AGENT: ANY}
_READERS = frozenset({ACCEPTOR, REVIEWER, DECIDER, ADMIN})  # those who work on the issuer's cases
_DECIDERS = frozenset({DECIDER, ADMIN})

# action → relation → roles that may take it from there. Not listed: refused.
TABLE: Final[dict[str, dict[str, frozenset[str]]]] = {
    "wallet.list": _HOLDING,
    "licence.read": {**_HOLDING, ISSUER_OFFICER: _READERS},
    "licence.access_log": _HOLDING,  # who read my licence: the holder's side only
    "licence.qr": _HOLDING,
    "licence.pdf": _HOLDING,
    "licence.print": _HOLDING,  # a print (a kiosk's, or POST /prints): the holder's side, always logged
    "licence.issue": {ISSUER_OFFICER: _DECIDERS},
    "licence.suspend": {ISSUER_OFFICER: _DECIDERS},
    "licence.reinstate": {ISSUER_OFFICER: _DECIDERS},
    "licence.revoke": {ISSUER_OFFICER: _DECIDERS},
    "licence.import": {ISSUER_OFFICER: frozenset({ADMIN})},
    "licence.check": {CASEFLOW: ANY},
    "licence.holdings": {CASEFLOW: ANY},  # 秒批 / 零填报: the applicant's licences of some types
}
ACTIONS: Final = tuple(TABLE)
# Actions on one existing licence: a caller who cannot read it gets 404.
LICENCE_ACTIONS: Final = frozenset(
    {"licence.read", "licence.access_log", "licence.qr", "licence.pdf", "licence.print", "licence.suspend",
     "licence.reinstate", "licence.revoke"}
)  # fmt: skip
# Reads that are written to the licence's access log (a read by anyone but the holder's side).
LOGGED_RELATIONS: Final = frozenset({ISSUER_OFFICER, CASEFLOW})
# Channels where handing out the PDF is a print on paper (a kiosk has no download), logged as one.
PRINTING_CHANNELS: Final = frozenset({"kiosk", "counter"})


def pdf_action(principal: Principal) -> str:
    """GET /pdf: a download online, a print (``licence.print``, logged) at a kiosk or the counter."""
    return "licence.print" if principal.channel in PRINTING_CHANNELS else "licence.pdf"


def _refusal(action: str, relation: str) -> Decision | None:
    if relation == AGENT_OUTSIDE_SCOPE:
        return Decision(False, 403, "mandate_scope", "the mandate does not cover licences (scope licence)")
    return None


ACCESS: Final = AccessTable(TABLE, read="licence.read", hidden=LICENCE_ACTIONS, not_found="no such licence",
                            refusal=_refusal)  # fmt: skip
permitted, decide, check = ACCESS.permitted, ACCESS.decide, ACCESS.check


def mandate_covers(principal: Principal, licence_type: str | None) -> bool:
    """An agent's mandate covers licences: ``*``, ``licence`` or ``licence:<type>`` (any type when
    ``licence_type`` is None, as for the wallet: it then shows only the types covered)."""
    scopes = set(principal.scopes)
    if {"*", "licence"} & scopes:
        return True
    if licence_type is None:
        return any(scope.startswith("licence:") for scope in scopes)
    return f"licence:{licence_type}" in scopes


def covered_types(principal: Principal) -> frozenset[str] | None:
    """The licence types an agent's mandate covers; None when it covers all (or no agent)."""
    if principal.actor is None or {"*", "licence"} & set(principal.scopes):
        return None
    return frozenset(scope.split(":", 1)[1] for scope in principal.scopes if scope.startswith("licence:"))


def holder_relation(principal: Principal, *, holder: str, licence_type: str | None) -> str:
    """How a citizen or enterprise caller stands to a holder's licence (or wallet)."""
    if principal.kind not in {"person", "enterprise"} or principal.subject != holder:
        return NONE
    if principal.actor is None:
        return HOLDER
    return AGENT if mandate_covers(principal, licence_type) else AGENT_OUTSIDE_SCOPE


def licence_relation(principal: Principal, *, holder: str, issuer: str, licence_type: str) -> str:
    """The caller's relation to one licence (its holder, issuing department and type)."""
    if principal.kind == "officer":
        return ISSUER_OFFICER if principal.department and principal.department == issuer else NONE
    return holder_relation(principal, holder=holder, licence_type=licence_type)


def issuing_relation(principal: Principal, *, issuers: Iterable[str]) -> str:
    """The caller's relation to a licence type it wants to issue or import: an officer of one of
    the type's issuing departments, or nobody."""
    if principal.kind == "officer" and issues_type(principal.department, issuers=issuers):
        return ISSUER_OFFICER
    return NONE


def issues_type(department: str | None, *, issuers: Iterable[str]) -> bool:
    """The department is one of the type's issuing departments: the rule for an officer's direct
    issuance and for a certificate the department's own system pushes (licence.department_certificates)."""
    return bool(department) and department in set(issuers)


def wallet_relation(principal: Principal) -> str:
    """The caller's relation to its own wallet (the subject's licences)."""
    return holder_relation(principal, holder=principal.subject, licence_type=None)
