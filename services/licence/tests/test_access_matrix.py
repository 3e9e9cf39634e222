"""The access table (domain/access.py) walked through HTTP for every licence action and actor: an
allowed cell succeeds, a refused one gets the table's status and changes nothing."""

from __future__ import annotations

import pytest

from services.licence.domain import access
from services.licence.tests.conftest import LI_SI, ZHANG_SAN, bearer, enterprise, issue, person, token


def _officer(department: str, role: str) -> dict[str, str]:
    return bearer(token(f"officer:{department.lower()}.{role}", kind="officer", roles=(role,), department=department))


ACTORS: dict[str, tuple[dict[str, str], str, tuple[str, ...]]] = {
    "holder": (enterprise(), access.HOLDER, ()),
    "agent": (enterprise(actor=LI_SI, scope="licence"), access.AGENT, ()),
    "agent_outside": (enterprise(actor=LI_SI, scope="caseflow"), access.AGENT_OUTSIDE_SCOPE, ()),
    "stranger": (person(ZHANG_SAN), access.NONE, ()),
}
for _department, _relation in (("SCJGJ", access.ISSUER_OFFICER), ("BDCDJ", access.NONE)):
    for _role in access.OFFICER_ROLES:
        ACTORS[f"{_department}.{_role}"] = (_officer(_department, _role), _relation, (_role,))

CALLS = {  # action → (method, path suffix, body)
    "licence.read": ("GET", "", None),
    "licence.access_log": ("GET", "/access-log", None),
    "licence.qr": ("GET", "/qr", None),
    "licence.suspend": ("POST", "/suspend", {"reason": "检查"}),
    "licence.revoke": ("POST", "/revoke", {"reason": "吊销"}),
}


@pytest.mark.parametrize("action", sorted(CALLS))
async def test_licence_actions_for_every_actor(licence, action):
    method, suffix, body = CALLS[action]
    for name, (headers, relation, roles) in ACTORS.items():
        target = await issue(licence)
        response = await licence.request(method, f"/licences/{target['identifier']}{suffix}", json=body,
                                         headers=headers)  # fmt: skip
        decision = access.decide(action, relation, roles)
        expected = 200 if decision.allowed else decision.status
        assert response.status_code == expected, (action, name, response.text)
        if not decision.allowed:
            after = await licence.get(f"/licences/{target['identifier']}", headers=enterprise())
            assert after.json()["status"] == "valid"


async def test_wallet_and_issue_for_every_actor(licence):
    for name, (headers, relation, roles) in ACTORS.items():
        wallet = await licence.get("/licences", headers=headers)
        own = access.wallet_relation(_principal_of(headers, relation))
        assert (wallet.status_code == 200) == access.permitted("wallet.list", own, roles), name
        issued = await licence.post("/licences", headers=headers, json={
            "licence_type": "food_business_licence", "holder": ZHANG_SAN, "holder_name": "张三",
            "data": {"address": "德州"}})  # fmt: skip
        relation_to_type = relation if relation == access.ISSUER_OFFICER else access.NONE
        allowed = access.permitted("licence.issue", relation_to_type, roles)
        assert issued.status_code == (201 if allowed else 403), (name, issued.text)


def _principal_of(headers, relation):
    import jwt

    from kit.auth import Principal

    claims = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
    return Principal.from_claims(claims)
