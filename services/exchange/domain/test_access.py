"""The access table walked whole: every action × relation × role has the answer the table gives,
refusals follow the 404/403/401 rules, and relations come from the token alone."""

from __future__ import annotations

import itertools

import pytest

from kit.auth import Principal
from services.exchange.domain import access

ROLE_SETS = [(), *((role,) for role in access.OFFICER_ROLES)]


@pytest.mark.parametrize(("action", "relation"), list(itertools.product(access.ACTIONS, access.RELATIONS)))
def test_every_cell(action, relation):
    for roles in ROLE_SETS:
        cell = access.TABLE[action].get(relation)
        expected = cell is not None and ("*" in cell or bool(cell & set(roles)))
        decision = access.decide(action, relation, roles)
        assert decision.allowed == expected
        if expected:
            continue
        if action == "push.submit":
            assert (decision.status, decision.rule) == (
                (403, "wrong_department") if relation == access.PARTNER_ELSEWHERE else (401, "partner")
            )
        elif action == "partner_keys.export":
            assert decision.status == 401
        elif action in access.HIDDEN and not access.permitted("partner.read", relation, roles):
            assert decision.status == 404  # who may not read a partner learns nothing of it
        else:
            assert decision.status == 403 and decision.rule in {"role", "relation"}


# The brief in words: who administers partners and reads pushes.
EXPECTED_ADMIN = {
    (access.PLATFORM, "admin"): True,
    (access.PLATFORM, "supervisor"): False,
    (access.DEPARTMENT, "admin"): True,
    (access.DEPARTMENT, "acceptor"): False,
    (access.NONE, "admin"): False,
    (access.PARTNER, ""): False,
    (access.GATEWAY, ""): False,
}


@pytest.mark.parametrize(("relation", "role"), list(EXPECTED_ADMIN))
def test_only_admins_of_the_platform_or_the_department_administer(relation, role):
    roles = (role,) if role else ()
    for action in ("partner.create", "partner.revoke", "partner.key_add", "push.list"):
        assert access.permitted(action, relation, roles) is EXPECTED_ADMIN[(relation, role)]
    assert access.permitted("push.submit", relation, roles) is (relation == access.PARTNER)
    assert access.permitted("partner_keys.export", relation, roles) is (relation == access.GATEWAY)


def officer(department: str | None, *roles: str) -> Principal:
    return Principal(subject=f"officer:{department}", kind="officer", level=3, roles=roles, department=department)


def test_relations_come_from_the_token():
    assert access.department_relation(officer("ADMIN", "admin"), "BDCDJ") == access.PLATFORM
    assert access.department_relation(officer("ADMIN", "admin"), None) == access.PLATFORM
    assert access.department_relation(officer("BDCDJ", "admin"), "BDCDJ") == access.DEPARTMENT
    assert access.department_relation(officer("SCJGJ", "admin"), "BDCDJ") == access.NONE
    assert access.department_relation(officer("BDCDJ", "admin"), None) == access.NONE
    assert access.department_relation(officer(None, "admin"), "BDCDJ") == access.NONE
    person = Principal(subject="11010519491231002X", kind="person", level=2, roles=("admin",), department="ADMIN")
    assert access.department_relation(person, "BDCDJ") == access.NONE  # a person's claims mean nothing
    assert access.partner_relation("BDCDJ", "BDCDJ") == access.PARTNER
    assert access.partner_relation("BDCDJ", "SCJGJ") == access.PARTNER_ELSEWHERE


def test_a_department_officer_lists_its_own_department_by_default():
    assert access.list_department(officer("BDCDJ", "admin"), None) == "BDCDJ"
    assert access.list_department(officer("ADMIN", "admin"), None) is None
    assert access.list_department(officer("BDCDJ", "admin"), "SCJGJ") == "SCJGJ"
