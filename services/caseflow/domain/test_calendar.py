"""Tests of the working-day calendar: chinesecalendar's 2026 holidays and 调休 make-up days, the
unknown-year fallback (2027 with chinesecalendar 1.11) and the admins' override table."""

from datetime import date, datetime, timedelta

import chinese_calendar
import pytest

from services.caseflow.domain.calendar import (
    WorkdayCalendar,
    compensation_days,
    library_holiday_name,
    library_knows_year,
    statutory_holidays,
)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def test_library_covers_2026_but_not_2027() -> None:
    # The 2027 tests below rely on this; when chinesecalendar learns 2027, move them to the next unknown year.
    assert library_knows_year(2026)
    assert not library_knows_year(2027), "chinesecalendar now knows 2027: move the unknown-year tests on"
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 4))


def test_2026_mid_autumn_and_national_day_as_the_library_reports_them() -> None:
    calendar = WorkdayCalendar()
    rest = {day for day in _days(date(2026, 9, 19), date(2026, 10, 12)) if not calendar.is_workday(day)}
    # Mid-Autumn Fri 25 – Sun 27 Sep, National Day Thu 1 – Wed 7 Oct, plain weekends 19 Sep and 11 Oct.
    assert rest == {
        date(2026, 9, 19),
        date(2026, 9, 25),
        date(2026, 9, 26),
        date(2026, 9, 27),
        *_days(date(2026, 10, 1), date(2026, 10, 7)),
        date(2026, 10, 11),
    }
    # 调休: Sunday 20 Sep and Saturday 10 Oct are make-up working days.
    assert calendar.is_workday(date(2026, 9, 20)) and date(2026, 9, 20).weekday() == 6
    assert calendar.is_workday(date(2026, 10, 10)) and date(2026, 10, 10).weekday() == 5
    for day in _days(date(2026, 9, 19), date(2026, 10, 12)):
        assert calendar.is_workday(day) == chinese_calendar.is_workday(day), day
        assert calendar.is_known(day)


def test_five_working_days_across_national_day_2026() -> None:
    calendar = WorkdayCalendar()
    # Start Thu 24 Sep (not counted). 25–27 Sep Mid-Autumn; Mon 28 (1), Tue 29 (2), Wed 30 (3);
    # 1–7 Oct National Day; Thu 8 Oct (4), Fri 9 Oct (5). Mon–Fri counting would say Thu 1 Oct.
    assert calendar.add_workdays(date(2026, 9, 24), 5) == (date(2026, 10, 9), False)
    # Start Wed 30 Sep: Thu 8 Oct (1), Fri 9 (2), the make-up Saturday 10 Oct (3).
    assert calendar.add_workdays(date(2026, 9, 30), 3) == (date(2026, 10, 10), False)
    # Start Fri 18 Sep: Sat 19 is rest, the make-up Sunday 20 Sep is the 1st working day.
    assert calendar.add_workdays(date(2026, 9, 18), 1) == (date(2026, 9, 20), False)


def test_spring_festival_2026() -> None:
    calendar = WorkdayCalendar()
    assert [day for day in _days(date(2026, 2, 14), date(2026, 2, 28)) if calendar.is_workday(day)] == [
        date(2026, 2, 14),  # Saturday make-up day
        *_days(date(2026, 2, 24), date(2026, 2, 27)),
        date(2026, 2, 28),  # Saturday make-up day
    ]
    # Start Thu 12 Feb: Fri 13 (1), Sat 14 (2), 15–23 Feb holiday, Tue 24 (3), Wed 25 (4), Thu 26 (5).
    assert calendar.add_workdays(date(2026, 2, 12), 5) == (date(2026, 2, 26), False)
    # Art. 42's 20 days from Tue 10 Feb: 11, 12, 13, 14 (4); 24–28 (9); 2–6 Mar (14); 9–13 Mar (19); Mon 16 Mar (20).
    assert calendar.add_workdays(date(2026, 2, 10), 20) == (date(2026, 3, 16), False)
    # (13 Feb, 24 Feb] holds only Sat 14 and Tue 24.
    assert calendar.workdays_between(date(2026, 2, 13), date(2026, 2, 24)) == (2, False)


def test_start_day_never_counts_and_between_inverts_add() -> None:
    calendar = WorkdayCalendar()
    assert calendar.add_workdays(date(2026, 11, 2), 0) == (date(2026, 11, 2), False)
    assert calendar.add_workdays(date(2026, 11, 2), 1) == (date(2026, 11, 3), False)  # Monday -> Tuesday
    assert calendar.add_workdays(date(2026, 11, 7), 1) == (date(2026, 11, 9), False)  # Saturday -> Monday
    assert calendar.workdays_between(date(2026, 11, 2), date(2026, 11, 2)) == (0, False)
    assert calendar.workdays_between(date(2026, 11, 6), date(2026, 11, 9)) == (1, False)  # Fri -> Mon: only Mon
    assert calendar.workdays_between(date(2026, 11, 9), date(2026, 11, 6)) == (-1, False)
    for offset in range(0, 300, 7):
        start = date(2026, 1, 1) + timedelta(days=offset)
        for days in (1, 5, 20):
            end, _ = calendar.add_workdays(start, days)
            assert calendar.workdays_between(start, end) == (days, False)
            assert calendar.is_workday(end)


