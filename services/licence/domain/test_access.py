"""The access table walked whole: every action × relation × role has exactly the answer the table
gives, and refusals follow the 404/403 rules."""

from __future__ import annotations

import pytest

from kit.auth import Principal
from kit.testing import access_cells, access_refusals
from services.licence.domain import access


@pytest.mark.parametrize(("action", "relation"), access_cells(access))
def test_every_cell(action, relation):
    for roles, decision in access_refusals(access, action, relation):
        if action in access.LICENCE_ACTIONS and not access.permitted("licence.read", relation, roles):
            assert decision.status == 404  # who may not read a licence learns nothing of it
        else:
            assert decision.status == 403 and decision.rule in {"role", "relation", "mandate_scope"}


def test_the_table_says_what_the_contract_says():
    assert access.permitted("licence.read", access.HOLDER, ())
    assert not access.permitted("licence.read", access.NONE, ())
    assert access.decide("licence.read", access.NONE, ()).status == 404
    assert access.permitted("licence.access_log", access.HOLDER, ())
    assert access.decide("licence.access_log", access.ISSUER_OFFICER, ("admin",)).status == 403
    assert access.permitted("licence.revoke", access.ISSUER_OFFICER, ("decider",))
    assert not access.permitted("licence.revoke", access.ISSUER_OFFICER, ("acceptor",))
    assert access.permitted("licence.check", access.CASEFLOW, ())
    assert not access.permitted("licence.check", access.ISSUER_OFFICER, ("admin",))


def _principal(**claims) -> Principal:
    return Principal.from_claims({"sub": "91350100M000100Y43", "kind": "enterprise", **claims})


def test_relations_from_the_token():
    holder = "91350100M000100Y43"
    rel = lambda p: access.licence_relation(p, holder=holder, issuer="SCJGJ", licence_type="food")  # noqa: E731
    assert rel(_principal()) == access.HOLDER
    assert rel(_principal(act={"sub": "x"}, scope="licence")) == access.AGENT
    assert rel(_principal(act={"sub": "x"}, scope="licence:food")) == access.AGENT
    assert rel(_principal(act={"sub": "x"}, scope="licence:other caseflow")) == access.AGENT_OUTSIDE_SCOPE
    assert rel(_principal(sub="11010519491231002X", kind="person")) == access.NONE
    assert rel(Principal.from_claims({"sub": "o", "kind": "officer", "dept": "SCJGJ"})) == access.ISSUER_OFFICER
    assert rel(Principal.from_claims({"sub": "o", "kind": "officer", "dept": "BDCDJ"})) == access.NONE
    assert access.covered_types(_principal(act={"sub": "x"}, scope="licence:a licence:b")) == {"a", "b"}
    assert access.covered_types(_principal()) is None


def test_a_department_issues_only_its_types():
    # one rule for an officer's issuance and a department system's pushed certificate
    assert access.issues_type("BDCDJ", issuers=("BDCDJ",))
    assert not access.issues_type("SCJGJ", issuers=("BDCDJ",))
    assert not access.issues_type(None, issuers=("BDCDJ",))
    assert not access.issues_type("", issuers=("",))
    officer = Principal.from_claims({"sub": "o", "kind": "officer", "dept": "SCJGJ"})
    assert access.issuing_relation(officer, issuers=("SCJGJ", "GAJ")) == access.ISSUER_OFFICER
    assert access.issuing_relation(officer, issuers=("BDCDJ",)) == access.NONE


def test_a_pdf_is_a_print_at_a_kiosk_or_the_counter_and_a_download_online():
    assert access.pdf_action(_principal()) == "licence.pdf"
    assert access.pdf_action(_principal(chn="kiosk", dev="KIOSK-1")) == "licence.print"
    assert access.pdf_action(_principal(chn="counter", hlp={"sub": "officer:a"})) == "licence.print"
    # the holder's side prints; nobody else, not the issuing officer either
    assert access.permitted("licence.print", access.HOLDER, ()) and access.permitted("licence.print", access.AGENT, ())
    assert not access.permitted("licence.print", access.AGENT_OUTSIDE_SCOPE, ())
    assert access.decide("licence.print", access.ISSUER_OFFICER, ("decider",)).status == 403
    assert access.decide("licence.print", access.NONE, ()).status == 404
