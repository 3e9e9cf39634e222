"""Partners through the HTTP API: created with a key shown once, listed without secrets, rotated,
revoked and reinstated, each change published for the gateways; the access table applied."""

from __future__ import annotations

from sqlalchemy import select

from services.exchange.models import PartnerKey
from services.exchange.tests.conftest import PLATFORM_ADMIN, make_partner, officer, person, published, push, push_body


async def test_a_partner_is_made_with_one_key_shown_once_and_stored_sealed(exchange):
    key_id, secret = await make_partner(exchange)
    assert len(secret) >= 43 and key_id.startswith("pk_")
    read = await exchange.get("/partners/dept-bdcdj", headers=PLATFORM_ADMIN)
    assert read.status_code == 200
    assert read.json()["department"] == "BDCDJ" and read.json()["status"] == "active"
    assert [k["key_id"] for k in read.json()["keys"]] == [key_id]
    assert secret not in read.text
    async with exchange.app.state.sessionmaker() as session:
        stored = (await session.scalars(select(PartnerKey))).one()
    assert secret not in stored.secret_ciphertext and stored.secret_ciphertext.startswith("v1.")
    events = await published(exchange, "partner.changed")
    assert [(e["data"]["partner"], e["data"]["change"]) for e in events] == [("dept-bdcdj", "created")]
    again = await exchange.post("/partners", json={"id": "dept-bdcdj", "department": "BDCDJ", "name": "x"},
                                headers=PLATFORM_ADMIN)  # fmt: skip
    assert again.status_code == 409


async def test_rotation_revocation_and_reinstatement_publish_each_change(exchange):
    first, _ = await make_partner(exchange)
    added = await exchange.post("/partners/dept-bdcdj/keys", headers=PLATFORM_ADMIN)
    assert added.status_code == 201
    second = added.json()["key"]["key_id"]
    assert {k["key_id"]: k["status"] for k in added.json()["partner"]["keys"]} == {first: "active", second: "active"}
    revoked = await exchange.post(f"/partners/dept-bdcdj/keys/{first}/revoke", headers=PLATFORM_ADMIN)
    assert {k["key_id"]: k["status"] for k in revoked.json()["keys"]} == {first: "revoked", second: "active"}
    assert (await exchange.post(f"/partners/dept-bdcdj/keys/{first}/revoke", headers=PLATFORM_ADMIN)).status_code == 200
    gone = await exchange.post("/partners/dept-bdcdj/keys/pk_0123/revoke", headers=PLATFORM_ADMIN)
    assert gone.status_code == 404
    off = await exchange.post("/partners/dept-bdcdj/revoke", json={"reason": "系统下线"}, headers=PLATFORM_ADMIN)
    assert off.json()["status"] == "revoked" and off.json()["revoked_reason"] == "系统下线"
    on = await exchange.post("/partners/dept-bdcdj/reinstate", headers=PLATFORM_ADMIN)
    assert on.json()["status"] == "active" and on.json()["revoked_at"] is None
    changes = [e["data"]["change"] for e in await published(exchange, "partner.changed")]
    assert changes == ["created", "key_added", "key_revoked", "revoked", "reinstated"]  # repeats publish nothing


async def test_a_department_admin_administers_only_its_own_department(exchange):
    bdcdj_admin = officer("BDCDJ", "admin")
    await make_partner(exchange, headers=bdcdj_admin)
    await make_partner(exchange, "dept-scjgj", "SCJGJ")
    other = await exchange.post("/partners", json={"id": "dept-x", "department": "SCJGJ", "name": "x"},
                                headers=bdcdj_admin)  # fmt: skip
    assert other.status_code == 403
    listed = await exchange.get("/partners", headers=bdcdj_admin)
    assert [p["id"] for p in listed.json()["items"]] == ["dept-bdcdj"]
    assert (await exchange.get("/partners?department=SCJGJ", headers=bdcdj_admin)).status_code == 403
    assert (await exchange.get("/partners/dept-scjgj", headers=bdcdj_admin)).status_code == 404
    assert (await exchange.post("/partners/dept-scjgj/keys", headers=bdcdj_admin)).status_code == 404
    everything = await exchange.get("/partners", headers=PLATFORM_ADMIN)
    assert [p["id"] for p in everything.json()["items"]] == ["dept-bdcdj", "dept-scjgj"]
    # Not an admin of the department, an officer of another, a citizen: the partner is not there.
    for caller in (officer("BDCDJ", "acceptor"), officer("SCJGJ", "admin"), officer("ADMIN", "supervisor"), person()):
        assert (await exchange.get("/partners/dept-bdcdj", headers=caller)).status_code == 404
        assert (await exchange.post("/partners/dept-bdcdj/revoke", json={"reason": "x"},
                                    headers=caller)).status_code == 404  # fmt: skip
    assert (await exchange.get("/partners/dept-bdcdj")).status_code == 401


async def test_a_department_code_may_have_a_hyphen(exchange):
    _, secret = await make_partner(exchange, "dept-gaj-dc", "GAJ-DC")
    assert (await push(exchange, secret, push_body(), partner="dept-gaj-dc", department="GAJ-DC")).status_code == 200


async def test_partner_input_is_checked(exchange):
    for body, field in (
        ({"id": "Dept-X", "department": "BDCDJ", "name": "x"}, "body.id"),
        ({"id": "ab", "department": "BDCDJ", "name": "x"}, "body.id"),
        ({"id": "keys", "department": "BDCDJ", "name": "x"}, "body.id"),
        ({"id": "dept-x", "department": "bdcdj", "name": "x"}, "body.department"),
        ({"id": "dept-x", "department": "BDCDJ", "name": "a\u202eb"}, "body.name"),
        ({"id": "dept-x", "department": "BDCDJ", "name": "x", "extra": 1}, "body.extra"),
    ):
        answer = await exchange.post("/partners", json=body, headers=PLATFORM_ADMIN)
        assert answer.status_code == 422, body
        assert answer.json()["errors"][0]["field"] == field
