"""Tests of the deadline clock: limits, pauses (补正 and Art. 45 suspensions), extensions, the
Art. 32 and Art. 44 deadlines and the supervision warnings.

Most cases use November–December 2026, which has no public holidays: Mon 2 Nov + 20 working days
= Mon 30 Nov (3–6, 9–13, 16–20, 23–27 Nov are 19 days; 30 Nov is the 20th)."""

from datetime import date

import pytest

from services.caseflow.domain.calendar import WorkdayCalendar
from services.caseflow.domain.clock import (
    PRE_REVIEW_DAYS,
    Deadline,
    Pause,
    compute_deadline,
    deemed_acceptance_due,
    delivery_due,
    governing_limit,
    is_deemed_accepted,
    remaining_workdays,
    statutory_limit,
    warning_level,
)

CALENDAR = WorkdayCalendar()
ACCEPTED = date(2026, 11, 2)  # Monday
RULE = "Art. 42: 20 working days"


def _art_42(*pauses: Pause, extension_days: int = 0) -> Deadline:
    return compute_deadline(
        CALENDAR, start=ACCEPTED, limit_days=20, rule=RULE, pauses=pauses, extension_days=extension_days
    )


def test_plain_art_42_deadline() -> None:
    deadline = _art_42()
    assert deadline.due == date(2026, 11, 30)
    assert (deadline.limit_days, deadline.paused_days, deadline.provisional, deadline.rule) == (20, 0, False, RULE)
    assert deadline.explanation[0].startswith("start 2026-11-02 (Mon)")
    assert deadline.explanation[-1] == "due 2026-11-30 (Mon)"


def test_promised_limit_across_national_day() -> None:
    # Start Thu 24 Sep 2026; Mid-Autumn 25–27 Sep; 28, 29, 30 Sep (3); National Day 1–7 Oct; 8, 9 Oct (5).
    deadline = compute_deadline(CALENDAR, start=date(2026, 9, 24), limit_days=5, rule="promised limit 5 working days")
    assert deadline.due == date(2026, 10, 9)


def test_expert_review_moves_the_deadline_by_exactly_its_working_days() -> None:
    # Paused Tue 10 Nov up to (not including) Tue 17 Nov: 10, 11, 12, 13, 16 Nov = 5 working days.
    # 30 Nov + 5 working days: 1, 2, 3, 4, 7 Dec.
    deadline = _art_42(Pause(date(2026, 11, 10), date(2026, 11, 17), "expert_review"))
    assert deadline.due == date(2026, 12, 7)
    assert deadline.paused_days == 5
    assert CALENDAR.workdays_between(_art_42().due, deadline.due) == (5, False)
    assert any("expert_review" in line and "5 working days not counted" in line for line in deadline.explanation)


def test_pause_counting_convention() -> None:
    # Starts and ends on the same day: removes nothing.
    assert _art_42(Pause(date(2026, 11, 10), date(2026, 11, 10), "correction")).due == date(2026, 11, 30)
    # Only a weekend inside [Sat 14, Mon 16): removes nothing; the end day (Mon 16) counts again.
    weekend = _art_42(Pause(date(2026, 11, 14), date(2026, 11, 16), "testing"))
    assert (weekend.due, weekend.paused_days) == (date(2026, 11, 30), 0)
    # [Mon 16, Tue 17) removes exactly Mon 16.
    assert _art_42(Pause(date(2026, 11, 16), date(2026, 11, 17), "testing")).due == date(2026, 12, 1)
    # Starting on the due day itself still moves it: that day was not used up.
    assert _art_42(Pause(date(2026, 11, 30), date(2026, 12, 1), "hearing")).due == date(2026, 12, 1)
    # Starting after the deadline ran out does not move it.
    late = _art_42(Pause(date(2026, 12, 2), date(2026, 12, 5), "inspection"))
    assert (late.due, late.paused_days) == (date(2026, 11, 30), 0)
    # Reaching back before acceptance: only Tue 3 Nov (after the start day) is removed.
    before = _art_42(Pause(date(2026, 10, 20), date(2026, 11, 4), "correction"))
    assert (before.due, before.paused_days) == (date(2026, 12, 1), 1)


def test_overlapping_pauses_remove_each_working_day_once() -> None:
    # [10 Nov, 17 Nov) and [12 Nov, 19 Nov) together cover 10–13, 16–18 Nov = 7 working days;
    # 30 Nov + 7: 1–4, 7–9 Dec.
    deadline = _art_42(
        Pause(date(2026, 11, 12), date(2026, 11, 19), "testing"),
        Pause(date(2026, 11, 10), date(2026, 11, 17), "expert_review"),
    )
    assert (deadline.due, deadline.paused_days) == (date(2026, 12, 9), 7)


