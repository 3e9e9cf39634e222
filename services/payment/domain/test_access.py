"""The access table walked whole: every action × relation × role has exactly the answer the table
gives, refusals follow the 404/403/401 rules, and relations come from the token alone."""

from __future__ import annotations

import pytest

from kit.auth import Principal
from kit.testing import access_cells, access_refusals
from services.payment.domain import access


@pytest.mark.parametrize(("action", "relation"), access_cells(access))
def test_every_cell(action, relation):
    for roles, decision in access_refusals(access, action, relation):
        if action == "notification.receive":
            assert decision.status == 401
        elif not access.permitted("order.read", relation, roles):
            assert decision.status == 404
        else:
            assert decision.status == 403 and decision.rule in {"role", "relation"}


# The contract (docs/adr/0024-payment.md) in words: relation (with a fitting role) → (read, pay, receipt).
EXPECTED = {
    access.PAYER: (True, True, True),
    access.AGENT: (True, True, True),
    access.AGENT_OUTSIDE_SCOPE: (False, False, False),
    access.DEPARTMENT: (True, False, True),
    access.SUPERVISOR_RELATION: (True, False, False),
    access.PROVIDER: (False, False, False),
    access.NONE: (False, False, False),
}


@pytest.mark.parametrize("relation", list(EXPECTED))
def test_the_table_says_what_the_contract_says(relation):
    roles = {access.DEPARTMENT: ("acceptor",), access.SUPERVISOR_RELATION: ("supervisor",)}.get(relation, ())
    got = tuple(access.permitted(a, relation, roles) for a in ("order.read", "order.pay", "receipt.read"))
    assert got == EXPECTED[relation]
    assert access.permitted("notification.receive", relation, roles) is (relation == access.PROVIDER)


def _p(**claims) -> Principal:
    return Principal.from_claims({"sub": "11010519491231002X", "kind": "person", **claims})


def test_relations_from_the_token():
    rel = lambda p: access.order_relation(p, payer="11010519491231002X", department="SCJGJ")  # noqa: E731
    assert rel(_p()) == access.PAYER
    assert rel(_p(kind="enterprise")) == access.PAYER
    assert rel(_p(sub="110105194912310038")) == access.NONE
    assert rel(_p(act={"sub": "x"}, scope="payment")) == access.AGENT
    assert rel(_p(act={"sub": "x"}, scope="caseflow")) == access.AGENT
    assert rel(_p(act={"sub": "x"}, scope="licence")) == access.AGENT_OUTSIDE_SCOPE
    officer = lambda dept, *roles: Principal.from_claims(  # noqa: E731
        {"sub": "o", "kind": "officer", "dept": dept, "roles": list(roles)}
    )
    assert rel(officer("SCJGJ", "acceptor")) == access.DEPARTMENT
    assert rel(officer("BDCDJ", "acceptor")) == access.NONE
    assert rel(officer("JXJ", "supervisor")) == access.SUPERVISOR_RELATION
    assert rel(Principal.from_claims({"sub": "svc", "kind": "service"})) == access.NONE
    assert access.provider_relation(True) == access.PROVIDER and access.provider_relation(False) == access.NONE
    assert access.list_scope(_p()) == ("payer", "11010519491231002X")
    assert access.list_scope(_p(act={"sub": "x"}, scope="licence")) == ("none", None)
    assert access.list_scope(officer("SCJGJ", "acceptor")) == ("department", "SCJGJ")
    assert access.list_scope(officer("JXJ", "supervisor")) == ("all", None)
