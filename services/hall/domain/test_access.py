"""The one access table walked whole: every action × relation × role set gets the table's answer,
refusals follow the 401/403/404 rules, and relations come from the token alone."""

from __future__ import annotations

import pytest

from kit.auth import Principal
from kit.testing import access_cells, access_refusals
from services.hall.domain import access


@pytest.mark.parametrize(("action", "relation"), access_cells(access))
def test_every_cell(action, relation):
    for roles, decision in access_refusals(access, action, relation):
        if action in access.HIDDEN and relation != access.HOLDER:
            assert (decision.status, decision.detail) == (404, access.NOT_FOUND)
        elif relation == access.ANYONE:
            assert (decision.status, decision.rule) == (401, "token")
        elif action in access.OFFICERS_ONLY and relation in access.CITIZENS:
            assert (decision.status, decision.rule) == (403, "officer")
        else:
            assert decision.status == 403 and decision.rule in {"role", "relation"}, (action, relation, roles)


# The brief in words.
def test_the_rules_in_words():
    assert access.permitted("hall.manage", access.PLATFORM, ("admin",))
    assert not access.permitted("hall.manage", access.OFFICER, ("admin",))  # a department's admin: no
    assert not access.permitted("hall.manage", access.PLATFORM, ("counter",))
    for relation in access.RELATIONS:  # the board and the machine are public
        assert access.permitted("queue.board", relation, ())
        assert access.permitted("check_in", relation, ())
    assert access.permitted("booking.create", access.PERSON, ())
    assert not access.permitted("booking.create", access.OFFICER, ("counter",))
    assert not access.permitted("booking.create", access.ANYONE, ())
    assert access.permitted("booking.day_view", access.OFFICER, ("counter",))
    assert access.permitted("booking.day_view", access.PLATFORM, ("supervisor",))
    assert not access.permitted("booking.day_view", access.OFFICER, ("acceptor",))
    assert access.permitted("ticket.call", access.OWN_WINDOW, ("counter",))
    assert not access.permitted("ticket.call", access.OTHER_WINDOW, ("counter",))
    assert not access.permitted("ticket.call", access.OWN_WINDOW, ("admin",))
    assert access.permitted("ticket.walk_in", access.KIOSK, ())
    assert not access.permitted("ticket.walk_in", access.PERSON, ())


def who(kind: str, subject: str = "11010519491231002X", **fields) -> Principal:
    return Principal(subject=subject, kind=kind, level=2, **fields)


def test_relations_come_from_the_token():
    assert access.caller_relation(None) == access.ANYONE
    assert access.caller_relation(who("officer", "officer:x", department="ADMIN", roles=("admin",))) == access.PLATFORM
    assert access.caller_relation(who("officer", "officer:x", department="SCJGJ")) == access.OFFICER
    assert access.caller_relation(who("person", channel="kiosk", device="K1")) == access.KIOSK
    assert access.caller_relation(who("person")) == access.PERSON
    daughter, father = "11010519491231002X", "110105194912310038"
    assert access.booking_relation(who("person", father), booker=daughter, visitor=father) == access.HOLDER
    assert access.booking_relation(who("person", daughter), booker=daughter, visitor=father) == access.HOLDER
    assert (
        access.booking_relation(who("person", "110101199003070011"), booker=daughter, visitor=father) == access.PERSON
    )
    # an officer whose subject happens to equal the visitor is no holder
    assert (
        access.booking_relation(who("officer", father, department="GAJ"), booker=daughter, visitor=father)
        == access.OFFICER
    )
    counter = who("officer", "officer:c", department="SCJGJ", roles=("counter",))
    assert access.window_relation(counter, comprehensive=True, department=None) == access.OWN_WINDOW
    assert access.window_relation(counter, comprehensive=False, department="SCJGJ") == access.OWN_WINDOW
    assert access.window_relation(counter, comprehensive=False, department="GAJ") == access.OTHER_WINDOW
    assert access.window_relation(who("person"), comprehensive=True, department=None) == access.PERSON
