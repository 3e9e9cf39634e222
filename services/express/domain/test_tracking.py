"""The tracking rule, table-driven; then every scenario replayed in many arrival orders with
duplicates, which must all end in the same status and timeline."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.express.domain.tracking import (
    EMS_CODES,
    FINAL,
    RANK,
    STATUSES,
    Tracking,
    TrackingEvent,
    UnknownCarrierCode,
    advance,
    ems_status,
    replay,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def ev(n: int, code: str, *, minutes: int | None = None, event_id: str | None = None) -> TrackingEvent:
    """Event number ``n`` with EMS ``code``, ``minutes`` after T0 (default: n * 30)."""
    entry = EMS_CODES[code]
    at = T0 + timedelta(minutes=n * 30 if minutes is None else minutes)
    return TrackingEvent(event_id or f"e{n}", entry.status, at, code=code, text=entry.text)


def test_the_ems_table_maps_each_code_once_and_covers_every_carrier_status():
    assert {code: entry.status for code, entry in EMS_CODES.items()} == {
        "10": "picked_up", "20": "in_transit", "30": "out_for_delivery", "40": "signed_for",
        "50": "failed_attempt", "60": "returned",
    }  # fmt: skip
    assert [EMS_CODES[c].text for c in ("10", "20", "30", "40", "50", "60")] == [
        "收寄", "运输中", "派送中", "妥投", "未妥投", "退回"
    ]  # fmt: skip
    assert {entry.status for entry in EMS_CODES.values()} == set(STATUSES) - {"created"}
    assert ems_status("40") == "signed_for"
    for unknown in ("", "00", "41", "4", "40 ", "妥投"):
        with pytest.raises(UnknownCarrierCode):
            ems_status(unknown)


def test_statuses_order():
    assert list(RANK) == list(STATUSES)
    assert [RANK[s] for s in STATUSES] == [0, 1, 2, 3, 3, 4, 4]
    assert FINAL == {"signed_for", "returned"}


# (events applied in this order, expected outcomes, final status) — one row per rule.
RULES = [
    pytest.param([ev(1, "10"), ev(2, "20"), ev(3, "30"), ev(4, "40")],
                 ["changed"] * 4, "signed_for", id="straight-through"),
    pytest.param([ev(1, "10"), ev(3, "30"), ev(2, "20")],
                 ["changed", "changed", "recorded"], "out_for_delivery", id="late-in-transit-never-goes-back"),
    pytest.param([ev(1, "10"), ev(1, "10")],
                 ["changed", "duplicate"], "picked_up", id="duplicate-event-id"),
    pytest.param([ev(1, "10"), ev(2, "20", event_id="e1")],
                 ["changed", "duplicate"], "picked_up", id="event-id-decides-not-content"),
    pytest.param([ev(3, "30"), ev(4, "50"), ev(5, "30"), ev(6, "40")],
                 ["changed"] * 4, "signed_for", id="failed-attempt-then-out-again"),
    pytest.param([ev(3, "30"), ev(5, "30"), ev(4, "50")],
                 ["changed", "changed", "recorded"], "out_for_delivery", id="an-older-failure-does-not-undo-a-new-round"),
    pytest.param([ev(3, "30"), ev(4, "50"), ev(2, "20")],
                 ["changed", "changed", "recorded"], "failed_attempt", id="failed-attempt-is-not-behind-in-transit"),
    pytest.param([ev(4, "40"), ev(5, "50"), ev(6, "30")],
                 ["changed", "recorded", "recorded"], "signed_for", id="signed-for-is-final"),
    pytest.param([ev(4, "60"), ev(5, "40")],
                 ["changed", "conflict"], "returned", id="a-second-different-final-is-a-conflict"),
    pytest.param([ev(4, "40"), ev(5, "40", event_id="again")],
                 ["changed", "recorded"], "signed_for", id="the-same-final-twice-is-no-conflict"),
    pytest.param([ev(5, "30"), ev(4, "40")],
                 ["changed", "changed"], "signed_for", id="a-final-wins-even-with-an-earlier-clock"),
    pytest.param([ev(4, "30", minutes=120), ev(5, "50", minutes=120)],
                 ["changed", "changed"], "failed_attempt", id="same-second-failure-follows-its-round"),
    pytest.param([ev(5, "50", minutes=120), ev(4, "30", minutes=120)],
                 ["changed", "recorded"], "failed_attempt", id="same-second-either-order"),
]  # fmt: skip


@pytest.mark.parametrize(("events", "outcomes", "status"), RULES)
def test_rule(events, outcomes, status):
    tracking = Tracking()
    seen = []
    for event in events:
        result = advance(tracking, event)
        seen.append(result.outcome)
        assert result.changed == (result.outcome == "changed")
        if result.outcome == "duplicate":
            assert result.tracking is tracking
        tracking = result.tracking
    assert seen == outcomes
    assert tracking.status == status
    assert tracking.timeline == tuple(sorted({e.event_id: e for e in reversed(events)}.values(),
                                             key=TrackingEvent.sort_key))  # fmt: skip


def test_times_in_different_zones_compare_as_instants():
    # 10:30 +08:00 is 02:30 UTC, before 03:00 UTC: compared as wall-clock text it would look later.
    pickup = TrackingEvent("a", "picked_up", datetime(2026, 12, 1, 10, 30, tzinfo=timezone(timedelta(hours=8))))
    transit = TrackingEvent("b", "in_transit", datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
    tracking = replay([transit, pickup])
    assert tracking.status == "in_transit"
    assert [e.event_id for e in tracking.timeline] == ["a", "b"]


def test_a_naive_event_time_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        advance(Tracking(), TrackingEvent("a", "picked_up", datetime(2026, 12, 1, 10, 0)))


# Whole journeys, in the order they happened.
JOURNEYS = {
    "delivered": [ev(1, "10"), ev(2, "20"), ev(3, "20"), ev(4, "30"), ev(5, "40")],
    "second-attempt": [ev(1, "10"), ev(2, "20"), ev(3, "30"), ev(4, "50"), ev(5, "30"), ev(6, "40")],
    "failed-waiting": [ev(1, "10"), ev(2, "20"), ev(3, "30"), ev(4, "50")],
    "out-again": [ev(1, "10"), ev(2, "20"), ev(3, "30"), ev(4, "50"), ev(5, "30")],
    "returned": [ev(1, "10"), ev(2, "20"), ev(3, "30"), ev(4, "50"), ev(5, "30"), ev(6, "50"), ev(7, "60")],
    "same-second": [ev(1, "10"), ev(2, "20", minutes=60), ev(3, "20", minutes=60), ev(4, "30"), ev(5, "50")],
}
EXPECTED = {
    "delivered": "signed_for",
    "second-attempt": "signed_for",
    "failed-waiting": "failed_attempt",
    "out-again": "out_for_delivery",
    "returned": "returned",
    "same-second": "failed_attempt",
}


@pytest.mark.parametrize("name", sorted(JOURNEYS))
def test_any_arrival_order_with_duplicates_ends_the_same(name):
    events = JOURNEYS[name]
    in_order = replay(events)
    assert in_order.status == EXPECTED[name]
    assert in_order.current == max(events, key=TrackingEvent.precedence)
    rng = random.Random(f"tracking-{name}")
    for _ in range(300):
        arrivals = events + rng.sample(events, rng.randint(0, len(events)))  # some sent twice or more
        rng.shuffle(arrivals)
        tracking = Tracking()
        changes = duplicates = 0
        for event in arrivals:
            result = advance(tracking, event)
            changes += result.changed
            duplicates += result.outcome == "duplicate"
            # never backwards, whatever arrives
            assert RANK[result.tracking.status] >= RANK[tracking.status]
            tracking = result.tracking
        assert (tracking.status, tracking.current, tracking.timeline) == (
            in_order.status, in_order.current, in_order.timeline,
        ), arrivals  # fmt: skip
        assert duplicates == len(arrivals) - len(events)
        assert 1 <= changes <= len(events)