def test_negative_days_rejected_and_datetimes_treated_as_days() -> None:
    calendar = WorkdayCalendar()
    with pytest.raises(ValueError):
        calendar.add_workdays(date(2026, 11, 2), -1)
    assert calendar.add_workdays(datetime(2026, 9, 24, 17, 30), 5) == (date(2026, 10, 9), False)


def test_deadline_into_2027_is_provisional_with_the_statutory_holidays() -> None:
    calendar = WorkdayCalendar()
    # Start Thu 24 Dec 2026: Fri 25 (1), 28–31 Dec (5); 2027 unknown to the library, so Mon–Fri less
    # the regulation's holidays: Fri 1 Jan is 元旦, Mon 4 – Fri 8 Jan (10). No error, but provisional.
    assert calendar.add_workdays(date(2026, 12, 24), 10) == (date(2027, 1, 8), True)
    assert not calendar.is_workday(date(2027, 1, 1))  # 元旦, known years ahead
    assert not calendar.is_workday(date(2027, 1, 2))  # Saturday
    assert calendar.is_workday(date(2027, 1, 4))
    assert not calendar.is_known(date(2027, 1, 4))
    assert calendar.workdays_between(date(2026, 12, 24), date(2027, 1, 8)) == (10, True)
    # Staying inside 2026 is not provisional.
    assert calendar.add_workdays(date(2026, 12, 24), 5) == (date(2026, 12, 31), False)
    assert calendar.provisional_years(date(2026, 12, 24), date(2027, 1, 8)) == [2027]


# Published facts for 2027, each checked against a second source (docs/adr/0012-calendar-limits-catalog.md):
# Chinese New Year's Day Sat 6 Feb 2027 (so 除夕 Fri 5 Feb), Qingming Mon 5 Apr, 端午 Wed 9 Jun, 中秋 Wed 15 Sep.
STATUTORY_2027 = {
    date(2027, 1, 1): "元旦",
    date(2027, 2, 5): "春节", date(2027, 2, 6): "春节", date(2027, 2, 7): "春节", date(2027, 2, 8): "春节",
    date(2027, 4, 5): "清明节",
    date(2027, 5, 1): "劳动节", date(2027, 5, 2): "劳动节",
    date(2027, 6, 9): "端午节",
    date(2027, 9, 15): "中秋节",
    date(2027, 10, 1): "国庆节", date(2027, 10, 2): "国庆节", date(2027, 10, 3): "国庆节",
}  # fmt: skip


def test_the_2027_statutory_holidays_are_the_published_dates() -> None:
    assert statutory_holidays(2027) == STATUTORY_2027
    assert len(STATUTORY_2027) == 13  # the regulation's total since 2025
    calendar = WorkdayCalendar()
    for day in STATUTORY_2027:
        assert not calendar.is_workday(day), day
        assert not calendar.is_known(day), day  # still provisional: the 调休 is not known
    # The weekday ones are the days a Mon–Fri count would get wrong; no weekend becomes a working day.
    weekday_holidays = [day for day in STATUTORY_2027 if day.weekday() < 5]
    assert weekday_holidays == [date(2027, 1, 1), date(2027, 2, 5), date(2027, 2, 8), date(2027, 4, 5),
                                date(2027, 6, 9), date(2027, 9, 15), date(2027, 10, 1)]  # fmt: skip
    assert not any(calendar.is_workday(day) for day in _days(date(2027, 1, 1), date(2027, 12, 31))
                   if day.weekday() >= 5)  # fmt: skip
    # Art. 6: a statutory day on a Saturday or Sunday is given back on the next weekdays (补假).
    assert compensation_days(2027) == {
        date(2027, 2, 9): "春节补假", date(2027, 2, 10): "春节补假",
        date(2027, 5, 3): "劳动节补假", date(2027, 5, 4): "劳动节补假",
        date(2027, 10, 4): "国庆节补假", date(2027, 10, 5): "国庆节补假",
    }  # fmt: skip
    assert not any(calendar.is_workday(day) for day in compensation_days(2027))
    assert calendar.is_workday(date(2027, 2, 11)) and calendar.is_workday(date(2027, 10, 6))


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_rule_reproduces_the_official_statutory_days_of_2025_and_2026(year: int) -> None:
    """The lunar computation against the State Council's own notices (via chinesecalendar): every
    statutory day is a day off there, under the same festival."""
    rule = statutory_holidays(year)
    assert len(rule) == 13
    for day, name in rule.items():
        assert not chinese_calendar.is_workday(day), day
        assert library_holiday_name(day) == name, day
    # 补假 as the notices placed it: 2025 端午 Sat 31 May → Mon 2 Jun; 2026 清明 Sat 4 Apr → Mon 6 Apr,
    # 劳动节 Sat 2 May → Mon 4 May, 国庆 Sat 3 Oct → Mon 5 Oct.
    given = compensation_days(year)
    assert len(given) == {2025: 1, 2026: 3}[year]
    for day, name in given.items():
        assert not chinese_calendar.is_workday(day), day
        assert f"{library_holiday_name(day)}补假" == name, day
    # And each official festival's own day is in the rule (the notices add 调休 days around them).
    official_festivals = {library_holiday_name(day) for day in _days(date(year, 1, 1), date(year, 12, 31))}
    assert official_festivals - {None} == set(rule.values())


