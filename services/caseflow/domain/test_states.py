"""The state machine, exhaustively: every (state, action, role) either moves as the table says or
is refused with the right error."""

from __future__ import annotations

import itertools

import pytest

from services.caseflow.domain import states
from services.caseflow.domain.states import (
    AlreadyExtended,
    IllegalTransition,
    RoleNotAllowed,
    SecondCorrection,
    allowed_actions,
    transition,
)

ROLES = ("acceptor", "reviewer", "decider", "applicant", "system", "supervisor")

EXPECTED = {
    ("submitted", "accept"): "accepted",
    ("resubmitted", "accept"): "accepted",
    ("submitted", "deem_accept"): "accepted",
    ("resubmitted", "deem_accept"): "accepted",
    ("submitted", "reject"): "rejected",
    ("resubmitted", "reject"): "rejected",
    ("submitted", "request_correction"): "correction_requested",
    ("resubmitted", "request_correction"): "correction_requested",
    ("correction_requested", "resubmit"): "resubmitted",
    ("accepted", "review"): "reviewed",
    ("accepted", "approve"): "approved",
    ("reviewed", "approve"): "approved",
    ("accepted", "deny"): "denied",
    ("reviewed", "deny"): "denied",
    ("accepted", "suspend"): "suspended",
    ("reviewed", "suspend"): "suspended",
    ("suspended", "resume"): "accepted",
    ("accepted", "extend"): "accepted",
    ("reviewed", "extend"): "reviewed",
    ("approved", "deliver"): "delivering",
    ("approved", "complete"): "completed",
    ("delivering", "complete"): "completed",
    **{(s, "withdraw"): "withdrawn" for s in states.BEFORE_DECISION},
}


@pytest.mark.parametrize("state,action,role", list(itertools.product(states.STATES, sorted(states.ACTIONS), ROLES)))
def test_every_combination(state, action, role):
    entry = states.TABLE.get((state, action))
    if entry is None:
        with pytest.raises(IllegalTransition) as caught:
            transition(state, action, role)
        assert caught.value.state == state
        assert state in str(caught.value)
        return
    _, allowed = entry
    if role not in allowed:
        with pytest.raises(RoleNotAllowed):
            transition(state, action, role)
        return
    assert transition(state, action, role) == EXPECTED[(state, action)]


def test_table_is_what_the_test_expects():
    assert set(states.TABLE) == set(EXPECTED)


def test_terminal_states_allow_nothing():
    for state in states.TERMINAL:
        assert allowed_actions(state, ROLES) == []


def test_instant_matters_decide_on_acceptance():
    assert transition("submitted", "accept", "acceptor", instant=True) == "approved"
    assert transition("resubmitted", "deem_accept", "system", instant=True) == "approved"


def test_one_correction_only():
    assert transition("submitted", "request_correction", "acceptor", corrections=0) == "correction_requested"
    with pytest.raises(SecondCorrection):
        transition("resubmitted", "request_correction", "acceptor", corrections=1)


def test_one_extension_only_and_only_by_a_decider():
    assert transition("reviewed", "extend", {"decider"}) == "reviewed"
    with pytest.raises(AlreadyExtended):
        transition("reviewed", "extend", {"decider"}, extended=True)
    with pytest.raises(RoleNotAllowed):
        transition("reviewed", "extend", {"reviewer", "acceptor"})


def test_resume_returns_to_where_it_was_suspended():
    assert transition("suspended", "resume", "reviewer", suspended_from="reviewed") == "reviewed"
    assert transition("suspended", "resume", "decider", suspended_from="accepted") == "accepted"


def test_no_withdrawal_after_a_decision():
    for state in ("approved", "denied", "delivering", "completed"):
        with pytest.raises(IllegalTransition):
            transition(state, "withdraw", "applicant")


def test_multi_role_officer():
    assert transition("accepted", "review", ("acceptor", "reviewer")) == "reviewed"
    assert "review" in allowed_actions("accepted", ("reviewer",))
