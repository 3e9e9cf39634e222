"""The outbound access table walked whole: every action × relation × role has exactly the answer
the table gives, refusals follow the 404/403 rules, and relations come from the token alone."""

from __future__ import annotations

import itertools

import pytest

from kit.auth import Principal
from services.exchange.domain import outbound_access as access

ROLE_SETS = [(), *((role,) for role in access.OFFICER_ROLES)]


@pytest.mark.parametrize(("action", "relation"), list(itertools.product(access.ACTIONS, access.RELATIONS)))
def test_every_cell(action, relation):
    for roles in ROLE_SETS:
        expected = relation in (access.PLATFORM, access.DEPARTMENT) and roles == (access.ADMIN,)
        decision = access.decide(action, relation, roles)
        assert decision.allowed == expected, (action, relation, roles)
        if expected:
            continue
        if action in access.OBJECT_ACTIONS:
            assert decision.status == 404  # who may not read it learns nothing of it
        elif relation == access.NONE:
            assert (decision.status, decision.rule) == (403, "officer")
        else:
            assert decision.status == 403 and decision.rule in {"role", "relation"}


def _officer(department: str | None, *roles: str) -> Principal:
    return Principal.from_claims({"sub": "officer:x", "kind": "officer", "dept": department, "roles": list(roles)})


def test_relations_from_the_token():
    assert access.relation_to(_officer("ADMIN", "admin"), "BDCDJ") == access.PLATFORM
    assert access.relation_to(_officer("BDCDJ", "admin"), "BDCDJ") == access.DEPARTMENT
    assert access.relation_to(_officer("SWJ", "admin"), "BDCDJ") == access.OTHER_DEPARTMENT
    assert access.relation_to(_officer(None, "admin"), "BDCDJ") == access.NONE
    person = Principal.from_claims({"sub": "11010519491231002X", "kind": "person", "dept": "BDCDJ", "roles": ["admin"]})
    assert access.relation_to(person, "BDCDJ") == access.NONE  # claims of a person token mean nothing


def test_a_list_is_for_the_department_asked_for_or_the_caller_s_own():
    assert access.list_scope(_officer("ADMIN", "admin"), None) is None  # every department
    assert access.list_scope(_officer("ADMIN", "admin"), "SWJ") == "SWJ"
    assert access.list_scope(_officer("BDCDJ", "admin"), None) == "BDCDJ"
    assert access.list_scope(_officer("BDCDJ", "admin"), "SWJ") == "SWJ"  # then refused by the table
