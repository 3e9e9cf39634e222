"""Who may do what, as data: one table of action × relation × roles, and one way to read it — pure.

A service writes its table (``{action: {relation: roles}}``; ``ANY`` for callers who hold no roles,
such as holders, agents and services) and builds an :class:`AccessTable` from it. Every route ends
in ``check``; nothing else decides. Refusals: who may not even read the object gets 404, exactly as
for an object that does not exist; who may read it but not take the action gets 403 naming the
rule (``role`` or ``relation``, or a service's own rule such as ``mandate_scope``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from kit.errors import Problem

if TYPE_CHECKING:
    from kit.auth import Principal

ANY: Final = frozenset({"*"})
Table = Mapping[str, Mapping[str, frozenset[str]]]

# Relations of a caller to an object of one applicant's case (a shipment, a payment order):
# see applicant_side_relation.
AGENT: Final = "agent"
AGENT_OUTSIDE_SCOPE: Final = "agent_outside_scope"
DEPARTMENT: Final = "department"
SUPERVISOR_RELATION: Final = "supervisor"
NONE: Final = "none"


@dataclass(frozen=True)
class Decision:
    """The table's answer: allowed, or the status and rule of the refusal."""

    allowed: bool
    status: int = 200
    rule: str = ""
    detail: str = ""

    def problem(self) -> Problem:
        if self.status == 404:
            return Problem(404, "not-found", "Not found", self.detail or "not found")
        if self.status == 401:
            return Problem(401, "unauthorized", "Not authenticated", self.detail, rule=self.rule)
        return Problem(self.status, "forbidden", "Not allowed", self.detail, rule=self.rule)


@dataclass(frozen=True)
class AccessTable:
    """A service's table and how it refuses.

    ``hidden``: actions on one existing object; a caller the ``read`` action does not admit gets
    404 (``not_found``) for them. ``refusal``: the service's own refusals, asked before the generic
    ones (a partner that is not one: 401; an agent outside its mandate: 403 ``mandate_scope``)."""

    table: Table
    read: str
    hidden: frozenset[str]
    not_found: str = "not found"
    refusal: Callable[[str, str], Decision | None] | None = None

    def permitted(self, action: str, relation: str, roles: Iterable[str]) -> bool:
        """Whether the table has a cell for (action, relation) that the roles satisfy."""
        cell = self.table[action].get(relation)
        return cell is not None and ("*" in cell or bool(cell & set(roles)))

    def decide(self, action: str, relation: str, roles: Iterable[str]) -> Decision:
        """The table's answer for one caller. An unknown action is a programming error (KeyError)."""
        roles = tuple(roles)
        if self.permitted(action, relation, roles):
            return Decision(True)
        if action in self.hidden and not self.permitted(self.read, relation, roles):
            return Decision(False, 404, "visible", self.not_found)
        own = self.refusal(action, relation) if self.refusal else None
        if own is not None:
            return own
        cells = self.table[action]
        if relation in cells:
            needed = ", ".join(sorted(cells[relation]))
            return Decision(False, 403, "role", f"{action} needs one of the roles {needed}")
        where = ", ".join(sorted(cells))
        return Decision(False, 403, "relation", f"{action} is for: {where} (you are: {relation})")

    def check(self, action: str, relation: str, roles: Iterable[str]) -> None:
        """Raise the refusal's problem unless the table allows the action."""
        decision = self.decide(action, relation, roles)
        if not decision.allowed:
            raise decision.problem()


def applicant_side_relation(
    principal: Principal, *, applicant: str, department: str, own: str, covers: Callable[[Principal], bool]
) -> str:
    """The caller's relation to an object of one applicant's case worked by ``department``: an
    officer of it is ``department``, another officer holding the supervisor role ``supervisor``;
    the applicant itself (a person, or an enterprise token without an agent) is ``own``; a person
    acting for it is ``agent`` when its mandate ``covers`` the object, else ``agent_outside_scope``;
    anybody else ``none``."""
    if principal.kind == "officer":
        if principal.department and principal.department == department:
            return DEPARTMENT
        return SUPERVISOR_RELATION if "supervisor" in principal.roles else NONE
    if principal.kind not in {"person", "enterprise"} or principal.subject != applicant:
        return NONE
    if principal.actor is None:
        return own
    return AGENT if covers(principal) else AGENT_OUTSIDE_SCOPE


def applicant_side_list_scope(
    principal: Principal, *, own: str, covers: Callable[[Principal], bool]
) -> tuple[str, str | None]:
    """Which objects a caller's list shows: ``(own, subject)`` for the applicant's side,
    ``("department", code)`` for an officer, ``("all", None)`` for a supervisor; ``("none", None)``
    when nothing (an agent whose mandate does not ``cover`` them, an officer without a department)."""
    if principal.kind == "officer":
        if "supervisor" in principal.roles:
            return "all", None
        return ("department", principal.department) if principal.department else ("none", None)
    if principal.kind in {"person", "enterprise"}:
        if principal.actor is not None and not covers(principal):
            return "none", None
        return own, principal.subject
    return "none", None
