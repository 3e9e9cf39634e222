"""Opening hours, slots, check-in codes and queue numbers — pure rules."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from kit.errors import RuleViolation
from services.hall.domain.codes import code_hash, new_code, ticket_display
from services.hall.domain.queue import serves
from services.hall.domain.slots import (
    check_opening_hours,
    local_day,
    parse_period,
    slot_at,
    slot_starts,
    takes_walk_ins,
)

CHINA = ZoneInfo("Asia/Shanghai")


def test_periods_are_parsed_and_checked():
    assert parse_period("13:30-17:00").start == time(13, 30)
    assert parse_period("00:00-24:00").end == time(23, 59, 59)
    for text, rule in (("9:00-12:00", "format"), ("12:00-12:00", "order"), ("24:30-25:00", "format"),
                       ("09:00-24:30", "format"), ("０９:00-12:00", "format")):  # fmt: skip
        with pytest.raises(RuleViolation) as caught:
            parse_period(text)
        assert caught.value.rule == rule, text
    with pytest.raises(RuleViolation, match="overlap"):
        check_opening_hours(["13:00-17:00", "09:00-13:30"], 30)
    assert [p.start for p in check_opening_hours(["13:30-17:00", "09:00-12:00"], 30)] == [time(9), time(13, 30)]


def test_slots_cut_each_period_and_drop_a_short_remainder():
    periods = check_opening_hours(["09:00-12:00", "13:30-17:10"], 30)
    starts = slot_starts(date(2026, 12, 2), periods, 30, CHINA)
    assert len(starts) == 6 + 7 and starts[0].hour == 9 and starts[-1].time() == time(16, 30)
    assert starts[0].utcoffset().total_seconds() == 8 * 3600
    start, end = slot_at(datetime(2026, 12, 2, 2, 30, tzinfo=ZoneInfo("UTC")), periods, 30, CHINA)
    assert start.time() == time(10, 30) and (end - start).seconds == 1800
    with pytest.raises(RuleViolation, match="no slot"):
        slot_at(datetime(2026, 12, 2, 12, 0, tzinfo=CHINA), periods, 30, CHINA)
    # 23:30 UTC on the 1st is the 2nd in China
    assert local_day(datetime(2026, 12, 1, 23, 30, tzinfo=ZoneInfo("UTC")), CHINA) == date(2026, 12, 2)


def test_codes_are_six_digits_and_their_hash_names_hall_and_day():
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150
    key = b"k"
    one = code_hash(key, "HALL-1", date(2026, 12, 2), "012345")
    assert one == code_hash(key, "HALL-1", date(2026, 12, 2), "012345")
    assert one != code_hash(key, "HALL-1", date(2026, 12, 3), "012345")
    assert one != code_hash(key, "HALL-2", date(2026, 12, 2), "012345")
    assert one != code_hash(b"other", "HALL-1", date(2026, 12, 2), "012345") and "012345" not in one


def test_queue_numbers_and_what_a_window_serves():
    assert ticket_display("A", 17) == "A017" and ticket_display("B", 1000) == "B1000"
    assert serves(True, [], "ANY-1") and serves(False, ["X-1"], "X-1") and not serves(False, ["X-1"], "X-2")


def test_walk_ins_from_half_an_hour_before_opening_until_closing():
    periods = check_opening_hours(["09:00-12:00", "13:30-17:00"], 30)
    at = lambda h, m: datetime(2026, 12, 2, h, m, tzinfo=CHINA)  # noqa: E731
    assert not takes_walk_ins(at(8, 29), periods, CHINA, early_minutes=30)
    assert takes_walk_ins(at(8, 30), periods, CHINA, early_minutes=30)
    assert takes_walk_ins(at(12, 30), periods, CHINA, early_minutes=30)  # lunch: people still queue
    assert takes_walk_ins(at(16, 59), periods, CHINA, early_minutes=30)
    assert not takes_walk_ins(at(17, 0), periods, CHINA, early_minutes=30)
    assert not takes_walk_ins(datetime(2026, 12, 2, 1, 0, tzinfo=CHINA), periods, CHINA, early_minutes=30)
