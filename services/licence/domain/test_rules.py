"""Pure rules: the status table, validity, numbers, data picking, holder codes, internal signatures."""

from __future__ import annotations

from datetime import date

import pytest

from kit.errors import Problem, RuleViolation
from services.licence.domain import rules, states
from services.licence.domain.holders import validate_holder


@pytest.mark.parametrize(("status", "action"), [(s, a) for s in states.STATUSES for a in states.ACTIONS])
def test_status_table_whole(status, action):
    expected = states.TRANSITIONS.get((status, action))
    if expected is None:
        with pytest.raises(Problem) as refused:
            states.next_status(status, action)
        assert refused.value.status == 409 and refused.value.extra["rule"] == "status"
    else:
        assert states.next_status(status, action) == expected
    assert not any(states.TRANSITIONS.get((final, action)) for final in states.FINAL)


def test_validity_ends_the_day_before_the_anniversary():
    assert rules.valid_until(date(2026, 11, 2), 5) == date(2031, 11, 1)
    assert rules.valid_until(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert rules.valid_until(date(2024, 2, 29), 4) == date(2028, 2, 28)
    assert rules.valid_until(date(2026, 1, 1), None) is None


def test_numbers():
    common = dict(division_code="371400", year=2026, serial=42)
    assert rules.licence_number(rule="serial", holder="x", holder_kind="enterprise", **common) == "37140020260000042"
    assert rules.licence_number(rule="holder_code", holder="91350100M000100Y43", holder_kind="enterprise",
                                **common) == "91350100M000100Y43"  # fmt: skip
    assert rules.licence_number(rule="holder_code", holder="11010519491231002X", holder_kind="person",
                                **common) == "37140020260000042"  # fmt: skip
    with pytest.raises(ValueError):
        rules.licence_number(rule="serial", holder="x", holder_kind="person", division_code="1", year=2026,
                             serial=10**7)  # fmt: skip


def test_data_is_picked_by_schema_and_checked():
    schema = {"type": "object", "properties": {"address": {"type": "string", "maxLength": 5}}, "required": ["address"],
              "additionalProperties": False}  # fmt: skip
    assert rules.pick_data(schema, {"address": "德州", "mobile": "13800138000"}) == {"address": "德州"}
    import json

    text = json.dumps(schema)
    assert rules.data_errors(text, {"address": "德州"}) == []
    assert [e[:2] for e in rules.data_errors(text, {})] == [("data.address", "required")]
    assert [e[:2] for e in rules.data_errors(text, {"address": "x" * 6})] == [("data.address", "maxLength")]
    assert [e[:2] for e in rules.data_errors(text, {"address": "a", "b": 1})] == [("data.b", "known_field")]
    # printed on the licence: one line of plain text
    assert [e[:2] for e in rules.data_errors(text, {"address": "德\n州"})] == [("data.address", "single_line")]
    assert [e[:2] for e in rules.data_errors(text, {"address": "德\u202e州"})] == [
        ("data.address", "no_control_characters")
    ]


def test_holder_codes():
    assert validate_holder("11010519491231002x") == ("11010519491231002X", "111")
    assert validate_holder("91350100M000100Y43") == ("91350100M000100Y43", "001")
    with pytest.raises(RuleViolation) as wrong:
        validate_holder("110105194912310037")
    assert wrong.value.rule == "checksum" and "GB 11643" in wrong.value.message
    with pytest.raises(RuleViolation) as wrong_type:
        validate_holder("11010519491231002X", "002")
    assert wrong_type.value.rule == "code_type"
