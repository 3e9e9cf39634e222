"""The gateway's key source: ``GET /partners/keys`` answers only a request signed with the
gateway's service key, with every active partner's active secrets and its one path."""

from __future__ import annotations

import time

from kit.signing import new_nonce, signed_headers
from services.exchange.tests.conftest import GATEWAY_SECRET, PLATFORM_ADMIN, make_partner


def gateway_headers(secret: str = GATEWAY_SECRET, key_id: str = "gateway") -> dict[str, str]:
    return signed_headers(key_id, secret, "GET", "/partners/keys", b"", nonce=new_nonce(), timestamp=int(time.time()))


async def test_the_gateway_reads_active_keys_and_nobody_else_does(exchange):
    first_id, first = await make_partner(exchange)
    second = (await exchange.post("/partners/dept-bdcdj/keys", headers=PLATFORM_ADMIN)).json()["key"]["secret"]
    _, other = await make_partner(exchange, "dept-scjgj", "SCJGJ")
    answer = await exchange.get("/partners/keys", headers=gateway_headers())
    assert answer.status_code == 200
    assert answer.json() == {
        "dept-bdcdj": {"secrets": [first, second], "paths": ["/api/v1/departments/BDCDJ/events"]},
        "dept-scjgj": {"secrets": [other], "paths": ["/api/v1/departments/SCJGJ/events"]},
    }
    await exchange.post(f"/partners/dept-bdcdj/keys/{first_id}/revoke", headers=PLATFORM_ADMIN)
    await exchange.post("/partners/dept-scjgj/revoke", json={"reason": "停用"}, headers=PLATFORM_ADMIN)
    answer = await exchange.get("/partners/keys", headers=gateway_headers())
    assert answer.json() == {"dept-bdcdj": {"secrets": [second], "paths": ["/api/v1/departments/BDCDJ/events"]}}
    for headers in ({}, PLATFORM_ADMIN, gateway_headers("wrong-secret"), gateway_headers(GATEWAY_SECRET, "caseflow")):
        refused = await exchange.get("/partners/keys", headers=headers)
        assert refused.status_code == 401, headers
        assert first not in refused.text and second not in refused.text
