"""Signed pushes through the HTTP API: re-verified by exchange, judged, stored once, forwarded in
the same transaction; every refusal stores nothing."""

from __future__ import annotations

import asyncio
import json
import time

from sqlalchemy import func, select

from kit.signing import new_nonce, signed_headers
from services.exchange.models import InboundPush
from services.exchange.tests.conftest import PLATFORM_ADMIN, make_partner, published, push, push_body

FORWARDED = "department.case_decision"


async def stored(client) -> int:
    async with client.app.state.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(InboundPush))


async def test_a_created_partner_pushes_and_the_push_is_forwarded(exchange):
    key_id, secret = await make_partner(exchange)
    answer = await push(exchange, secret, push_body())
    assert answer.status_code == 200, answer.text
    receipt = answer.json()
    assert receipt["receipt_id"].startswith("rcp_") and receipt["duplicate"] is False
    assert (receipt["department"], receipt["partner"], receipt["event_id"], receipt["type"]) == (
        "BDCDJ",
        "dept-bdcdj",
        "ev-1",
        "case.decision",
    )
    events = await published(exchange, FORWARDED)
    assert len(events) == 1
    assert events[0]["data"]["push_id"] == receipt["receipt_id"]
    assert events[0]["data"]["data"] == {"case_no": "CF20261201000001", "action": "accept", "reason": None,
                                         "items": None}  # fmt: skip
    listed = await exchange.get("/pushes?department=BDCDJ", headers=PLATFORM_ADMIN)
    assert listed.json()["total"] == 1
    item = listed.json()["items"][0]
    assert (item["status"], item["key_id"], item["case_no"]) == ("received", key_id, "CF20261201000001")
    one = await exchange.get(f"/pushes/{receipt['receipt_id']}", headers=PLATFORM_ADMIN)
    assert one.json()["body"] == push_body()
    partner = await exchange.get("/partners/dept-bdcdj", headers=PLATFORM_ADMIN)
    assert partner.json()["keys"][0]["last_used_at"] is not None


async def test_a_replayed_event_id_is_a_duplicate_receipt_and_nothing_twice(exchange):
    _, secret = await make_partner(exchange)
    first = (await push(exchange, secret, push_body())).json()
    again = await push(exchange, secret, push_body())
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert {k: v for k, v in again.json().items() if k not in {"duplicate", "signature"}} == {
        k: v for k, v in first.items() if k not in {"duplicate", "signature"}
    }
    assert await stored(exchange) == 1
    assert len(await published(exchange, FORWARDED)) == 1
    reused = await push(exchange, secret, push_body(data={"case_no": "CF20261201000001", "action": "reject",
                                                          "reason": "材料不全"}))  # fmt: skip
    assert reused.status_code == 409
    assert reused.json()["type"].endswith("/event-id-reused") and reused.json()["receipt_id"] == first["receipt_id"]
    assert await stored(exchange) == 1 and len(await published(exchange, FORWARDED)) == 1


async def test_rotation_both_keys_sign_then_the_revoked_one_is_refused(exchange):
    first_id, first = await make_partner(exchange)
    second = (await exchange.post("/partners/dept-bdcdj/keys", headers=PLATFORM_ADMIN)).json()["key"]["secret"]
    assert (await push(exchange, first, push_body("ev-1"))).status_code == 200
    assert (await push(exchange, second, push_body("ev-2"))).status_code == 200
    await exchange.post(f"/partners/dept-bdcdj/keys/{first_id}/revoke", headers=PLATFORM_ADMIN)
    refused = await push(exchange, first, push_body("ev-3"))
    assert refused.status_code == 401 and refused.json()["reason"] == "bad-signature"
    assert (await push(exchange, second, push_body("ev-4"))).status_code == 200
    assert await stored(exchange) == 3


async def test_a_revoked_partner_is_refused_at_once_and_again_after_reinstatement_pushes(exchange):
    _, secret = await make_partner(exchange)
    await exchange.post("/partners/dept-bdcdj/revoke", json={"reason": "密钥泄露"}, headers=PLATFORM_ADMIN)
    refused = await push(exchange, secret, push_body())
    assert refused.status_code == 401 and refused.json()["reason"] == "unknown-partner"
    assert await stored(exchange) == 0
    await exchange.post("/partners/dept-bdcdj/reinstate", headers=PLATFORM_ADMIN)
    assert (await push(exchange, secret, push_body())).status_code == 200


