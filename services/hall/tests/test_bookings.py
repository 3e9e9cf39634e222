"""Bookings through the HTTP API: the daughter books her father's slot, the SMS carries time and
code, retries make one booking, capacity holds under 50 concurrent requests, moves and cancels
give places back, no-shows are marked, bad input is a problem naming the field."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from kit.testing import serve
from services.hall.adapters.sms import SandboxSms
from services.hall.background import NoShowMarker, SmsDispatcher
from services.hall.models import Booking, OutgoingSms, Slot
from services.hall.tests.conftest import (
    ADMIN,
    COUNTER,
    DAUGHTER,
    FATHER,
    HALL,
    MOBILE,
    STRANGER,
    book,
    china,
    code_sent,
    make_hall,
    officer,
    person,
    published,
)  # fmt: skip


async def test_the_daughter_books_her_father_a_slot_and_the_sms_says_when_and_the_code(hall):
    response = await book(hall, visitor_id_number=FATHER, case_no="CF20261201000001")
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "booked" and booking["visitor"] == "1101**********0038"
    assert booking["mobile"] == "138****8000" and datetime.fromisoformat(booking["starts_at"]) == china(2, 10, 30)
    assert hall.sms.messages == type(hall.sms.messages)()  # nothing sent before the dispatcher runs (after commit)
    code = await code_sent(hall)
    text = hall.sms.sent_to(MOBILE)[0]["text"]
    assert "德城区政务服务中心" in text and "2026年12月02日 10:30" in text and "北京时间" in text
    # the code is kept only as an HMAC, and the sent message is kept masked
    async with hall.app.state.sessionmaker() as session:
        row = (await session.execute(select(Booking))).scalar_one()
        sms = (await session.execute(select(OutgoingSms))).scalar_one()
    assert code not in row.code_hash and sms.sent_at is not None and code not in sms.text
    # both hold it: the one who booked and the one who comes; nobody else sees it exists
    assert (await hall.get(f"/bookings/{booking['id']}", headers=person(FATHER))).status_code == 200
    assert (await hall.get(f"/bookings/{booking['id']}", headers=person(DAUGHTER))).status_code == 200
    stranger = await hall.get(f"/bookings/{booking['id']}", headers=person(STRANGER))
    missing = await hall.get("/bookings/bk_" + "0" * 24, headers=person(STRANGER))
    assert stranger.status_code == missing.status_code == 404 and stranger.json()["detail"] == missing.json()["detail"]
    assert (await hall.get(f"/bookings/{booking['id']}", headers=COUNTER)).status_code == 404
    assert [b["id"] for b in (await hall.get("/bookings", headers=person(FATHER))).json()["items"]] == [booking["id"]]
    made = await published(hall, ".booking.made.v1")
    assert made == [{"booking_id": booking["id"], "hall_code": HALL, "matter_code": "GAJ-XK-0002",
                     "starts_at": made[0]["starts_at"], "case_no": "CF20261201000001", "at": made[0]["at"]}]  # fmt: skip
    assert FATHER not in str(made) and MOBILE not in str(made)


async def test_a_retried_request_makes_one_booking(hall):
    key = {"Idempotency-Key": "phone-retry-1"}
    first = await book(hall, headers={**person(), **key})
    again = await book(hall, headers={**person(), **key})
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    other = await book(hall, headers={**person(), **key}, matter_code="GAJ-XK-0003")
    assert other.status_code == 422 and other.json()["rule"] == "idempotency_key"
    # concurrent retries of one key: still one booking, one place taken
    key2 = {"Idempotency-Key": "phone-retry-2"}
    answers = await asyncio.gather(*(book(hall, headers={**person(STRANGER), **key2}, starts_at=china(2, 11).isoformat())
                                     for _ in range(8)))  # fmt: skip
    assert {a.status_code for a in answers} <= {200, 201} and len({a.json()["id"] for a in answers}) == 1
    slots = (await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-12-02"})).json()["slots"]
    free = {datetime.fromisoformat(s["starts_at"]): s["free"] for s in slots}
    assert free[china(2, 10, 30)] == 4 and free[china(2, 11)] == 4


async def test_capacity_holds_under_fifty_concurrent_bookings(hall):
    visitors = [f"11010519491231{n:03d}" for n in range(100)]
    from kit.subject_ids import validate_id_number

    def valid(prefix: str) -> str | None:
        from stdnum.cn import ric

        number = prefix + ric.calc_check_digit(prefix + "0")
        try:
            return validate_id_number(number)
        except Exception:
            return None

    people = [v for v in (valid(p[:17]) for p in visitors) if v][:50]
    assert len(people) == 50
    # over a real socket (uvicorn), as 50 phones would: every request its own connection and task
    async with serve(hall.app, lifespan="off") as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        answers = await asyncio.gather(*(book(client, headers=person(p)) for p in people))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) == 5 and codes.count(409) == 45, codes
    assert {a.json()["type"].rsplit("/", 1)[1] for a in answers if a.status_code == 409} == {"slot-full"}
    async with hall.app.state.sessionmaker() as session:
        slot = (await session.execute(select(Slot))).scalar_one()
        count = len((await session.execute(select(Booking))).scalars().all())
    assert (slot.booked, slot.capacity, count) == (5, 5, 5)


async def test_one_person_is_in_one_place_at_a_time(hall):
    assert (await book(hall, visitor_id_number=FATHER)).status_code == 201
    twice = await book(hall, headers=person(STRANGER), visitor_id_number=FATHER)
    assert twice.status_code == 409 and twice.json()["rule"] == "overlap"
    # another hall, the same half hour: still him
    await make_hall(hall, "HALL-371400")
    elsewhere = await book(hall, hall_code="HALL-371400", visitor_id_number=FATHER)
    assert elsewhere.status_code == 409
    # concurrently: one wins
    answers = await asyncio.gather(*(book(hall, headers=person(DAUGHTER), visitor_id_number=STRANGER,
                                          starts_at=china(2, 14).isoformat()) for _ in range(6)))  # fmt: skip
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5


async def test_moving_and_cancelling_give_the_place_back(hall):
    booking = (await book(hall)).json()
    old_code = await code_sent(hall)
    moved = await hall.post(f"/bookings/{booking['id']}/move", json={"starts_at": china(3, 14).isoformat()},
                            headers=person())  # fmt: skip
    assert moved.status_code == 200 and datetime.fromisoformat(moved.json()["starts_at"]) == china(3, 14)
    new_code = await code_sent(hall)
    assert (
        "改至" in hall.sms.sent_to(MOBILE)[0]["text"] and "2026年12月03日 14:00" in hall.sms.sent_to(MOBILE)[0]["text"]
    )
    day2 = (await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-12-02"})).json()["slots"]
    assert all(s["free"] == 5 for s in day2)
    same = await hall.post(f"/bookings/{booking['id']}/move", json={"starts_at": china(3, 14).isoformat()},
                           headers=person())  # fmt: skip
    assert same.status_code == 422 and same.json()["errors"][0]["rule"] == "same_slot"
    assert (await published(hall, ".booking.moved.v1"))[0]["previous_starts_at"].startswith("2026-12-02T02:30")
    # the old code no longer checks in on the new day
    hall.clock.set(china(3, 13, 45))
    assert (
        await hall.post(f"/halls/{HALL}/check-ins", json={"code": old_code})
    ).status_code == 404 or old_code == new_code
    hall.clock.set(china(1, 9))
    other = await hall.post(f"/bookings/{booking['id']}/cancel", headers=person(STRANGER))
    assert other.status_code == 404
    cancelled = await hall.post(f"/bookings/{booking['id']}/cancel", headers=person())
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    day3 = (await hall.get(f"/halls/{HALL}/slots", params={"date": "2026-12-03"})).json()["slots"]
    assert all(s["free"] == 5 for s in day3)
    again = await hall.post(f"/bookings/{booking['id']}/cancel", headers=person())
    assert again.status_code == 409 and again.json()["rule"] == "state"
    assert len(await published(hall, ".booking.cancelled.v1")) == 1


async def test_a_booking_whose_slot_ended_without_check_in_is_a_no_show(hall):
    booking = (await book(hall)).json()
    kept = (await book(hall, starts_at=china(2, 14).isoformat())).json()
    hall.clock.set(china(2, 10, 59))
    assert await hall.no_shows.batch() == 0
    hall.clock.set(china(2, 11, 0))
    assert await hall.no_shows.batch() == 1
    assert await hall.no_shows.batch() == 0  # once
    mine = (await hall.get("/bookings", headers=person())).json()["items"]
    assert {b["id"]: b["status"] for b in mine} == {booking["id"]: "no_show", kept["id"]: "booked"}
    only = (await hall.get("/bookings", params={"status": "no_show"}, headers=person())).json()
    assert only["total"] == 1
    assert [e["booking_id"] for e in await published(hall, ".booking.no_show.v1")] == [booking["id"]]


async def test_an_sms_the_gateway_refused_is_sent_later(hall):
    hall.sms.fail_next = 1
    assert (await book(hall)).status_code == 201
    assert await hall.dispatcher.batch() == 1 and hall.sms.messages.maxlen and not hall.sms.messages
    assert await hall.dispatcher.batch() == 0  # waits its backoff
    hall.clock.set(hall.clock.value.replace(minute=hall.clock.value.minute + 5))
    assert await hall.dispatcher.batch() == 1 and len(hall.sms.sent_to(MOBILE)) == 1
    async with hall.app.state.sessionmaker() as session:
        row = (await session.execute(select(OutgoingSms))).scalar_one()
    assert row.attempts == 2 and row.sent_at is not None


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"visitor_id_number": "110105194912310039"}, "body.visitor_id_number", "checksum"),
        ({"starts_at": "2026-12-02T10:40:00+08:00"}, "body.starts_at", "slot"),
        ({"starts_at": "2026-12-02T10:30:00"}, "body.starts_at", "timezone_aware"),
        ({"starts_at": "2026-12-05T10:30:00+08:00"}, "body.starts_at", "working_day"),
        ({"starts_at": "2026-12-01T08:00:00+08:00"}, "body.starts_at", "slot"),
        ({"starts_at": "2026-12-01T09:00:00+08:00", "hall_code": HALL}, "body.starts_at", "future"),
        ({"starts_at": "2026-12-28T10:30:00+08:00"}, "body.starts_at", "horizon"),
        ({"mobile": "1380013800"}, "body.mobile", "string_pattern_mismatch"),
        ({"mobile": 10**40}, "body.mobile", "int64_range"),
        ({"case_no": "CF\u0007"}, "body.case_no", "no_control_characters"),
        ({"matter_code": "GAJ XK"}, "body.matter_code", "string_pattern_mismatch"),
    ],
)
async def test_bad_bookings_are_refused_naming_the_field(hall, change, field, rule):
    hall.clock.set(china(1, 9, 5))
    response = await book(hall, **change)
    assert response.status_code == 422, response.text
    assert (response.json()["errors"][0]["field"], response.json()["errors"][0]["rule"]) == (field, rule)
    assert (await hall.get("/bookings", headers=person())).json()["total"] == 0


async def test_a_matter_no_window_serves_cannot_be_booked_and_officers_do_not_book(hall):
    await hall.put("/halls/HALL-B", json={"name": "不动产登记大厅", "division_code": "371400", "address": "德州市",
                                          "opening_hours": ["09:00-12:00"], "slot_minutes": 30, "slot_capacity": 2},
                   headers=ADMIN)  # fmt: skip
    await hall.put("/halls/HALL-B/windows/B1", json={"name": "登记", "matters": ["BDCDJ-QR-0002"]}, headers=ADMIN)
    refused = await book(hall, hall_code="HALL-B")
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.matter_code"
    assert (await book(hall, hall_code="HALL-B", matter_code="BDCDJ-QR-0002")).status_code == 201
    assert (await book(hall, headers=COUNTER)).status_code == 403
    assert (await hall.post("/bookings", json={})).status_code == 401
    enterprise = await book(hall, headers=person("91110000600037341L", kind="enterprise"))
    assert enterprise.status_code == 422 and enterprise.json()["errors"][0]["field"] == "body.visitor_id_number"
    agent = await book(hall, headers=person("91110000600037341L", kind="enterprise", act={"sub": STRANGER}))
    assert agent.status_code == 201 and agent.json()["visitor"].endswith("0011")


async def test_officers_see_the_day_per_window_masked(hall):
    await book(hall, visitor_id_number=FATHER)
    await book(hall, headers=person(STRANGER), matter_code="BDCDJ-QR-0002", starts_at=china(2, 9).isoformat())
    day = await hall.get(f"/halls/{HALL}/bookings", params={"date": "2026-12-02"}, headers=COUNTER)
    assert day.status_code == 200, day.text
    windows = {w["window"]: w["bookings"] for w in day.json()["windows"]}
    assert [b["matter_code"] for b in windows["A1"]] == ["BDCDJ-QR-0002", "GAJ-XK-0002"]  # by time
    assert [b["matter_code"] for b in windows["B1"]] == ["BDCDJ-QR-0002"]
    assert FATHER not in day.text and "1101**********0038" in day.text and MOBILE not in day.text
    only = await hall.get(f"/halls/{HALL}/bookings", params={"date": "2026-12-02", "window": "B1"}, headers=COUNTER)
    assert [w["window"] for w in only.json()["windows"]] == ["B1"]
    assert (await hall.get(f"/halls/{HALL}/bookings", params={"date": "2026-12-02", "window": "Z9"},
                           headers=COUNTER)).status_code == 422  # fmt: skip
    assert (await hall.get(f"/halls/{HALL}/bookings", params={"date": "2026-12-02"},
                           headers=officer("SCJGJ", "acceptor"))).status_code == 403  # fmt: skip
    assert (await hall.get(f"/halls/{HALL}/bookings", params={"date": "2026-12-02"},
                           headers=person())).status_code == 403  # fmt: skip
    assert (await hall.get(f"/halls/{HALL}/bookings", params={"date": "2026-12-02"},
                           headers=officer("ADMIN", "supervisor"))).status_code == 200  # fmt: skip


async def test_two_replicas_mark_each_no_show_once_and_send_each_sms_once(hall):
    people = ["11010519491231002X", "110105194912310038", "110101199003070011"]
    for n, visitor in enumerate(people):
        assert (await book(hall, headers=person(visitor), starts_at=china(2, 9 + n).isoformat())).status_code == 201
    other_dispatcher = SmsDispatcher(hall.app.state.sessionmaker, hall.sms, hall.app.state.settings, clock=hall.clock)
    sent = await asyncio.gather(hall.dispatcher.batch(), other_dispatcher.batch())
    assert sum(sent) == 3 and len(hall.sms.messages) == 3
    hall.clock.set(china(2, 17))
    other_marker = NoShowMarker(hall.app.state.sessionmaker, hall.app.state.settings, clock=hall.clock)
    marked = await asyncio.gather(hall.no_shows.batch(), other_marker.batch(), hall.no_shows.batch())
    assert sum(marked) == 3 and len(await published(hall, ".booking.no_show.v1")) == 3


class HeldSms(SandboxSms):
    """A gateway that holds its first send until the test lets it go (a slow gateway, made exact)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, mobile: str, text: str) -> None:
        if not self.entered.is_set():
            self.entered.set()
            await self.release.wait()
        await super().send(mobile, text)