def test_open_pause_leaves_the_due_date_unknown() -> None:
    deadline = _art_42(Pause(date(2026, 11, 10), None, "expert_review"))
    assert deadline.due is None
    assert any("still open" in line and "5 of 20 working days used" in line for line in deadline.explanation)
    with pytest.raises(ValueError):
        remaining_workdays(CALENDAR, deadline, date(2026, 12, 20))
    assert warning_level(CALENDAR, deadline, date(2026, 12, 20)) == "none"
    # Once it is closed, the due date is back and moved by the paused days (10–13, 16 Nov).
    closed = _art_42(Pause(date(2026, 11, 10), date(2026, 11, 17), "expert_review"))
    assert closed.due == date(2026, 12, 7)


def test_open_pause_after_the_deadline_ran_out_does_not_hide_it() -> None:
    deadline = _art_42(Pause(date(2026, 12, 3), None, "expert_review"))
    assert deadline.due == date(2026, 11, 30)
    assert warning_level(CALENDAR, deadline, date(2026, 12, 3)) == "red"


def test_extension_adds_exactly_ten_working_days() -> None:
    limit, extension = statutory_limit("licensing")
    extended = _art_42(extension_days=extension)
    # 30 Nov + 10 working days: 1–4, 7–11 Dec (9), Mon 14 Dec (10).
    assert extended.due == date(2026, 12, 14)
    assert extended.limit_days == limit + extension == 30
    assert CALENDAR.workdays_between(_art_42().due, extended.due) == (10, False)
    assert "extension: +10 working days, 30 in all" in extended.explanation


def test_deadline_into_2027_is_provisional_and_says_so() -> None:
    # Start Thu 24 Dec 2026: 25, 28–31 Dec (5); 2027 unknown, so Mon–Fri less 元旦 (Fri 1 Jan): 4–8 Jan (10).
    deadline = compute_deadline(
        CALENDAR, start=date(2026, 12, 24), limit_days=10, rule="promised limit 10 working days"
    )
    assert (deadline.due, deadline.provisional) == (date(2027, 1, 8), True)
    assert any("2027" in line and "provisional" in line for line in deadline.explanation)
    # The official notice as loaded makes Sat 2 Jan a working day (an example): the day moves, officially.
    official = WorkdayCalendar({date(2027, 1, 1): False, date(2027, 1, 2): True}, known_override_years=[2027])
    loaded = compute_deadline(official, start=date(2026, 12, 24), limit_days=10, rule="promised limit 10 working days")
    assert (loaded.due, loaded.provisional) == (date(2027, 1, 7), False)
    assert not any("provisional" in line for line in loaded.explanation)


def test_invalid_limits_and_pauses_are_rejected() -> None:
    with pytest.raises(ValueError):
        compute_deadline(CALENDAR, start=ACCEPTED, limit_days=-1, rule=RULE)
    with pytest.raises(ValueError):
        _art_42(extension_days=-10)
    with pytest.raises(ValueError):
        Pause(date(2026, 11, 10), date(2026, 11, 9), "correction")


def test_instant_matter_is_due_on_the_start_day() -> None:
    assert compute_deadline(CALENDAR, start=ACCEPTED, limit_days=0, rule="instant").due == ACCEPTED


def test_deemed_acceptance_on_the_sixth_working_day() -> None:
    # Received Mon 2 Nov: 3, 4, 5, 6, 9 Nov -> Mon 9 Nov is the last notice day; Tue 10 is the 6th working day.
    assert deemed_acceptance_due(CALENDAR, date(2026, 11, 2)) == (date(2026, 11, 9), False)
    assert not is_deemed_accepted(CALENDAR, date(2026, 11, 2), date(2026, 11, 9))
    assert is_deemed_accepted(CALENDAR, date(2026, 11, 2), date(2026, 11, 10))
    # Received Thu 24 Sep, across Mid-Autumn and National Day: 28, 29, 30 Sep, 8, 9 Oct.
    assert deemed_acceptance_due(CALENDAR, date(2026, 9, 24)) == (date(2026, 10, 9), False)


def test_delivery_due_ten_working_days_after_grant() -> None:
    # Granted Wed 30 Sep: 8, 9, 10 (make-up Sat), 12, 13, 14, 15, 16, 19, 20 Oct.
    assert delivery_due(CALENDAR, date(2026, 9, 30)) == (date(2026, 10, 20), False)


def test_pre_review_limit() -> None:
    assert PRE_REVIEW_DAYS == 2


