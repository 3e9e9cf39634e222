from datetime import UTC, datetime, timedelta

import pytest

from kit.errors import Problem, RuleViolation
from services.identity.domain.claims import access_claims
from services.identity.domain.enterprises import check_binding, same_name
from services.identity.domain.levels import level_after
from services.identity.domain.lockout import LockoutPolicy, retry_after_seconds
from services.identity.domain.mandates import check_expiry, mandate_usable, normalise_scopes

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POLICY = LockoutPolicy()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_retry_after_is_the_end_of_the_lock_or_of_the_window_rounded_up():
    assert retry_after_seconds(at(19), at(0), at(4), POLICY) == 15 * 60
    assert retry_after_seconds(at(19), at(0), at(18.99), POLICY) == 1  # 0.6 s left → 1
    assert retry_after_seconds(None, at(0), at(10), POLICY) == 5 * 60  # checks in flight: window end
    assert retry_after_seconds(at(1), at(0), at(2), POLICY) == 1  # never 0 or negative


def test_tokens_carry_names_and_the_actor_name():
    claims = access_claims(
        subject="91110000600037341L", kind="enterprise", level=2, session_id="s", issuer="i", audience="a",
        now=T0, ttl=timedelta(minutes=10), name="某某餐饮有限公司", actor="440524188001010014", actor_name="王五",
    )  # fmt: skip
    assert claims["name"] == "某某餐饮有限公司"
    assert claims["act"] == {"sub": "440524188001010014", "name": "王五"}
    bare = access_claims(
        subject="x", kind="person", level=1, session_id="s", issuer="i", audience="a", now=T0, ttl=timedelta(1)
    )
    assert "name" not in bare and "act" not in bare


def _binding_problem(**overrides):
    facts = dict(
        caller="A", legal_representative="A", status="存续", registered_name="某某（北京）有限公司", stated_name=None
    )
    facts.update(overrides)
    try:
        check_binding(**facts)
    except Problem as problem:
        return problem.status, problem.type_
    return None


def test_only_the_registered_legal_representative_binds_an_active_enterprise():
    assert _binding_problem() is None
    assert _binding_problem(status="在业") is None
    assert _binding_problem(caller="B") == (403, "not-legal-representative")
    assert _binding_problem(status="吊销") == (409, "enterprise-inactive")
    assert _binding_problem(status="注销") == (409, "enterprise-inactive")
    # a stranger learns it is not theirs, not the status
    assert _binding_problem(caller="B", status="注销") == (403, "not-legal-representative")
    assert _binding_problem(stated_name="某某(北京)有限公司") is None  # full-width brackets are the same name
    assert _binding_problem(stated_name="别的公司") == (422, "validation")
    assert same_name("某某 有限公司", "某某有限公司")


def test_levels_go_up_in_order_and_never_down():
    assert level_after(1, "registry") == 2
    assert level_after(2, "face") == 3
    assert level_after(3, "registry") == 3
    assert level_after(1, "counter") == 4
    with pytest.raises(Problem) as error:
        level_after(1, "face")
    assert error.value.status == 409


def test_mandate_usable_only_before_expiry_and_unrevoked():
    assert mandate_usable(expires_at=at(10), revoked_at=None, now=at(9))
    assert not mandate_usable(expires_at=at(10), revoked_at=None, now=at(10))
    assert not mandate_usable(expires_at=at(10), revoked_at=at(5), now=at(6))


def test_mandate_rules():
    assert normalise_scopes(["caseflow:food-permit", "caseflow", "caseflow"]) == ["caseflow", "caseflow:food-permit"]
    with pytest.raises(RuleViolation):
        normalise_scopes(["Bad Scope"])
    with pytest.raises(RuleViolation) as error:
        check_expiry(at(-1), at(0))
    assert error.value.rule == "future"
    with pytest.raises(RuleViolation) as error:
        check_expiry(at(60 * 24 * 365 * 4), at(0))
    assert error.value.rule == "max_duration"
