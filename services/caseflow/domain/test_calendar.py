"""Tests of the working-day calendar: chinesecalendar's 2026 holidays and 调休 make-up days, the
unknown-year fallback (2027 with chinesecalendar 1.11) and the admins' override table."""

from datetime import date, datetime, timedelta

import chinese_calendar
import pytest

from services.caseflow.domain.calendar import WorkdayCalendar, library_knows_year


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


def test_deadline_into_2027_is_provisional_weekday_fallback() -> None:
    calendar = WorkdayCalendar()
    # Start Thu 24 Dec 2026: Fri 25 (1), 28–31 Dec (5); 2027 unknown, so Mon–Fri: Fri 1 Jan (6),
    # Mon 4 – Thu 7 Jan (10). No error, but provisional.
    assert calendar.add_workdays(date(2026, 12, 24), 10) == (date(2027, 1, 7), True)
    assert calendar.is_workday(date(2027, 1, 1))  # New Year's Day, unknown to the fallback
    assert not calendar.is_workday(date(2027, 1, 2))  # Saturday
    assert not calendar.is_known(date(2027, 1, 4))
    assert calendar.workdays_between(date(2026, 12, 24), date(2027, 1, 7)) == (10, True)
    # Staying inside 2026 is not provisional.
    assert calendar.add_workdays(date(2026, 12, 24), 5) == (date(2026, 12, 31), False)
    assert calendar.provisional_years(date(2026, 12, 24), date(2027, 1, 7)) == [2027]


def test_override_year_2027_makes_it_official_and_moves_the_deadline() -> None:
    new_years_day = date(2027, 1, 1)
    calendar = WorkdayCalendar({new_years_day: False}, known_override_years=[2027])
    assert calendar.is_known(date(2027, 1, 4))
    assert not calendar.is_workday(new_years_day)
    # As above, but Fri 1 Jan is a holiday now: 25, 28–31 Dec (5); Mon 4 – Fri 8 Jan (10).
    assert calendar.add_workdays(date(2026, 12, 24), 10) == (date(2027, 1, 8), False)


def test_single_override_dates_do_not_make_their_year_known() -> None:
    calendar = WorkdayCalendar({date(2027, 1, 1): False})
    assert calendar.is_known(date(2027, 1, 1))
    assert not calendar.is_known(date(2027, 1, 4))
    assert calendar.add_workdays(date(2026, 12, 24), 10) == (date(2027, 1, 8), True)


def test_override_wins_over_the_library() -> None:
    # A local holiday on Fri 9 Oct 2026 pushes the 5th working day to the make-up Saturday 10 Oct.
    calendar = WorkdayCalendar({date(2026, 10, 9): False})
    assert calendar.add_workdays(date(2026, 9, 24), 5) == (date(2026, 10, 10), False)