def test_warning_levels_around_the_due_date() -> None:
    deadline = _art_42()  # due Mon 30 Nov
    assert remaining_workdays(CALENDAR, deadline, date(2026, 11, 25)) == 3  # 26, 27, 30
    assert warning_level(CALENDAR, deadline, date(2026, 11, 25)) == "none"
    assert remaining_workdays(CALENDAR, deadline, date(2026, 11, 26)) == 2
    assert warning_level(CALENDAR, deadline, date(2026, 11, 26)) == "yellow"  # at the threshold
    assert warning_level(CALENDAR, deadline, date(2026, 11, 26), yellow_at=1) == "none"
    assert remaining_workdays(CALENDAR, deadline, date(2026, 11, 30)) == 0
    assert warning_level(CALENDAR, deadline, date(2026, 11, 30)) == "yellow"
    assert remaining_workdays(CALENDAR, deadline, date(2026, 12, 1)) == -1
    assert warning_level(CALENDAR, deadline, date(2026, 12, 1)) == "red"  # the day after due


def test_remaining_is_negative_when_overdue_even_over_a_weekend() -> None:
    # Start Fri 27 Nov + 5: 30 Nov, 1–4 Dec -> due Fri 4 Dec.
    deadline = compute_deadline(CALENDAR, start=date(2026, 11, 27), limit_days=5, rule="promised limit 5 working days")
    assert deadline.due == date(2026, 12, 4)
    assert remaining_workdays(CALENDAR, deadline, date(2026, 12, 5)) == -1  # Saturday: late, not "due today"
    assert warning_level(CALENDAR, deadline, date(2026, 12, 5)) == "red"
    assert remaining_workdays(CALENDAR, deadline, date(2026, 12, 7)) == -1  # Mon
    assert remaining_workdays(CALENDAR, deadline, date(2026, 12, 10)) == -4  # 7, 8, 9, 10 Dec


def test_statutory_limits() -> None:
    assert statutory_limit("licensing") == (20, 10)
    assert statutory_limit("行政许可", joint=True) == (45, 15)
    with pytest.raises(ValueError):
        statutory_limit("公共服务")


def test_governing_limit_picks_the_shorter() -> None:
    assert governing_limit(3, 20) == (3, "promised limit 3 working days (statutory 20)")
    assert governing_limit(None, 20) == (20, "statutory limit 20 working days")
    assert governing_limit(5, None) == (5, "promised limit 5 working days")
    days, rule = governing_limit(30, 20)
    assert days == 20 and rule.startswith("statutory limit 20")
    with pytest.raises(ValueError):
        governing_limit(None, None)


def test_the_guide_s_statutory_limit_governs_and_the_law_only_fills_a_gap() -> None:
    from services.caseflow.domain.case_clock import matter_limits

    licensing = {"code": "M", "matter_type": "行政许可", "parallel_departments": []}
    # The reported holes: a guide saying 15 (or 60) gave a case saying "statutory 20".
    fifteen = matter_limits({**licensing, "statutory_limit_days": 15, "promised_limit_days": 1})
    assert (fifteen.statutory_days, fifteen.promised_days, fifteen.governing_days) == (15, 1, 1)
    assert fifteen.statutory_source == "guide" and fifteen.rule.startswith("promised limit 1")
    sixty = matter_limits({**licensing, "statutory_limit_days": 60, "promised_limit_days": None})
    assert (sixty.statutory_days, sixty.governing_days) == (60, 60)
    assert sixty.rule == "statutory limit 60 working days; from the guide (Art. 42 default 20)"
    # No statutory limit in the guide: Art. 42's default, and it says so.
    gap = matter_limits({**licensing, "statutory_limit_days": 0, "promised_limit_days": 5})
    assert (gap.statutory_days, gap.governing_days, gap.statutory_source) == (20, 5, "Art. 42")
    joint_gap = matter_limits({**licensing, "statutory_limit_days": None, "promised_limit_days": None,
                               "parallel_departments": ["SWJ"]})  # fmt: skip
    assert (joint_gap.governing_days, joint_gap.statutory_source) == (45, "Art. 42 (joint handling)")
    # A joint matter whose guide states its limit keeps it, and the rule names the joint handling.
    joint = matter_limits({**licensing, "statutory_limit_days": 30, "promised_limit_days": None,
                           "parallel_departments": ["SWJ"]})  # fmt: skip
    assert joint.governing_days == 30 and "joint handling with SWJ" in joint.rule
    # A bundle (no guide of its own) with a licensing lead: the joint limit, with the lead's promise.
    bundle = matter_limits({**licensing, "statutory_limit_days": 15, "promised_limit_days": 1,
                            "parallel_departments": ["GAJ"], "bundle": {"code": "B"}})  # fmt: skip
    assert (bundle.statutory_days, bundle.governing_days) == (45, 1)
    other = matter_limits({"code": "X", "matter_type": "公共服务", "statutory_limit_days": 0,
                           "promised_limit_days": 3, "parallel_departments": []})  # fmt: skip
    assert (other.statutory_days, other.governing_days, other.statutory_source) == (None, 3, "none")