async def test_a_partner_pushing_for_another_department_is_refused_and_nothing_stored(exchange):
    _, secret = await make_partner(exchange)
    answer = await push(exchange, secret, push_body(), department="SCJGJ")
    assert answer.status_code == 403
    assert answer.json()["rule"] == "wrong_department"
    assert await stored(exchange) == 0 and await published(exchange, FORWARDED) == []


async def test_forged_stale_and_unsigned_pushes_are_refused(exchange):
    _, secret = await make_partner(exchange)
    forged = await push(exchange, "not-the-secret", push_body())
    assert (forged.status_code, forged.json()["reason"]) == (401, "bad-signature")
    stale = await push(exchange, secret, push_body(), timestamp=int(time.time()) - 301)
    assert (stale.status_code, stale.json()["reason"]) == (401, "stale")
    ahead = await push(exchange, secret, push_body(), timestamp=int(time.time()) + 301)
    assert (ahead.status_code, ahead.json()["reason"]) == (401, "stale")
    # Signed over exchange's own path instead of the gateway's: not what the partner sent the gateway.
    own_path = await push(exchange, secret, push_body(), sign_path="/departments/BDCDJ/events")
    assert own_path.status_code == 401
    unsigned = await exchange.post("/departments/BDCDJ/events", json=push_body())
    assert (unsigned.status_code, unsigned.json()["reason"]) == (401, "missing")
    unknown = await push(exchange, secret, push_body(), partner="dept-nobody")
    assert (unknown.status_code, unknown.json()["reason"]) == (401, "unknown-partner")
    # The body changed after signing.
    raw = json.dumps(push_body()).encode()
    headers = signed_headers("dept-bdcdj", secret, "POST", "/api/v1/departments/BDCDJ/events", raw,
                             nonce=new_nonce(), timestamp=int(time.time()))  # fmt: skip
    tampered = await exchange.post("/departments/BDCDJ/events", content=raw.replace(b"accept", b"reject"),
                                   headers=headers)  # fmt: skip
    assert tampered.status_code == 401
    assert await stored(exchange) == 0


async def test_schema_failures_name_the_field_and_store_nothing(exchange):
    _, secret = await make_partner(exchange)
    cases = [
        (push_body(type="case.teleported"), "body.type", "unknown_type"),
        (push_body(data={"case_no": "CF 1", "action": "accept"}), "body.data.case_no", "string_pattern_mismatch"),
        (push_body(data={"action": "accept"}), "body.data.case_no", "missing"),
        (push_body(type="licence.issued"), "body.data.licence_type", "missing"),
        (push_body(occurred_at="yesterday"), "body.occurred_at", "datetime_from_date_parsing"),
    ]
    for body, field, rule in cases:
        answer = await push(exchange, secret, body)
        assert answer.status_code == 422, (body, answer.text)
        fields = {(e["field"], e["rule"]) for e in answer.json()["errors"]}
        assert (field, rule) in fields, answer.json()["errors"]
    assert await stored(exchange) == 0 and await published(exchange, FORWARDED) == []


async def test_hostile_bodies_are_problems_never_500(exchange):
    _, secret = await make_partner(exchange)
    hostile = [
        b'{"event_id": "\\ud800", "type": "case.decision"}',
        b'{"event_id": "a\\u0000b", "type": "case.decision"}',
        b'{"event_id": 1' + b"9" * 5000 + b"}",
        b'{"event_id": 1e999}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a": ' * 200 + b"1" + b"}" * 200,
        '{"event_id": "ev"}'.encode("utf-16"),
        b"\xff\xfe\x00",
        b"",
        b'{"event_id": "' + b"x" * (1024 * 1024) + b'"}',
        json.dumps(push_body(data={"case_no": "CF1", "action": "reject", "reason": "x" * 100_000})).encode(),
    ]
    for body in hostile:
        answer = await push(exchange, secret, body)
        assert 400 <= answer.status_code < 500, (body[:40], answer.status_code, answer.text[:200])
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert await stored(exchange) == 0


async def test_twins_racing_with_one_event_id_store_one_push(exchange):
    _, secret = await make_partner(exchange)
    answers = await asyncio.gather(*(push(exchange, secret, push_body("ev-twin")) for _ in range(6)))
    assert {a.status_code for a in answers} == {200}
    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 5
    assert len({a.json()["receipt_id"] for a in answers}) == 1
    assert await stored(exchange) == 1 and len(await published(exchange, FORWARDED)) == 1