def test_lunar_years_far_ahead_still_have_thirteen_days() -> None:
    for year in range(2027, 2101):
        days = statutory_holidays(year)
        assert sum(len(name.split("、")) for name in days.values()) == 13, year  # 2028: 中秋 on 3 Oct
        spring = sorted(day for day, name in days.items() if name == "春节")
        assert spring[-1] - spring[0] == timedelta(days=3) and date(year, 1, 20) <= spring[0] <= date(year, 2, 20)
        assert next(day for day, name in days.items() if name == "清明节").day in (4, 5, 6)
        owed = sum(day.weekday() >= 5 for day in days) + sum(len(name.split("、")) - 1 for name in days.values())
        assert len(compensation_days(year)) == owed, year
    assert statutory_holidays(2028)[date(2028, 10, 3)] == "中秋节、国庆节"
    assert set(compensation_days(2028)) == {date(2028, 1, 3), date(2028, 5, 29), date(2028, 10, 4), date(2028, 10, 5)}
    assert statutory_holidays(2024) == {} == compensation_days(2024)  # the library's years: the notices rule


def test_the_public_year_view_marks_sources() -> None:
    view = WorkdayCalendar().year_view(2027)
    assert view["official"] is False and view["workdays"] == []
    expected = sorted({**STATUTORY_2027, **compensation_days(2027)}.items())
    assert [(d["date"], d["name"]) for d in view["days_off"]] == [(d.isoformat(), n) for d, n in expected]
    assert all(d["official"] is False and "全国年节及纪念日放假办法" in d["source"] for d in view["days_off"])
    assert view["working_days"] == 261 - 7 - 6  # 261 weekdays in 2027, 7 statutory days and 6 补假 on weekdays
    official = WorkdayCalendar().year_view(2026)
    assert official["official"] is True
    make_up = [d["date"] for d in official["workdays"]]
    assert "2026-02-14" in make_up and "2026-02-28" in make_up and "2026-10-10" in make_up
    assert all(d["official"] and d["source"].startswith("chinesecalendar") for d in official["days_off"])
    loaded = WorkdayCalendar({date(2027, 1, 1): False}, known_override_years=[2027]).year_view(2027)
    assert loaded["official"] is True
    assert [(d["date"], d["name"]) for d in loaded["days_off"]] == [("2027-01-01", "元旦")]


def test_override_year_2027_makes_it_official_and_moves_the_deadline() -> None:
    new_years_day = date(2027, 1, 1)
    # The notice as loaded: 元旦 Fri 1 Jan off, Sun 10 Jan a make-up working day (an example).
    calendar = WorkdayCalendar({new_years_day: False, date(2027, 1, 10): True}, known_override_years=[2027])
    assert calendar.is_known(date(2027, 1, 4))
    assert not calendar.is_workday(new_years_day)
    # 25, 28–31 Dec (5); Mon 4 – Fri 8 Jan (10): the same day as provisionally, now official.
    assert calendar.add_workdays(date(2026, 12, 24), 10) == (date(2027, 1, 8), False)
    # Twelve days reach the make-up Sunday: Mon 11 Jan provisionally, Sun 10 Jan officially.
    assert WorkdayCalendar().add_workdays(date(2026, 12, 24), 11) == (date(2027, 1, 11), True)
    assert calendar.add_workdays(date(2026, 12, 24), 11) == (date(2027, 1, 10), False)
    # A declared year is counted from its table alone: a statutory day it does not list is worked
    # (the notice lists every day off of its year).
    assert calendar.is_workday(date(2027, 2, 5))


def test_single_override_dates_do_not_make_their_year_known() -> None:
    calendar = WorkdayCalendar({date(2027, 1, 1): False})
    assert calendar.is_known(date(2027, 1, 1))
    assert not calendar.is_known(date(2027, 1, 4))
    assert calendar.add_workdays(date(2026, 12, 24), 10) == (date(2027, 1, 8), True)


def test_override_wins_over_the_library() -> None:
    # A local holiday on Fri 9 Oct 2026 pushes the 5th working day to the make-up Saturday 10 Oct.
    calendar = WorkdayCalendar({date(2026, 10, 9): False})
    assert calendar.add_workdays(date(2026, 9, 24), 5) == (date(2026, 10, 10), False)
