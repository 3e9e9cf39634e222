from datetime import UTC, datetime, timedelta

import pytest

from kit.errors import Problem, RuleViolation
from services.identity.domain.levels import level_after
from services.identity.domain.lockout import LockoutPolicy, locked_until
from services.identity.domain.mandates import check_expiry, mandate_usable, normalise_scopes

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POLICY = LockoutPolicy()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_five_failures_in_fifteen_minutes_lock_for_fifteen():
    failures = [at(m) for m in (0, 1, 2, 3, 4)]
    assert locked_until(failures, at(4), POLICY) == at(19)
    assert locked_until(failures, at(18.9), POLICY) == at(19)
    assert locked_until(failures, at(19), POLICY) is None


def test_four_failures_do_not_lock_and_spread_failures_do_not_either():
    assert locked_until([at(m) for m in (0, 1, 2, 3)], at(3), POLICY) is None
    assert locked_until([at(m) for m in (0, 4, 8, 12, 16)], at(16), POLICY) is None  # 16 min apart end to end


def test_lockout_policy_is_configurable():
    policy = LockoutPolicy(max_failures=2, window=timedelta(minutes=1), duration=timedelta(minutes=5))
    assert locked_until([at(0), at(0.5)], at(1), policy) == at(5.5)


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
