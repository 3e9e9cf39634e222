"""Subscriptions through the admin API: who may, what is validated, the secret shown once and
stored sealed, disabling, enabling and rotating."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import select

from kit.testing import bearer
from services.exchange.models import Delivery, Subscription
from services.exchange.secretbox import SecretBox
from services.exchange.tests.outbound_fixtures import (
    BDCDJ_ADMIN,
    PLATFORM_ADMIN,
    SECRETS_KEY,
    SWJ_ADMIN,
    TOKENS,
    accepted,
    consume,
    exchange_app,
    officer,
    subscribe,
)

URL = "https://bdc.dezhou.gov.cn/yiwang/webhooks"
BOX = SecretBox.from_setting(SECRETS_KEY, sandbox=False)


@pytest.fixture
async def exchange(database_url, nats_server):
    async with exchange_app(database_url, nats_server.url) as client:
        yield client


async def test_a_platform_admin_subscribes_any_department_and_sees_the_secret_once(exchange):
    created = await subscribe(exchange, URL, "SWJ", types=["case.accepted", "case.withdrawn"])
    assert created["id"].startswith("sub_") and created["department"] == "SWJ" and created["status"] == "active"
    assert created["event_types"] == ["case.accepted", "case.withdrawn"]
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    shown = (await exchange.get(f"/subscriptions/{created['id']}", headers=PLATFORM_ADMIN)).json()
    assert "secret" not in shown and shown["url"] == URL
    async with exchange.app.state.sessionmaker() as session:
        row = await session.get(Subscription, created["id"])
    assert secret not in row.secret_ciphertext and secret[6:] not in row.secret_ciphertext  # sealed at rest
    assert BOX.open(row.secret_ciphertext, context=row.id) == secret


async def test_a_department_admin_manages_only_its_own_department(exchange):
    own = await subscribe(exchange, URL, "BDCDJ", headers=BDCDJ_ADMIN)
    other = await subscribe(exchange, URL, "SWJ", headers=SWJ_ADMIN)
    refused = await exchange.post("/subscriptions", json={"department": "SWJ", "url": URL,
                                                          "event_types": ["case.accepted"]}, headers=BDCDJ_ADMIN)  # fmt: skip
    assert refused.status_code == 403 and refused.json()["rule"] == "relation"
    # another department's subscription is as good as absent
    for path in (f"/subscriptions/{other['id']}", f"/subscriptions/{other['id']}/disable",
                 f"/subscriptions/{other['id']}/rotate-secret"):  # fmt: skip
        method = exchange.get if path.endswith(other["id"]) else exchange.post
        assert (await method(path, headers=BDCDJ_ADMIN)).status_code == 404
    assert (await exchange.get("/subscriptions/sub_nosuchthing", headers=BDCDJ_ADMIN)).status_code == 404
    listed = (await exchange.get("/subscriptions", headers=BDCDJ_ADMIN)).json()
    assert [s["id"] for s in listed["items"]] == [own["id"]] and listed["total"] == 1
    assert (await exchange.get("/subscriptions?department=SWJ", headers=BDCDJ_ADMIN)).status_code == 403
    everything = (await exchange.get("/subscriptions", headers=PLATFORM_ADMIN)).json()
    assert {s["id"] for s in everything["items"]} == {own["id"], other["id"]}


@pytest.mark.parametrize("headers", [officer("BDCDJ", "acceptor"), officer("BDCDJ", "supervisor"),
                                     officer("ADMIN", "supervisor"), bearer(TOKENS.token())])  # fmt: skip
async def test_nobody_else_manages_subscriptions(exchange, headers):
    created = await subscribe(exchange, URL, "BDCDJ")
    body = {"department": "BDCDJ", "url": URL, "event_types": ["case.accepted"]}
    assert (await exchange.post("/subscriptions", json=body, headers=headers)).status_code == 403
    assert (await exchange.get("/subscriptions?department=BDCDJ", headers=headers)).status_code == 403
    assert (await exchange.get(f"/subscriptions/{created['id']}", headers=headers)).status_code == 404
    assert (await exchange.post(f"/subscriptions/{created['id']}/disable", headers=headers)).status_code == 404
    assert (await exchange.get("/deliveries?department=BDCDJ", headers=headers)).status_code == 403
    assert (await exchange.post("/subscriptions", json=body)).status_code == 401  # no token at all


@pytest.mark.parametrize(("body", "field", "rule"), [
    ({"url": "ftp://bdc.dezhou.gov.cn/x"}, "body.url", "scheme"),
    ({"url": "https://u:p@bdc.dezhou.gov.cn/x"}, "body.url", "userinfo"),
    ({"url": "https://bdc.dezhou.gov.cn/\ud800"}, "body.url", "no_surrogates"),
    ({"url": "https://bdc.dezhou.gov.cn/\u0007"}, "body.url", "no_control_characters"),
    ({"url": "https://bdc.dezhou.gov.cn/a b"}, "body.url", "characters"),
    ({"event_types": []}, "body.event_types", None),
    ({"event_types": ["case.approved"]}, "body.event_types.0", None),
    ({"department": "BD CDJ"}, "body.department", None),
    ({"extra": 1}, "body.extra", None),
    ({"secret": "whsec_tooshort"}, "body.secret", "webhook_secret"),
    ({"secret": "not-whsec"}, "body.secret", "webhook_secret"),
])  # fmt: skip
async def test_a_bad_subscription_is_a_problem_naming_the_field(exchange, body, field, rule):
    request = {"department": "BDCDJ", "url": URL, "event_types": ["case.accepted"], **body}
    # json.dumps escapes a lone surrogate as \\ud800, as a hostile client would send it
    response = await exchange.post("/subscriptions", content=json.dumps(request),
                                   headers={**PLATFORM_ADMIN, "content-type": "application/json"})  # fmt: skip
    assert response.status_code == 422, response.text
    errors = response.json().get("errors") or []
    assert any(e["field"] == field for e in errors), errors
    if rule:
        assert any(e["rule"] == rule for e in errors)


async def test_plain_http_only_on_a_sandbox_platform(database_url, nats_server):
    async with exchange_app(database_url, nats_server.url, sandbox=False) as client:
        body = {"department": "BDCDJ", "url": "http://bdc.dezhou.gov.cn/x", "event_types": ["case.accepted"]}
        response = await client.post("/subscriptions", json=body, headers=PLATFORM_ADMIN)
        assert response.status_code == 422 and response.json()["errors"][0]["rule"] == "scheme"
        assert (
            await client.post("/subscriptions", json={**body, "url": URL}, headers=PLATFORM_ADMIN)
        ).status_code == 201


async def test_disable_enable_and_rotate(exchange):
    created = await subscribe(exchange, URL, "BDCDJ", headers=BDCDJ_ADMIN)
    path = f"/subscriptions/{created['id']}"
    disabled = (await exchange.post(f"{path}/disable", headers=BDCDJ_ADMIN)).json()
    assert disabled["status"] == "disabled" and disabled["version"] == 2
    again = (await exchange.post(f"{path}/disable", headers=BDCDJ_ADMIN)).json()
    assert again["version"] == 2  # already so: nothing changes
    assert (await exchange.post(f"{path}/enable", headers=BDCDJ_ADMIN)).json()["status"] == "active"
    rotated = (await exchange.post(f"{path}/rotate-secret", headers=BDCDJ_ADMIN)).json()
    assert rotated["secret"] != created["secret"] and rotated["secret"].startswith("whsec_")
    assert rotated["previous_secret_until"] is not None
    async with exchange.app.state.sessionmaker() as session:
        row = (await session.execute(select(Subscription))).scalar_one()
    assert BOX.open(row.secret_ciphertext, context=row.id) == rotated["secret"]
    assert BOX.open(row.previous_secret_ciphertext, context=row.id) == created["secret"]
    assert json.loads(row.event_types) == sorted(created["event_types"])


async def test_a_webhook_secret_is_sealed_in_the_partners_box_bound_to_its_subscription(exchange):
    created = (await exchange.post("/subscriptions", json={"department": "BDCDJ", "url": URL,
               "event_types": ["case.accepted"]}, headers=BDCDJ_ADMIN)).json()  # fmt: skip
    async with exchange.app.state.sessionmaker() as session:
        row = await session.get(Subscription, created["id"])
    assert exchange.app.state.exchange.box.open(row.secret_ciphertext, context=row.id) == created["secret"]
    with pytest.raises(ValueError):  # copied onto another subscription, it does not open
        BOX.open(row.secret_ciphertext, context="sub_other")


async def test_a_department_system_may_bring_its_own_secret(exchange):
    own = "whsec_" + base64.b64encode(b"s" * 32).decode()
    body = {"department": "BDCDJ", "url": URL, "event_types": ["case.accepted"], "secret": own}
    created = (await exchange.post("/subscriptions", json=body, headers=BDCDJ_ADMIN)).json()
    assert created["secret"] == own
    async with exchange.app.state.sessionmaker() as session:
        row = await session.get(Subscription, created["id"])
    assert BOX.open(row.secret_ciphertext, context=row.id) == own


# Every route × every kind of caller: the access table as the API enforces it.
CALLERS = {
    "platform_admin": PLATFORM_ADMIN,
    "own_admin": BDCDJ_ADMIN,
    "other_admin": SWJ_ADMIN,
    "own_acceptor": officer("BDCDJ", "acceptor"),
    "person": bearer(TOKENS.token()),
}
ALLOWED = {"platform_admin", "own_admin"}


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_every_route_answers_as_the_table_says(exchange, caller):
    sub = (await subscribe(exchange, URL, "BDCDJ"))["id"]
    await consume(exchange, accepted("C1"))
    async with exchange.app.state.sessionmaker() as session:
        delivery = (await session.execute(select(Delivery.id))).scalar_one()
    async with exchange.app.state.sessionmaker() as session, session.begin():
        (await session.get(Delivery, delivery)).status = "dead"
    body = {"department": "BDCDJ", "url": URL, "event_types": ["case.accepted"]}
    routes = [  # (method, path, json, answer when allowed, answer when refused)
        ("POST", "/subscriptions", body, 201, 403),
        ("GET", "/subscriptions?department=BDCDJ", None, 200, 403),
        ("GET", f"/subscriptions/{sub}", None, 200, 404),
        ("POST", f"/subscriptions/{sub}/disable", None, 200, 404),
        ("POST", f"/subscriptions/{sub}/enable", None, 200, 404),
        ("POST", f"/subscriptions/{sub}/rotate-secret", None, 200, 404),
        ("GET", "/deliveries?department=BDCDJ", None, 200, 403),
        ("GET", f"/deliveries/{delivery}", None, 200, 404),
        ("POST", f"/deliveries/{delivery}/replay", None, 200, 404),
        ("POST", f"/subscriptions/{sub}/replay", None, 200, 404),  # after the one above: nothing dead left
    ]
    for method, path, json_body, allowed, refused in routes:
        response = await exchange.request(method, path, json=json_body, headers=CALLERS[caller])
        expected = allowed if caller in ALLOWED else refused
        assert response.status_code == expected, (method, path, caller, response.text)
