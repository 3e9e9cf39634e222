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


def _stdnum_id_check(number: str, today) -> str | None:
    """The module's rule spelled with python-stdnum calls only (as it was before the fast paths)."""
    from stdnum import numdb
    from stdnum.cn import ric
    from stdnum.exceptions import InvalidComponent, ValidationError

    if ric.calc_check_digit(number) != number[-1]:
        return None
    try:
        if ric.get_birth_date(number) > today:
            return None
    except ValidationError:
        return None
    if number[:6] in {"810000", "820000", "830000"}:
        return number
    try:
        ric.get_birth_place(number)
    except InvalidComponent:
        if not any(props for _, props in numdb.get("cn/loc").info(number[:6])):
            return None
    return number


def test_holder_checks_agree_with_stdnum():
    """validate_holder's faster paths (no look-alike folding for plain ASCII, the region lookup
    cached, the GB 32100 check computed here) say what python-stdnum says, number by number."""
    import datetime as dt
    import random

    from stdnum.cn import ric, uscc

    from kit.errors import RuleViolation

    rng = random.Random(11643)
    today = dt.date(2026, 11, 2)
    regions = ["110105", "371402", "371423", "810000", "999999", "110100", "320102", "440305"]
    for _ in range(3000):
        born = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(35_000))
        body = f"{rng.choice(regions)}{born:%Y%m%d}{rng.randrange(1000):03d}"
        number = body + (ric.calc_check_digit(body + "0") if rng.random() < 0.8 else rng.choice("0123456789X"))
        try:
            ours = validate_holder(number, "111", today=today)[0]
        except RuleViolation:
            ours = None
        assert ours == _stdnum_id_check(number, today), number
        chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
        code = "91" + f"{rng.randrange(10**6):06d}" + "".join(rng.choices(chars, k=9))
        code += uscc.calc_check_digit(code + "0") if rng.random() < 0.8 else rng.choice(chars)
        try:
            ours = validate_holder(code, "001")[0]
        except RuleViolation:
            ours = None
        assert ours == (code if uscc.is_valid(code) else None), code


def test_fast_data_check_agrees_with_jsonschema():
    """data_errors says "conforms" by a quick path for the catalogue's flat schemas; on every
    document jsonschema refuses, the errors are jsonschema's own (compared here value by value),
    and text that cannot be printed on one line is refused on either path."""
    import json
    import random

    from jsonschema import Draft202012Validator

    from kit.text import text_problem
    from services.licence.seed_data import LICENCE_TYPES

    rng = random.Random(2020)
    values = ["", "x", "德州" * 30, "a" * 201, "2026-13-01", "2026-01-31", 0, -1, 0.5, 10_000_001, True, None, [],
              {"a": 1}, 1.0e7, "\u200b"]  # fmt: skip
    for info in LICENCE_TYPES:
        schema = info["data_schema"]
        schema_json = json.dumps(schema)
        names = [*schema["properties"], "extra"]
        validator = Draft202012Validator(schema)
        for _ in range(400):
            data = {name: rng.choice(values) for name in rng.sample(names, rng.randint(0, len(names)))}
            printable = not any(isinstance(v, str) and text_problem(v, multiline=False) for v in data.values())
            assert (rules.data_errors(schema_json, data) == []) == (validator.is_valid(data) and printable), data
    assert rules._fast_check(json.dumps({"type": "object", "properties": {"a": {"enum": [1]}}})) is None
