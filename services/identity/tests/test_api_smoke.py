from services.identity.tests.conftest import bearer, login, register

ZHANG = "11010519491231002X"


async def test_register_login_me(identity):
    response = await register(identity, ZHANG, "13800138000")
    assert response.status_code == 201, response.text
    assert response.json() == {"subject": ZHANG, "kind": "person", "level": 1}
    tokens = await login(identity, ZHANG)
    assert tokens.status_code == 201, tokens.text
    me = await identity.get("/me", headers=bearer(tokens.json()["access_token"]))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["id_number"] == ZHANG and body["mobile"] == "138****8000" and body["level"] == 1
