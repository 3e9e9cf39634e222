"""How caseflow mirrors express's shipments: order by the carrier's time, final stays final, each
notice once, stuck after the configured hours, the originals a pickup may collect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.caseflow.domain.shipments import is_stuck, moves, notice, notified_list, original_materials

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)


def test_a_later_event_moves_an_older_one_does_not():
    assert moves(current="in_transit", final=False, current_at=T0, status="out_for_delivery", at=T0 + timedelta(1))
    assert not moves(current="out_for_delivery", final=False, current_at=T0, status="in_transit",
                     at=T0 - timedelta(hours=1))  # fmt: skip
    # a failed attempt may be followed by another round out for delivery
    assert moves(current="failed_attempt", final=False, current_at=T0, status="out_for_delivery",
                 at=T0 + timedelta(hours=20))  # fmt: skip


@pytest.mark.parametrize("current,final", [("signed_for", False), ("returned", False), ("failed_attempt", True)])
def test_nothing_moves_a_final_shipment(current, final):
    assert not moves(current=current, final=final, current_at=T0, status="out_for_delivery", at=T0 + timedelta(1))


def test_a_requested_pickup_takes_any_first_report():
    assert moves(current="requested", final=False, current_at=T0, status="created", at=T0 - timedelta(hours=1))


def test_notices_once_each_and_only_for_results():
    assert notice(kind="deliver", status="created", waybill="EA123456785CN", notified=[]) == "dispatched"
    assert notice(kind="deliver", status="created", waybill=None, notified=[]) is None  # no waybill yet
    assert notice(kind="deliver", status="picked_up", waybill="EA123456785CN", notified=[]) == "dispatched"
    assert notice(kind="deliver", status="in_transit", waybill="EA123456785CN", notified=["dispatched"]) is None
    assert notice(kind="deliver", status="out_for_delivery", waybill="E", notified=["dispatched"]) == "out_for_delivery"
    assert notice(kind="deliver", status="out_for_delivery", waybill="E", notified=["out_for_delivery"]) is None
    assert notice(kind="deliver", status="signed_for", waybill="E", notified=["dispatched"]) == "signed_for"
    assert notice(kind="deliver", status="failed_attempt", waybill="E", notified=[]) is None
    assert notice(kind="collect", status="signed_for", waybill="E", notified=[]) is None
    assert notified_list("") == [] and notified_list("dispatched,signed_for") == ["dispatched", "signed_for"]


def test_stuck_only_while_created_past_the_hours():
    ordered = T0
    assert not is_stuck(status="created", final=False, ordered_at=ordered, now=T0 + timedelta(hours=23), hours=24)
    assert is_stuck(status="created", final=False, ordered_at=ordered, now=T0 + timedelta(hours=24), hours=24)
    assert not is_stuck(status="picked_up", final=False, ordered_at=ordered, now=T0 + timedelta(days=3), hours=24)
    assert not is_stuck(status="created", final=True, ordered_at=ordered, now=T0 + timedelta(days=3), hours=24)


def test_a_pickup_collects_the_materials_asked_for_in_original():
    matter = {"materials": [{"name": "身份证", "forms": ["electronic"]}, {"name": "租赁合同", "forms": ["original", "copy"]},
                            {"name": "其他"}]}  # fmt: skip
    assert original_materials(matter) == ["租赁合同"]
    assert original_materials({}) == []
