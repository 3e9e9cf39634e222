"""The rules that read a department system's push (domain/pushes.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kit.errors import Problem, field_problem
from services.caseflow.domain import pushes, states
from services.caseflow.domain.access import SYSTEM_ROLE


def test_every_step_but_received_is_an_action_of_the_state_machine():
    assert set(pushes.STEP_ACTIONS) | {pushes.RECEIVED} == {
        "received", "accepted", "correction_requested", "resubmitted", "rejected", "approved", "denied",
        "completed", "withdrawn",
    }  # fmt: skip
    for step in pushes.STEP_ACTIONS:
        action, party = pushes.step_action(step)
        assert action in states.ACTIONS
        assert any(party in parties for (_, a), (_, parties) in states.TABLE.items() if a == action), step
    assert pushes.step_action("withdrawn") == ("withdraw", states.APPLICANT)
    assert pushes.step_action("approved") == ("approve", states.OFFICER)
    with pytest.raises(KeyError):
        pushes.step_action("received")
    assert SYSTEM_ROLE not in states.PARTIES  # the role is the access table's, the party the machine's


def test_a_step_counts_when_it_happened_within_what_the_platform_knows():
    now = datetime(2026, 11, 2, 2, tzinfo=UTC)
    last = now - timedelta(days=2)
    assert pushes.step_time(now - timedelta(days=1), now=now, not_before=last) == now - timedelta(days=1)
    assert pushes.step_time(now + timedelta(days=3), now=now, not_before=last) == now  # never in the future
    assert pushes.step_time(now - timedelta(days=9), now=now, not_before=last) == last  # never before the last step
    assert pushes.step_time(now - timedelta(days=9), now=now, not_before=None) == now - timedelta(days=9)


def test_a_problem_becomes_the_push_problem_naming_the_data_field_and_rule():
    problem = pushes.push_problem(field_problem("reason", "required", "a denial states its reasons"))
    assert problem["field"] == "data.reason" and problem["rule"] == "required"
    assert problem["type"].endswith("/validation") and "denial" in problem["detail"]
    illegal = pushes.push_problem(Problem(409, "illegal-transition", "Not possible in this state", "cannot approve"))
    assert illegal["rule"] == "transition" and illegal["field"] is None
    own = pushes.push_problem(Problem(403, "forbidden", "Not allowed", "not yours", rule="not_own_case"))
    assert own["rule"] == "not_own_case"
    named = pushes.push_problem(pushes.refusal("not-found", "Not found", "no such case", rule="not_found",
                                               field="data.case_no"))  # fmt: skip
    assert (named["field"], named["rule"]) == ("data.case_no", "not_found")
    items = pushes.push_problem(field_problem("items.0.material", "known_material", "x" * 900))
    assert items["field"] == "data.items.0.material" and len(items["detail"]) == 500
