"""kit.responses.json_answer: the bytes FastAPI's own JSON would give, plain values only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from kit.responses import json_answer

PLAIN = {
    "case_no": "SCJG-371400-20261201-000001-X",
    "name": '个体工商户设立登记 \u2028 "quoted" \\ \t\n',
    "emoji": "😀",
    "numbers": [0, -1, 2**63 - 1, -(2**63), 1.5, 12345678.125, 0.1],
    "flags": [True, False, None],
    "nested": {"items": [{"a": {}}, []], "": "empty key"},
}


def test_plain_values_are_the_bytes_json_dumps_gives_and_parse_back_equal():
    response = json_answer(PLAIN, status_code=201, headers={"ETag": '"3"'})
    assert response.status_code == 201 and response.headers["etag"] == '"3"'
    assert response.media_type == "application/json"
    assert json.loads(response.body) == PLAIN
    expected = json.dumps(PLAIN, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    assert response.body == expected


def test_floats_read_back_as_the_same_number():  # 1e-7 is written 1e-7 where json writes 1e-07: both JSON
    floats = [1e-7, 2.5e300, -0.0, 1 / 3, 5e-324]
    assert json.loads(json_answer(floats).body) == floats


class _Text(str):
    pass


@dataclass
class _Thing:
    a: int


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 1, tzinfo=UTC),
        date(2026, 12, 1),
        Decimal("1.5"),
        _Text("x"),
        _Thing(1),
        2**64,
        {1: "int key"},
    ],
)
def test_a_value_json_would_not_write_as_given_is_refused(value):
    with pytest.raises(TypeError):
        json_answer({"value": value})
