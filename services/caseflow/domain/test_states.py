"""The state machine, exhaustively: every (state, action, party) either moves as the table says or
is refused with the right error; what is offered is exactly what is accepted."""

from __future__ import annotations

import itertools

import pytest

from services.caseflow.domain import states
from services.caseflow.domain.states import (
    AlreadyExtended,
    BranchesPending,
    IllegalTransition,
    NoOriginals,
    OriginalsReceived,
    PartyNotAllowed,
    SecondCorrection,
    allowed_actions,
    transition,
)

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
    # 秒批: the platform approves at submission, or once paid from where the case waited
    **{(s, "instant_approve"): "approved" for s in ("submitted", "resubmitted", "accepted")},
    # steps that change no state: a pickup of the originals asked for, their arrival recorded
    **{(s, "request_pickup"): s for s in states.BEFORE_DECISION},
    **{(s, "originals_received"): s for s in states.BEFORE_DECISION},
}


@pytest.mark.parametrize(
    "state,action,party", list(itertools.product(states.STATES, sorted(states.ACTIONS), states.PARTIES))
)
def test_every_combination(state, action, party):
    entry = states.TABLE.get((state, action))
    if entry is None:
        with pytest.raises(IllegalTransition) as caught:
            transition(state, action, party)
        assert caught.value.state == state
        assert state in str(caught.value)
        return
    _, parties = entry
    if party not in parties:
        with pytest.raises(PartyNotAllowed):
            transition(state, action, party)
        return
    assert transition(state, action, party) == EXPECTED[(state, action)]


def test_table_is_what_the_test_expects():
    assert set(states.TABLE) == set(EXPECTED)


def test_terminal_states_allow_nothing():
    for state, party in itertools.product(states.TERMINAL, states.PARTIES):
        assert allowed_actions(state, party) == []


def test_instant_matters_decide_on_acceptance():
    assert transition("submitted", "accept", "officer", instant=True) == "approved"
    assert transition("resubmitted", "deem_accept", "system", instant=True) == "approved"


def test_one_correction_only_and_it_is_not_offered_after_a_resubmission():
    assert transition("submitted", "request_correction", "officer", corrections=0) == "correction_requested"
    with pytest.raises(SecondCorrection):
        transition("resubmitted", "request_correction", "officer", corrections=1)
    assert "request_correction" in allowed_actions("submitted", "officer", corrections=0)
    assert allowed_actions("resubmitted", "officer", corrections=1) == ["accept", "originals_received", "reject"]


def test_one_extension_only():
    assert transition("reviewed", "extend", "officer") == "reviewed"
    with pytest.raises(AlreadyExtended):
        transition("reviewed", "extend", "officer", extended=True)
    assert "extend" not in allowed_actions("reviewed", "officer", extended=True)


def test_approval_waits_for_every_branch():
    with pytest.raises(BranchesPending) as caught:
        transition("reviewed", "approve", "officer", pending_branches=("GAJ",))
    assert "GAJ" in str(caught.value)
    assert "approve" not in allowed_actions("reviewed", "officer", pending_branches=("GAJ",))
    assert "deny" in allowed_actions("reviewed", "officer", pending_branches=("GAJ",))


def test_resume_returns_to_where_it_was_suspended():
    assert transition("suspended", "resume", "officer", suspended_from="reviewed") == "reviewed"
    assert transition("suspended", "resume", "officer", suspended_from="accepted") == "accepted"


def test_no_withdrawal_after_a_decision():
    for state in ("approved", "denied", "delivering", "completed"):
        with pytest.raises(IllegalTransition):
            transition(state, "withdraw", "applicant")


@pytest.mark.parametrize("state", states.STATES)
@pytest.mark.parametrize("corrections,extended,pending", [(0, False, ()), (1, True, ("SWJ",))])
def test_offered_is_exactly_accepted(state, corrections, extended, pending):
    facts = dict(corrections=corrections, extended=extended, pending_branches=pending)
    for party in states.PARTIES:
        offered = set(allowed_actions(state, party, **facts))
        for action in states.ACTIONS:
            try:
                transition(state, action, party, **facts)
                accepted = True
            except states.TransitionError:
                accepted = False
            assert accepted == (action in offered), (state, party, action)


def test_originals_are_asked_for_and_recorded_until_the_department_has_them():
    for state in sorted(states.BEFORE_DECISION):
        assert transition(state, "request_pickup", "applicant") == state
        assert transition(state, "originals_received", "officer") == state
        for action, party in (("request_pickup", "applicant"), ("originals_received", "officer")):
            with pytest.raises(OriginalsReceived):
                transition(state, action, party, originals_received=True)
            assert action not in allowed_actions(state, party, originals_received=True)
    with pytest.raises(NoOriginals):
        transition("submitted", "request_pickup", "applicant", needs_originals=False)
    assert "originals_received" not in allowed_actions("accepted", "officer", needs_originals=False)
    with pytest.raises(IllegalTransition):  # decided: the originals are no longer needed
        transition("approved", "request_pickup", "applicant")
    with pytest.raises(PartyNotAllowed):
        transition("accepted", "originals_received", "applicant")
