"""Who may do what in hall: ONE table, action × relation × role — pure (ADR 0023).

The relation says where the caller stands, computed from the verified token alone:

- ``platform``: an officer of the platform's own department (``ADMIN``);
- ``officer``: any other officer (the hall's counter officers, a department's officers);
- ``own_window``: an officer at a window they may work: a comprehensive window (一窗受理, any
  officer) or a department's window (that department's officers, or the platform's);
- ``other_window``: an officer at a department's window of another department;
- ``holder``: the person who booked (or the enterprise they booked for), or the visitor booked for;
- ``person``: a person or enterprise token with no tie to the object;
- ``kiosk``: a person token made at the hall's machine (``chn: kiosk``, the device signed it);
- ``anyone``: no token at all (the public board, the check-in by code).

Refusals: a booking the caller does not hold is 404, worded as for one that does not exist; an
action that needs a token is 401 for ``anyone``; an officer's action is 403 ``officer`` for
citizens; otherwise 403 naming ``role`` or ``relation``.
"""

from __future__ import annotations

from typing import Final

from kit.access import ANY, AccessTable, Decision
from kit.auth import Principal

PLATFORM_DEPARTMENT: Final = "ADMIN"

PLATFORM: Final = "platform"
OFFICER: Final = "officer"
OWN_WINDOW: Final = "own_window"
OTHER_WINDOW: Final = "other_window"
HOLDER: Final = "holder"
PERSON: Final = "person"
KIOSK: Final = "kiosk"
ANYONE: Final = "anyone"
RELATIONS: Final = (PLATFORM, OFFICER, OWN_WINDOW, OTHER_WINDOW, HOLDER, PERSON, KIOSK, ANYONE)

ADMIN: Final = "admin"
COUNTER: Final = "counter"
SUPERVISOR: Final = "supervisor"
OFFICER_ROLES: Final = ("acceptor", "reviewer", "decider", COUNTER, SUPERVISOR, ADMIN)

_PUBLIC = {relation: ANY for relation in RELATIONS}
_DAY_VIEW = frozenset({COUNTER, SUPERVISOR, ADMIN})

TABLE: Final[dict[str, dict[str, frozenset[str]]]] = {
    "hall.read": dict(_PUBLIC),  # a hall, its windows, its free slots
    "hall.manage": {PLATFORM: frozenset({ADMIN})},  # create and change halls and windows
    "queue.board": dict(_PUBLIC),  # waiting count and called numbers: no personal data
    "check_in": dict(_PUBLIC),  # the hall's machine, by the code from the SMS (attempts limited)
    "booking.create": {PERSON: ANY, HOLDER: ANY, KIOSK: ANY},
    "booking.list_mine": {PERSON: ANY, HOLDER: ANY, KIOSK: ANY},
    "booking.read": {HOLDER: ANY},
    "booking.move": {HOLDER: ANY},
    "booking.cancel": {HOLDER: ANY},
    "booking.day_view": {OFFICER: _DAY_VIEW, PLATFORM: _DAY_VIEW, OWN_WINDOW: _DAY_VIEW, OTHER_WINDOW: _DAY_VIEW},
    "ticket.walk_in": {OFFICER: frozenset({COUNTER}), PLATFORM: frozenset({COUNTER, ADMIN}), KIOSK: ANY},
    "ticket.call": {OWN_WINDOW: frozenset({COUNTER})},
    "ticket.finish": {OWN_WINDOW: frozenset({COUNTER})},  # served or missed
}
ACTIONS: Final = tuple(TABLE)
HIDDEN: Final = frozenset({"booking.read", "booking.move", "booking.cancel"})
NOT_FOUND: Final = "no such booking"
OFFICERS_ONLY: Final = frozenset({"hall.manage", "booking.day_view", "ticket.call", "ticket.finish"})
CITIZENS: Final = frozenset({HOLDER, PERSON, KIOSK})


def _refusal(action: str, relation: str) -> Decision | None:
    if relation == ANYONE:
        return Decision(False, 401, "token", f"{action} needs a bearer token")
    if action in OFFICERS_ONLY and relation in CITIZENS:
        return Decision(False, 403, "officer", f"{action} is for officers")
    return None


ACCESS: Final = AccessTable(TABLE, read="booking.read", hidden=HIDDEN, not_found=NOT_FOUND, refusal=_refusal)
permitted = ACCESS.permitted
decide = ACCESS.decide
check = ACCESS.check


def caller_relation(principal: Principal | None) -> str:
    """The relation to nothing in particular: platform, officer, kiosk, person or anyone."""
    if principal is None:
        return ANYONE
    if principal.kind == "officer":
        return PLATFORM if principal.department == PLATFORM_DEPARTMENT else OFFICER
    if principal.channel == "kiosk" and principal.kind == "person":
        return KIOSK
    return PERSON


def booking_relation(principal: Principal | None, *, booker: str, visitor: str) -> str:
    """``holder`` for who booked or who comes; otherwise the caller's plain relation."""
    if principal is not None and principal.kind in {"person", "enterprise"} and principal.subject in {booker, visitor}:
        return HOLDER
    return caller_relation(principal)


def window_relation(principal: Principal | None, *, comprehensive: bool, department: str | None) -> str:
    """An officer's relation to a window: own (comprehensive, own department's, or the platform's
    officer anywhere) or other; citizens keep their plain relation."""
    plain = caller_relation(principal)
    if plain not in {PLATFORM, OFFICER}:
        return plain
    assert principal is not None
    if comprehensive or department is None or plain == PLATFORM or principal.department == department:
        return OWN_WINDOW
    return OTHER_WINDOW
