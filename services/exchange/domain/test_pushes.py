"""Push bodies judged before anything is stored: the field and the rule of every refusal."""

from __future__ import annotations

import json

import pytest

from kit.errors import Problem
from services.exchange.domain.pushes import parse_push

GOOD = {"event_id": "ev-1", "type": "case.decision", "occurred_at": "2026-12-01T10:00:00+08:00",
        "data": {"case_no": "CF20261201000001", "action": "accept"}}  # fmt: skip


def refusal(body: bytes) -> tuple[int, str, str]:
    with pytest.raises(Problem) as caught:
        parse_push(body, max_depth=32)
    error = (caught.value.errors or [{}])[0]
    return caught.value.status, error.get("field", ""), error.get("rule", "")


def with_(**changes) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def test_a_good_push_parses():
    push = parse_push(json.dumps(GOOD).encode(), max_depth=32)
    assert push.type == "case.decision" and push.data.case_no == "CF20261201000001"


@pytest.mark.parametrize(("body", "expected"), [
    (with_(type="case.teleported"), (422, "body.type", "unknown_type")),
    (with_(type=7), (422, "body.type", "unknown_type")),
    (json.dumps({k: v for k, v in GOOD.items() if k != "type"}).encode(), (422, "body.type", "missing")),
    (with_(data={"case_no": "CF 1", "action": "accept"}), (422, "body.data.case_no", "string_pattern_mismatch")),
    (with_(data={"action": "accept"}), (422, "body.data.case_no", "missing")),
    (with_(data={"case_no": "CF1", "action": "accept", "extra": 1}), (422, "body.data.extra", "extra_forbidden")),
    (with_(occurred_at="2026-12-01T10:00:00"), (422, "body.occurred_at", "timezone_aware")),
    (with_(event_id="a b"), (422, "body.event_id", "string_pattern_mismatch")),
    (b"[1, 2]", (422, "body", "model_type")),
    (b"not json", (422, "body", "json_invalid")),
    (with_(event_id="\ud800"), (422, "body.event_id", "no_surrogates")),
    (with_(event_id="a\u0007b"), (422, "body.event_id", "no_control_characters")),
    (b'{"event_id": 1' + b"0" * 400 + b"}", (422, "body.event_id", "int64_range")),
    (b"[" * 100 + b"]" * 100, (400, "body", "max_depth")),
])  # fmt: skip
def test_refusals_name_the_field_and_the_rule(body, expected):
    status, field, rule = refusal(body)
    assert (status, rule) == (expected[0], expected[2])
    assert field.startswith(expected[1])
