"""The access table walked whole: every action × relation × role has exactly the answer the table
gives, refusals follow the 404/403/401 rules, and relations come from the token alone."""

from __future__ import annotations

import pytest

from kit.auth import Principal
from kit.testing import access_cells, access_refusals
from services.express.domain import access


@pytest.mark.parametrize(("action", "relation"), access_cells(access))
def test_every_cell(action, relation):
    for roles, decision in access_refusals(access, action, relation):
        if action == "tracking.callback":
            assert decision.status == 401
        elif not access.permitted("shipment.read", relation, roles):
            assert decision.status == 404  # who may not read a shipment learns nothing of it
        else:
            assert decision.status == 403 and decision.rule in {"role", "relation"}


# The contract (docs/adr/0017-express.md) in words: relation → (read, unmasked).
EXPECTED = {
    access.APPLICANT: (True, True),
    access.AGENT: (True, True),
    access.AGENT_OUTSIDE_SCOPE: (False, False),
    access.DEPARTMENT: (True, True),
    access.CARRIER: (False, False),
    access.NONE: (False, False),
}


@pytest.mark.parametrize("relation", list(EXPECTED))
def test_the_table_says_what_the_contract_says(relation):
    read, unmasked = EXPECTED[relation]
    roles = ("acceptor",) if relation == access.DEPARTMENT else ()
    assert access.permitted("shipment.read", relation, roles) is read
    assert access.permitted("shipment.read_unmasked", relation, roles) is unmasked


def test_a_supervisor_reads_masked_and_only_with_the_role():
    assert access.permitted("shipment.read", access.SUPERVISOR_RELATION, ("supervisor",))
    assert not access.permitted("shipment.read_unmasked", access.SUPERVISOR_RELATION, ("supervisor",))
    assert access.decide("shipment.read_unmasked", access.SUPERVISOR_RELATION, ("supervisor",)).status == 403
    assert access.decide("shipment.read", access.SUPERVISOR_RELATION, ()).status == 404
    assert access.permitted("tracking.callback", access.CARRIER, ())
    assert access.decide("tracking.callback", access.DEPARTMENT, ("admin",)).status == 401


def _p(**claims) -> Principal:
    return Principal.from_claims({"sub": "11010519491231002X", "kind": "person", **claims})


def test_relations_from_the_token():
    rel = lambda p: access.shipment_relation(p, applicant="11010519491231002X", department="SCJGJ")  # noqa: E731
    assert rel(_p()) == access.APPLICANT
    assert rel(_p(sub="110105194912310038")) == access.NONE
    assert rel(_p(act={"sub": "x"}, scope="express")) == access.AGENT
    assert rel(_p(act={"sub": "x"}, scope="caseflow")) == access.AGENT
    assert rel(_p(act={"sub": "x"}, scope="licence")) == access.AGENT_OUTSIDE_SCOPE
    officer = lambda dept, *roles: Principal.from_claims(  # noqa: E731
        {"sub": "o", "kind": "officer", "dept": dept, "roles": list(roles)}
    )
    assert rel(officer("SCJGJ", "acceptor")) == access.DEPARTMENT
    assert rel(officer("SCJGJ", "supervisor")) == access.DEPARTMENT  # own department: full view
    assert rel(officer("BDCDJ", "acceptor")) == access.NONE
    assert rel(officer("JXJ", "supervisor")) == access.SUPERVISOR_RELATION
    assert access.carrier_relation("ems", carrier_partner="ems") == access.CARRIER
    assert access.carrier_relation("dept-scjgj", carrier_partner="ems") == access.NONE
    assert access.carrier_relation(None, carrier_partner="ems") == access.NONE


def test_list_scopes():
    assert access.list_scope(_p()) == ("applicant", "11010519491231002X")
    assert access.list_scope(_p(act={"sub": "x"}, scope="licence")) == ("none", None)
    officer = Principal.from_claims({"sub": "o", "kind": "officer", "dept": "SCJGJ", "roles": ["acceptor"]})
    assert access.list_scope(officer) == ("department", "SCJGJ")
    supervisor = Principal.from_claims({"sub": "o", "kind": "officer", "dept": "JXJ", "roles": ["supervisor"]})
    assert access.list_scope(supervisor) == ("all", None)
