"""Halls and windows through the HTTP API: the platform admin sets them up, everybody reads them,
slots follow the working-day calendar, bad and hostile input is a problem naming the field."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from services.hall.tests.conftest import ADMIN, COUNTER, HALL, HALL_BODY, china, officer, person


async def test_only_the_platform_admin_sets_up_halls(hall):
    assert (await hall.put(f"/halls/{HALL}", json=HALL_BODY, headers=ADMIN)).status_code == 200  # replaced
    created = await hall.put("/halls/HALL-371400", json=HALL_BODY, headers=ADMIN)
    assert created.status_code == 201 and created.json()["windows"] == []
    department_admin = await hall.put("/halls/HALL-X", json=HALL_BODY, headers=officer("SCJGJ", "admin"))
    assert department_admin.status_code == 403 and department_admin.json()["rule"] == "relation"
    counter = await hall.put("/halls/HALL-X", json=HALL_BODY, headers=officer("ADMIN", "counter"))
    assert counter.status_code == 403 and counter.json()["rule"] == "role"
    citizen = await hall.put("/halls/HALL-X", json=HALL_BODY, headers=person())
    assert citizen.status_code == 403 and citizen.json()["rule"] == "officer"
    assert (await hall.put("/halls/HALL-X", json=HALL_BODY)).status_code == 401
    assert (await hall.get("/halls/HALL-X")).status_code == 404


async def test_a_hall_is_public_with_its_windows(hall):
    body = (await hall.get(f"/halls/{HALL}")).json()
    assert body["opening_hours"] == ["09:00-12:00", "13:30-17:00"]
    windows = {w["code"]: w for w in body["windows"]}
    assert windows["A1"]["comprehensive"] and windows["A1"]["matters"] == []
    assert windows["B1"] == {"code": "B1", "name": "不动产登记窗口", "comprehensive": False,
                             "matters": ["BDCDJ-QR-0002"], "department": "BDCDJ", "active": True}  # fmt: skip
    assert [h["code"] for h in (await hall.get("/halls")).json()] == [HALL]


async def test_slots_follow_opening_hours_and_the_calendar(hall):
    wednesday = (await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-12-02"})).json()
    assert wednesday["workday"] is True
    starts = [s["starts_at"] for s in wednesday["slots"]]
    assert len(starts) == 6 + 7  # 09:00–12:00 and 13:30–17:00 in 30 minutes
    assert datetime.fromisoformat(starts[0]) == china(2, 9) and starts[0].endswith("+08:00")  # China time
    assert datetime.fromisoformat(starts[-1]) == china(2, 16, 30) and all(s["free"] == 5 for s in wednesday["slots"])
    saturday = (await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-12-05"})).json()
    assert saturday["workday"] is False and saturday["slots"] == []
    # the calendar, not Mon–Fri: National Day's Tuesday is off, the 调休 Sunday is a working day
    assert (await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-10-06"})).json()["workday"] is False
    assert (await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-09-20"})).json()["workday"] is True
    # this morning: only slots still ahead (08:30 now, so all of them); beyond the horizon: none
    today = (await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-12-01"})).json()["slots"]
    assert len(today) == 13
    hall.clock.set(china(1, 11, 10))
    assert len((await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-12-01"})).json()["slots"]) == 8
    assert (await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-12-31"})).json()["slots"] == []
    unknown = await hall.get(f"/halls/{HALL}/slots", params={"date": "2027-03-01"})
    assert unknown.status_code == 503  # chinesecalendar 1.11 knows no 2027: no guessing


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"opening_hours": ["09:00-12:00", "11:00-13:00"]}, "body.opening_hours", "overlap"),
        ({"opening_hours": ["9:00-12:00"]}, "body.opening_hours", "format"),
        ({"opening_hours": ["12:00-09:00"]}, "body.opening_hours", "order"),
        ({"opening_hours": ["09:00-09:20"]}, "body.opening_hours", "slot_length"),
        ({"slot_minutes": 10**30}, "body.slot_minutes", "int64_range"),
        ({"slot_minutes": 241}, "body.slot_minutes", "less_than_equal"),
        ({"slot_capacity": 0}, "body.slot_capacity", "greater_than_equal"),
        ({"name": "政务\u0000中心"}, "body.name", "no_control_characters"),
        ({"name": "政务\u202e中心"}, "body.name", "no_control_characters"),
        ({"division_code": "37140２"}, "body.division_code", "string_pattern_mismatch"),
        ({"unknown": 1}, "body.unknown", "extra_forbidden"),
    ],
)
async def test_bad_halls_are_refused_naming_the_field(hall, change, field, rule):
    response = await hall.put("/halls/HALL-X", json={**HALL_BODY, **change}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field and response.json()["errors"][0]["rule"] == rule
    assert (await hall.get("/halls/HALL-X")).status_code == 404


async def test_a_lone_surrogate_and_bad_paths_are_problems(hall):
    raw = json.dumps({**HALL_BODY, "name": "X"}).replace('"X"', '"\\ud800"')
    response = await hall.put("/halls/HALL-X", content=raw, headers={**ADMIN, "content-type": "application/json"})
    assert response.status_code in {400, 422} and "name" in response.text
    assert (await hall.get("/halls/hall-lower")).status_code == 422
    assert (await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-13-01"})).status_code == 422
    assert (await hall.get(f"/halls/{HALL}/slots", params={"date": "9" * 40})).status_code == 422


async def test_a_window_serves_all_or_lists_its_matters(hall):
    response = await hall.put(f"/halls/{HALL}/windows/C1", json={"name": "窗口"}, headers=ADMIN)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.matters"
    bad = await hall.put(f"/halls/{HALL}/windows/C1", json={"name": "窗口", "matters": ["x y"]}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.matters.0"
    assert (await hall.put(f"/halls/{HALL}/windows/c1", json={"name": "窗口", "comprehensive": True},
                           headers=ADMIN)).status_code == 422  # fmt: skip
    assert (await hall.put(f"/halls/{HALL}/windows/C1", json={"name": "窗口", "comprehensive": True},
                           headers=COUNTER)).status_code == 403  # fmt: skip
