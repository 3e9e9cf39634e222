"""The access table's rules, cell by cell where they matter (the HTTP walk of the whole table is
tests/test_access_matrix.py)."""

from __future__ import annotations

import itertools

import pytest

from kit.auth import Principal
from kit.errors import Problem
from services.caseflow.domain import access
from services.caseflow.domain.access import (
    AGENT,
    AGENT_OUTSIDE_MANDATE,
    APPLICANT,
    BRANCH_OFFICER,
    DEPARTMENT_OFFICER,
    NONE,
    PLATFORM_ADMIN,
    SUPERVISOR,
    case_relation,
    decide,
    own_relation,
    require,
)


def officer(department: str, *roles: str) -> Principal:
    return Principal(subject=f"officer:{department.lower()}", kind="officer", level=3, roles=roles,
                     department=department)  # fmt: skip


def person(subject: str = "P", *, actor: str | None = None, scopes: tuple[str, ...] = ()) -> Principal:
    return Principal(subject=subject, kind="enterprise" if actor else "person", level=2, actor=actor, scopes=scopes)


def test_every_cell_names_a_known_relation_and_role():
    for action, cells in access.TABLE.items():
        assert set(cells) <= set(access.RELATIONS) - {NONE}, action
        for roles in cells.values():
            assert roles == access.ANY or roles <= set(access.OFFICER_ROLES) | {access.SYSTEM_ROLE}, action
        for relation, roles in cells.items():  # a department system's cells are its relations' only
            assert (access.SYSTEM_ROLE in roles) == (relation in {access.DEPARTMENT_SYSTEM, access.BRANCH_SYSTEM})


def test_the_counter_role_has_only_the_halls_power():
    """ADR 0026: a counter officer hands window results out (any department's), reads the cases they
    applied for and lists them — nothing else in caseflow."""
    held = {(action, relation) for action, relation in itertools.product(access.ACTIONS, access.RELATIONS)
            if relation not in {APPLICANT, AGENT} and access.permitted(action, relation, ("counter",))}  # fmt: skip
    assert held == {
        ("case.hand_out", DEPARTMENT_OFFICER), ("case.hand_out", BRANCH_OFFICER), ("case.hand_out", access.HELPER),
        ("case.hand_out", access.OTHER_OFFICER), ("case.read", access.HELPER),
        ("counter.list_helped", DEPARTMENT_OFFICER),
    }  # fmt: skip
    assert not access.permitted("case.hand_out", access.OTHER_OFFICER, ("acceptor", "reviewer", "decider"))


def test_a_branch_officer_never_moves_the_lead_case():
    for step in access.OFFICER_STEPS:
        decision = decide(f"case.{step}", BRANCH_OFFICER, ("acceptor", "reviewer", "decider", "supervisor", "admin"))
        assert not decision.allowed and decision.status == 403 and decision.rule == "relation", step
    assert decide("branch.approve", BRANCH_OFFICER, ("decider",)).allowed
    assert not decide("branch.approve", DEPARTMENT_OFFICER, ("decider",)).allowed


def test_only_the_platform_admin_writes_the_calendar():
    assert require(officer("ADMIN", "admin"), "calendar.write") == PLATFORM_ADMIN
    for principal in (officer("SCJGJ", "admin"), officer("ADMIN", "supervisor"), officer("JCZX", "admin"),
                      person()):  # fmt: skip
        with pytest.raises(Problem) as refused:
            require(principal, "calendar.write")
        assert refused.value.status == 403


def test_refusals_hide_the_case_from_those_who_cannot_read_it():
    assert decide("case.accept", NONE, ("acceptor",)).status == 404
    assert decide("case.read", DEPARTMENT_OFFICER, ("counter",)).status == 404
    assert decide("case.accept", SUPERVISOR, ("acceptor",)).status == 404  # a centre officer without the role
    wrong_role = decide("case.accept", DEPARTMENT_OFFICER, ("reviewer",))
    assert (wrong_role.status, wrong_role.type_, wrong_role.rule) == (403, "role-not-allowed", "role")
    assert decide("case.withdraw", AGENT_OUTSIDE_MANDATE, ()).rule == "mandate_scope"


