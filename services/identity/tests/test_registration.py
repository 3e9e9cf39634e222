"""Registration through the HTTP API: field-level problems, duplicates, events in the outbox."""

import json

import pytest
from sqlalchemy import func, select

from services.identity.models import Person, outbox
from services.identity.tests.conftest import register, sms_code

ZHANG = "11010519491231002X"


async def count(client, model_or_table) -> int:
    async with client.app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(model_or_table))).scalar_one()


@pytest.mark.parametrize(
    ("id_number", "rule"),
    [("110105194912310021", "checksum"), ("11010519491231002", "length"), ("110105194902300020", "birth_date")],
)
async def test_invalid_id_number_is_a_field_problem_and_writes_nothing(identity, id_number, rule):
    response = await register(identity, id_number, "13800138000")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert {"field": "body.id_number", "rule": rule} in [
        {k: e[k] for k in ("field", "rule")} for e in problem["errors"]
    ]
    assert await count(identity, Person) == 0


async def test_bad_mobile_and_weak_password_name_their_fields(identity):
    response = await identity.post(
        "/register",
        json={"id_number": ZHANG, "name": "张三", "mobile": "2380013800", "password": "short", "sms_code": "12345"},
    )
    assert response.status_code == 422
    fields = {e["field"]: e["rule"] for e in response.json()["errors"]}
    assert fields == {
        "body.mobile": "mobile_format",
        "body.password": "min_length",
        "body.sms_code": "sms_code_format",
    }


async def test_wrong_sms_code_refused(identity):
    await identity.post("/sms-codes", json={"mobile": "13800138000", "purpose": "register"})
    code = await sms_code(identity, "13800138000")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    response = await identity.post(
        "/register",
        json={"id_number": ZHANG, "name": "张三", "mobile": "13800138000", "password": "secret123", "sms_code": wrong},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "sms_code",
        "rule": "sms_code_mismatch",
        "message": "the code does not match",
    }
    assert await count(identity, Person) == 0


async def test_duplicate_registration_409_with_nothing_written(identity):
    assert (await register(identity, ZHANG, "13800138000")).status_code == 201
    persons, events = await count(identity, Person), await count(identity, outbox.table)

    again = await register(identity, ZHANG, "13900139000")
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "id_number"
    same_mobile = await register(identity, "440524188001010014", "13800138000")
    assert same_mobile.status_code == 409
    assert same_mobile.json()["errors"][0]["field"] == "mobile"
    assert (await count(identity, Person), await count(identity, outbox.table)) == (persons, events)


async def test_registration_writes_its_event_in_the_same_transaction(identity):
    await register(identity, ZHANG, "13800138000")
    async with identity.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.event_type, outbox.table.c.payload))).all()
    assert [r.event_type for r in rows] == ["yiwang.identity.person.registered.v1"]
    event = json.loads(rows[0].payload)
    assert event["specversion"] == "1.0" and event["subject"] == ZHANG and event["data"]["level"] == 1
    assert event["traceparent"].startswith("00-")


async def test_registered_event_reaches_jetstream(identity):
    await register(identity, ZHANG, "13800138000")
    relay = identity.app.state.relay

    async def published():
        return relay.published_total >= 1

    from kit.tests.test_backbone import until

    await until(published)
    js = await identity.app.state.bus.jetstream()
    last = await js.get_last_msg("IDENTITY", "identity.person.registered")
    assert json.loads(last.data)["subject"] == ZHANG


@pytest.mark.identity_settings(sms_resend_interval_seconds=60)
async def test_sms_code_resend_is_rate_limited(identity):
    first = await identity.post("/sms-codes", json={"mobile": "13800138000", "purpose": "register"})
    second = await identity.post("/sms-codes", json={"mobile": "13800138000", "purpose": "register"})
    assert first.status_code == 202
    assert second.status_code == 429 and int(second.headers["retry-after"]) > 0
