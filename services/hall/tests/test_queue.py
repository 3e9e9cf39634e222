"""The queue through the HTTP API: Mr Liu checks in with his SMS code and takes A001; walk-ins
take tickets; a window calls booked-and-due visitors first, then the rest by number, only for
matters it serves; two officers calling at once never get the same ticket; numbers stay unique."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from services.hall.domain.queue import WaitingTicket, call_order
from services.hall.tests.conftest import (
    COUNTER,
    FATHER,
    HALL,
    STRANGER,
    book,
    china,
    code_sent,
    kiosk,
    officer,
    person,
    published,
)


async def walk_in(hall, matter: str = "GAJ-XK-0002", headers=None):
    response = await hall.post(f"/halls/{HALL}/tickets", json={"matter_code": matter}, headers=headers or COUNTER)
    assert response.status_code == 201, response.text
    return response.json()


async def call(hall, window: str = "A1", headers=None):
    return await hall.post(f"/halls/{HALL}/calls", json={"window": window}, headers=headers or COUNTER)


async def test_mr_liu_checks_in_with_his_code_and_an_officer_calls_him(hall):
    booking = (await book(hall, visitor_id_number=FATHER, case_no="CF20261201000001")).json()
    code = await code_sent(hall)
    hall.clock.set(china(2, 9, 20))
    early = await hall.post(f"/halls/{HALL}/check-ins", json={"code": code})
    assert early.status_code == 409 and early.json()["rule"] == "too_early"
    hall.clock.set(china(2, 10, 20))
    ticket = await hall.post(f"/halls/{HALL}/check-ins", json={"code": code})  # the machine: no token
    assert ticket.status_code == 201, ticket.text
    assert ticket.json()["number"] == "A001" and ticket.json()["kind"] == "booking"
    assert FATHER not in ticket.text
    again = await hall.post(f"/halls/{HALL}/check-ins", json={"code": code})
    assert again.status_code == 201 and again.json()["id"] == ticket.json()["id"]  # pressed twice: same ticket
    mine = (await hall.get(f"/bookings/{booking['id']}", headers=person(FATHER))).json()
    assert mine["status"] == "checked_in" and mine["ticket"] == "A001"
    hall.clock.set(china(2, 10, 31))
    called = await call(hall, "A2")
    assert called.status_code == 200 and called.json()["number"] == "A001" and called.json()["window"] == "A2"
    board = (await hall.get(f"/halls/{HALL}/queue")).json()
    assert board["waiting"] == 0 and board["called"][0]["window"] == "A2" and board["called"][0]["number"] == "A001"
    served = await hall.post(f"/tickets/{called.json()['id']}/served", json={"case_no": "CF20261201000002"},
                             headers=COUNTER)  # fmt: skip
    assert served.status_code == 200 and served.json()["status"] == "served"
    assert (await hall.post(f"/tickets/{called.json()['id']}/served", headers=COUNTER)).status_code == 409
    assert (await published(hall, ".booking.checked_in.v1"))[0]["ticket"] == "A001"
    assert (await published(hall, ".ticket.called.v1"))[0]["window_code"] == "A2"
    assert (await published(hall, ".ticket.served.v1"))[0]["case_no"] == "CF20261201000002"
    # the slot is over and he came: no no-show
    hall.clock.set(china(2, 12))
    assert await hall.no_shows.batch() == 0


async def test_wrong_codes_are_counted_and_the_machine_waits(hall):
    hall.clock.set(china(1, 9))
    wrong = await hall.post(f"/halls/{HALL}/check-ins", json={"code": "000000"})
    assert wrong.status_code == 404 and wrong.json()["errors"][0]["field"] == "body.code"
    for _ in range(9):
        await hall.post(f"/halls/{HALL}/check-ins", json={"code": "000001"})
    blocked = await hall.post(f"/halls/{HALL}/check-ins", json={"code": "000002"})
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    # another kiosk is another source; after the window the first may try again
    other = await hall.post(f"/halls/{HALL}/check-ins", json={"code": "000002"}, headers=kiosk(device="KIOSK-02"))
    assert other.status_code == 404
    hall.clock.set(china(1, 9, 11))
    assert (await hall.post(f"/halls/{HALL}/check-ins", json={"code": "000002"})).status_code == 404
    for bad in ({"code": "12345"}, {"code": "１２３４５６"}, {"code": 123456}, {"code": "12345\u0000"}, {}):
        response = await hall.post(f"/halls/{HALL}/check-ins", json=bad)
        assert response.status_code == 422 and response.json()["errors"][0]["field"].startswith("body"), bad


async def test_a_window_calls_booked_and_due_first_then_by_number_and_only_what_it_serves(hall):
    booked = (await book(hall, headers=person(STRANGER), starts_at=china(1, 10).isoformat())).json()
    code = await code_sent(hall)
    hall.clock.set(china(1, 9, 30))
    w1 = await walk_in(hall)  # A001
    w2 = await walk_in(hall, "BDCDJ-QR-0002")  # A002
    checked = (await hall.post(f"/halls/{HALL}/check-ins", json={"code": code})).json()  # A003, slot at 10:00
    assert checked["number"] == "A003" and booked["id"]
    w3 = await walk_in(hall, headers=kiosk())  # A004, the hall's machine
    assert w3["number"] == "A004"
    hall.clock.set(china(1, 10, 1))  # his slot has begun: he goes first
    order = [(await call(hall)).json()["number"] for _ in range(2)]
    assert order == ["A003", "A001"]
    # B1 serves only BDCDJ-QR-0002: it takes A002 even though A004 is older in nothing it serves
    assert (await call(hall, "B1", officer("BDCDJ", "counter"))).json()["number"] == "A002"
    empty = await call(hall, "B1", officer("BDCDJ", "counter"))
    assert empty.status_code == 404 and empty.json()["rule"] == "empty"
    assert (await call(hall)).json()["number"] == "A004"
    assert (await call(hall)).status_code == 404
    assert w1["number"] == "A001" and w2["number"] == "A002"


def test_the_call_order_rule():
    now = datetime(2026, 12, 1, 2, 0)
    t = [
        WaitingTicket("a", 1, "walk_in", "M", None),
        WaitingTicket("b", 2, "booking", "M", now + timedelta(minutes=30)),  # early: waits by number
        WaitingTicket("c", 3, "booking", "M", now - timedelta(minutes=30)),
        WaitingTicket("d", 4, "booking", "M", now - timedelta(minutes=60)),
        WaitingTicket("e", 5, "walk_in", "M", None),
    ]
    assert [x.id for x in call_order(t, now)] == ["d", "c", "a", "b", "e"]


async def test_who_may_take_tickets_and_call(hall):
    hall.clock.set(china(1, 9, 30))
    assert (await hall.post(f"/halls/{HALL}/tickets", json={"matter_code": "GAJ-XK-0002"},
                            headers=person())).status_code == 403  # fmt: skip
    assert (await hall.post(f"/halls/{HALL}/tickets", json={"matter_code": "GAJ-XK-0002"})).status_code == 401
    ticket = await walk_in(hall, "GAJ-XK-0002")
    other_department = await call(hall, "B1", officer("SCJGJ", "counter"))
    assert other_department.status_code == 403 and other_department.json()["rule"] == "relation"
    assert (await call(hall, "A1", officer("SCJGJ", "acceptor"))).status_code == 403
    assert (await call(hall, "A1", person())).status_code == 403
    assert (await call(hall, "Z9")).status_code == 422
    called = (await call(hall, "A1", officer("SCJGJ", "counter"))).json()  # comprehensive: any counter officer
    assert called["id"] == ticket["id"]
    assert (await hall.post(f"/tickets/{ticket['id']}/missed", headers=person())).status_code == 403
    missed = await hall.post(f"/tickets/{ticket['id']}/missed", headers=COUNTER)
    assert missed.status_code == 200 and missed.json()["status"] == "missed"
    assert (await hall.post("/tickets/tk_" + "0" * 24 + "/served", headers=COUNTER)).status_code == 404
    assert (await hall.post("/tickets/" + "9" * 40 + "/served", headers=COUNTER)).status_code == 422


async def test_two_officers_calling_at_once_never_get_the_same_ticket(hall):
    hall.clock.set(china(1, 9, 30))
    issued = await asyncio.gather(*(hall.post(f"/halls/{HALL}/tickets", json={"matter_code": "GAJ-XK-0002"},
                                              headers=COUNTER) for _ in range(30)))  # fmt: skip
    numbers = sorted(r.json()["number"] for r in issued)
    assert numbers == [f"A{n:03d}" for n in range(1, 31)]  # unique under concurrency, no gaps
    officers = [officer("ZWFW", "counter", login=f"o{n}") for n in range(6)]
    answers = await asyncio.gather(*(call(hall, ("A1", "A2")[n % 2], officers[n % 6]) for n in range(36)))
    got = [a.json()["id"] for a in answers if a.status_code == 200]
    assert len(got) == 30 and len(set(got)) == 30
    assert sorted(a.status_code for a in answers).count(404) == 6
    board = (await hall.get(f"/halls/{HALL}/queue")).json()
    assert board["waiting"] == 0 and {c["window"] for c in board["called"]} == {"A1", "A2"}


async def test_a_new_day_starts_at_one(hall):
    hall.clock.set(china(1, 9, 30))
    assert (await walk_in(hall))["number"] == "A001"
    assert (await walk_in(hall))["number"] == "A002"
    hall.clock.set(china(2, 9, 30))
    assert (await walk_in(hall))["number"] == "A001"
    assert (await hall.get(f"/halls/{HALL}/queue")).json()["waiting"] == 1  # yesterday's are not today's queue


async def test_walk_in_numbers_only_while_the_hall_is_open(hall):
    for moment in (china(1, 8, 0), china(1, 17, 0), china(5, 10, 0), china(6, 10, 0, month=10)):
        hall.clock.set(moment)  # before opening, after closing, a Saturday, National Day
        closed = await hall.post(f"/halls/{HALL}/tickets", json={"matter_code": "GAJ-XK-0002"}, headers=COUNTER)
        assert closed.status_code == 409 and closed.json()["rule"] == "closed", moment
    hall.clock.set(china(20, 8, 45, month=9))  # the Sunday worked for National Day, before 09:00
    assert (await walk_in(hall))["number"] == "A001"
