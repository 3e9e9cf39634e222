"""The one access table walked whole: every action × relation × role has the answer the table
gives, refusals follow the 404/403/401 rules, and relations come from the token alone."""

from __future__ import annotations

import pytest

from kit.auth import Principal
from kit.testing import access_cells, access_refusals
from services.exchange.domain import access


@pytest.mark.parametrize(("action", "relation"), access_cells(access))
def test_every_cell(action, relation):
    for _roles, decision in access_refusals(access, action, relation):
        if action == "push.submit":
            assert (decision.status, decision.rule) == (
                (403, "wrong_department") if relation == access.PARTNER_ELSEWHERE else (401, "partner")
            )
        elif action == "partner_keys.export":
            assert (decision.status, decision.rule) == (401, "service")
        elif action in access.HIDDEN:
            # who may not read it learns nothing of it: the words of a missing one
            assert (decision.status, decision.detail) == (404, access.missing(action).detail)
        elif relation == access.NONE:
            assert (decision.status, decision.rule) == (403, "officer")
        else:
            assert decision.status == 403 and decision.rule in {"role", "relation"}


def test_every_object_s_reads_have_the_same_cells():
    # ACCESS hides every object behind partner.read: right only while all reads agree.
    reads = {action: access.TABLE[action] for action in access.ACTIONS if action.endswith(".read")}
    assert len(set(map(str, reads.values()))) == 1 and set(reads) == {f"{o}.read" for o in access.NOT_FOUND}


# The brief in words: who administers partners, pushes, subscriptions and deliveries.
EXPECTED_ADMIN = {
    (access.PLATFORM, "admin"): True,
    (access.PLATFORM, "supervisor"): False,
    (access.DEPARTMENT, "admin"): True,
    (access.DEPARTMENT, "acceptor"): False,
    (access.OTHER_DEPARTMENT, "admin"): False,
    (access.NONE, "admin"): False,
    (access.PARTNER, ""): False,
    (access.GATEWAY, ""): False,
}


@pytest.mark.parametrize(("relation", "role"), list(EXPECTED_ADMIN))
def test_only_admins_of_the_platform_or_the_department_administer(relation, role):
    roles = (role,) if role else ()
    for action in ("partner.create", "partner.revoke", "partner.key_add", "push.list", "subscription.create",
                   "subscription.manage", "delivery.replay"):  # fmt: skip
        assert access.permitted(action, relation, roles) is EXPECTED_ADMIN[(relation, role)]
    assert access.permitted("push.submit", relation, roles) is (relation == access.PARTNER)
    assert access.permitted("partner_keys.export", relation, roles) is (relation == access.GATEWAY)


def officer(department: str | None, *roles: str) -> Principal:
    return Principal(subject=f"officer:{department}", kind="officer", level=3, roles=roles, department=department)


def test_relations_come_from_the_token():
    assert access.relation_to(officer("ADMIN", "admin"), "BDCDJ") == access.PLATFORM
    assert access.relation_to(officer("ADMIN", "admin"), None) == access.PLATFORM
    assert access.relation_to(officer("BDCDJ", "admin"), "BDCDJ") == access.DEPARTMENT
    assert access.relation_to(officer("SCJGJ", "admin"), "BDCDJ") == access.OTHER_DEPARTMENT
    assert access.relation_to(officer("BDCDJ", "admin"), None) == access.OTHER_DEPARTMENT
    assert access.relation_to(officer(None, "admin"), "BDCDJ") == access.NONE
    person = Principal(subject="11010519491231002X", kind="person", level=2, roles=("admin",), department="ADMIN")
    assert access.relation_to(person, "BDCDJ") == access.NONE  # a person's claims mean nothing
    assert access.partner_relation("BDCDJ", "BDCDJ") == access.PARTNER
    assert access.partner_relation("BDCDJ", "SCJGJ") == access.PARTNER_ELSEWHERE


def test_a_department_officer_lists_its_own_department_by_default():
    assert access.list_scope(officer("BDCDJ", "admin"), None) == "BDCDJ"
    assert access.list_scope(officer("ADMIN", "admin"), None) is None  # every department
    assert access.list_scope(officer("BDCDJ", "admin"), "SCJGJ") == "SCJGJ"  # then refused by the table
    assert access.list_scope(officer("ADMIN", "admin"), "SWJ") == "SWJ"


def test_a_missing_object_and_a_hidden_one_get_the_same_words():
    assert access.not_found("partner.revoke") == "no such partner"
    assert access.decide("push.read", access.OTHER_DEPARTMENT, ("admin",)).detail == "no such push"
    assert access.missing("delivery.replay").status == 404
