"""The access-table engine every service's table runs on."""

from __future__ import annotations

import pytest

from kit.access import ANY, AccessTable, Decision
from kit.errors import Problem

TABLE = {
    "thing.read": {"owner": ANY, "staff": frozenset({"reviewer", "admin"})},
    "thing.delete": {"owner": ANY, "staff": frozenset({"admin"})},
    "thing.create": {"staff": frozenset({"admin"})},
}


def own(action: str, relation: str) -> Decision | None:
    return Decision(False, 403, "mandate_scope", "outside the mandate") if relation == "agent_outside" else None


ACCESS = AccessTable(TABLE, read="thing.read", hidden=frozenset({"thing.read", "thing.delete"}),
                     not_found="no such thing", refusal=own)  # fmt: skip


@pytest.mark.parametrize(
    ("action", "relation", "roles", "expected"),
    [
        ("thing.read", "owner", (), (True, 200, "")),
        ("thing.read", "staff", ("reviewer",), (True, 200, "")),
        ("thing.delete", "staff", ("reviewer",), (False, 403, "role")),  # may read it: told why not
        ("thing.delete", "stranger", (), (False, 404, "visible")),  # may not read it: it does not exist
        ("thing.read", "staff", ("counter",), (False, 404, "visible")),
        ("thing.create", "owner", (), (False, 403, "relation")),  # not an action on one thing: no 404
        ("thing.create", "agent_outside", (), (False, 403, "mandate_scope")),  # the service's own rule
    ],
)
def test_every_kind_of_answer(action, relation, roles, expected):
    decision = ACCESS.decide(action, relation, roles)
    assert (decision.allowed, decision.status, decision.rule) == expected


def test_check_raises_the_refusal_as_a_problem_and_unknown_actions_are_errors():
    ACCESS.check("thing.read", "owner", ())
    with pytest.raises(Problem) as refused:
        ACCESS.check("thing.delete", "stranger", ())
    assert refused.value.status == 404 and refused.value.detail == "no such thing"
    with pytest.raises(KeyError):
        ACCESS.decide("thing.fly", "owner", ())