async def test_a_replica_never_takes_a_row_the_other_is_still_sending_and_a_dead_ones_rows_come_back(hall):
    """The lease covers a whole batch sent one by one (a minute did not: a slow gateway let the
    other replica send the same rows again); a dispatcher that dies mid-batch leaves its rows
    leased until the lease ends, then the other sends them."""
    people = ["11010519491231002X", "110105194912310038", "110101199003070011"]
    for n, visitor in enumerate(people):
        assert (await book(hall, headers=person(visitor), starts_at=china(2, 9 + n).isoformat())).status_code == 201
    settings = hall.app.state.settings
    held = HeldSms()
    slow = SmsDispatcher(hall.app.state.sessionmaker, held, settings, clock=hall.clock)
    sending = asyncio.create_task(slow.batch())
    await held.entered.wait()  # the first of its three rows is at the gateway
    hall.clock.set(hall.clock() + timedelta(minutes=2))
    assert await hall.dispatcher.batch() == 0  # still leased to the slow one
    held.release.set()
    assert await sending == 3
    assert len(held.messages) == 3 and len(hall.sms.messages) == 0

    for n, visitor in enumerate(people):  # three more, and a dispatcher killed while sending them
        response = await book(hall, headers=person(visitor), starts_at=china(3, 9 + n).isoformat())
        assert response.status_code == 201
    dying = HeldSms()
    killed = asyncio.create_task(SmsDispatcher(hall.app.state.sessionmaker, dying, settings, clock=hall.clock).batch())
    await dying.entered.wait()
    killed.cancel()  # it never marks a row: as if the process had gone
    with contextlib.suppress(asyncio.CancelledError):
        await killed
    assert await hall.dispatcher.batch() == 0  # leased to the dead one
    hall.clock.set(hall.clock() + slow.lease + timedelta(seconds=1))
    assert await hall.dispatcher.batch() == 3
    assert len(hall.sms.messages) == 3 and len(dying.messages) == 0
    async with hall.app.state.sessionmaker() as session:
        rows = list((await session.execute(select(OutgoingSms))).scalars())
    assert len(rows) == 6 and all(row.sent_at is not None for row in rows)