def test_relations_to_a_case():
    facts = dict(applicant="P", department="SCJGJ", branch_departments=["GAJ"], matter_code="M-1")
    assert case_relation(person("P"), **facts) == APPLICANT
    assert case_relation(person("Q"), **facts) == NONE
    assert case_relation(person("P", actor="A", scopes=("caseflow:M-1",)), **facts) == AGENT
    assert case_relation(person("P", actor="A", scopes=("caseflow:M-2",)), **facts) == AGENT_OUTSIDE_MANDATE
    assert case_relation(officer("SCJGJ", "acceptor"), **facts) == DEPARTMENT_OFFICER
    assert case_relation(officer("GAJ", "decider"), **facts) == BRANCH_OFFICER
    assert case_relation(officer("SWJ", "decider"), **facts) == access.OTHER_OFFICER
    helper = officer("HALL", "counter")
    assert case_relation(helper, **facts, helped_by=helper.subject) == access.HELPER
    assert case_relation(helper, **facts, helped_by="officer:other") == access.OTHER_OFFICER
    # an officer of the case's own department stays its department officer, even having helped
    assert case_relation(officer("SCJGJ", "counter"), **facts, helped_by="officer:scjgj") == DEPARTMENT_OFFICER
    assert case_relation(officer("JCZX", "supervisor"), **facts) == SUPERVISOR
    assert case_relation(officer("ADMIN", "admin"), **facts) == PLATFORM_ADMIN


def test_relations_without_a_case():
    assert own_relation(person()) == APPLICANT
    assert own_relation(person("E", actor="A", scopes=("*",))) == AGENT
    assert own_relation(person("E", actor="A", scopes=("licence:read",))) == AGENT_OUTSIDE_MANDATE
    assert own_relation(person("E", actor="A", scopes=("caseflow:M-1",)), matter_codes=["M-2"]) == AGENT_OUTSIDE_MANDATE
    assert own_relation(officer("SWJ", "acceptor")) == DEPARTMENT_OFFICER
    assert own_relation(officer("SUPERVISION", "supervisor")) == SUPERVISOR


def test_a_department_system_acts_as_its_officers_would_on_its_own_cases_only():
    system = (access.SYSTEM_ROLE,)
    for step in access.SYSTEM_STEPS:
        assert decide(f"case.{step}", access.DEPARTMENT_SYSTEM, system).allowed, step
        for relation in (access.BRANCH_SYSTEM, NONE):
            refused = decide(f"case.{step}", relation, system)
            assert (refused.allowed, refused.status, refused.rule) == (False, 403, "not_own_case"), (step, relation)
    for step in access.BRANCH_STEPS:
        assert decide(f"branch.{step}", access.BRANCH_SYSTEM, system).allowed
        assert decide(f"branch.{step}", access.DEPARTMENT_SYSTEM, system).rule == "not_own_case"
    # never the steps the pushes do not carry, nor reading or lists
    for action in ("case.review", "case.extend", "case.read", "case.read_material", "worklist.read"):
        assert not decide(action, access.DEPARTMENT_SYSTEM, system).allowed, action
    assert decide("case.mirror", access.DEPARTMENT_SYSTEM, system).allowed
    assert decide("case.mirror", NONE, system).rule == "not_own_matter"
    # the role means nothing to an officer who somehow held it
    assert not decide("case.accept", DEPARTMENT_OFFICER, system).allowed


def test_a_department_systems_relation():
    relation = access.system_relation
    assert relation("SCJGJ", case_department="SCJGJ", branch_departments=["GAJ"]) == access.DEPARTMENT_SYSTEM
    assert relation("GAJ", case_department="SCJGJ", branch_departments=["GAJ"]) == access.BRANCH_SYSTEM
    assert relation("SWJ", case_department="SCJGJ", branch_departments=["GAJ"]) == NONE
