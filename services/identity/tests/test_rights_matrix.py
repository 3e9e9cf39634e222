"""Walks every cell of domain/rights.py's table through the HTTP API: each allowed cell does what
it says, each refused cell answers 403 and changes nothing."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from services.identity.context import now
from services.identity.domain import rights
from services.identity.models import Officer, Person
from services.identity.officers import create_officer
from services.identity.schemas import CreateOfficer
from services.identity.tests.conftest import bearer, login, register

PASSWORD = "pass-2026-x"
OWN = "SCJGJ"  # the department every non-platform actor sits in
# Each actor role of the table, as a real account: (login, department, roles).
ACTORS = {
    rights.PLATFORM_ADMIN: ("p.admin", "ADMIN", ["admin"]),
    rights.DEPARTMENT_ADMIN: ("d.admin", OWN, ["admin"]),
    "supervisor": ("d.supervisor", OWN, ["supervisor"]),
    "acceptor": ("d.acceptor", OWN, ["acceptor"]),
    "reviewer": ("d.reviewer", OWN, ["reviewer"]),
    "decider": ("d.decider", OWN, ["decider"]),
    "counter": ("d.counter", OWN, ["counter"]),
}
CITIZEN = "11010519491231002X"
OFFICER_RELATIONS = (rights.SAME_DEPARTMENT, rights.OTHER_DEPARTMENT, rights.PLATFORM)
_serial = itertools.count()


def target_department(actor_role: str, relation: str) -> str | None:
    """The department that puts an officer in ``relation`` to the actor; None if unreachable."""
    if (actor_role, relation) in rights.UNREACHABLE:
        return None
    actor_department = ACTORS[actor_role][1] if actor_role in ACTORS else None
    department = {
        rights.SAME_DEPARTMENT: actor_department,
        rights.OTHER_DEPARTMENT: "GAJ",
        rights.PLATFORM: "ADMIN",
    }[relation]
    assert department is not None and rights.relation_to_department(actor_department, department) == relation
    return department


@pytest.fixture
async def actors(identity):
    """A token per actor role of the table (officers log in through the API, so does a citizen)."""
    async with identity.app.state.sessionmaker() as session, session.begin():
        for login_name, department, roles in ACTORS.values():
            body = CreateOfficer(login=login_name, name="测试", department=department, roles=roles, password=PASSWORD)
            await create_officer(session, identity.app.state.identity.passwords, body, created_by="test")
    tokens = {}
    for role, (login_name, _, _) in ACTORS.items():
        response = await identity.post(
            "/sessions", json={"method": "officer", "login": login_name, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        tokens[role] = response.json()["access_token"]
    assert (await register(identity, CITIZEN, "13800138000")).status_code == 201
    tokens["person"] = (await login(identity, CITIZEN)).json()["access_token"]
    assert set(tokens) == set(rights.ACTOR_ROLES)
    return identity, tokens


async def officer_row(client, login_name: str) -> Officer | None:
    async with client.app.state.sessionmaker() as session:
        return (await session.execute(select(Officer).where(Officer.login == login_name))).scalar_one_or_none()


async def make_target(client, department: str, roles: list[str]) -> str:
    login_name = f"target.{next(_serial)}"
    async with client.app.state.sessionmaker() as session, session.begin():
        body = CreateOfficer(login=login_name, name="对象", department=department, roles=roles, password=PASSWORD)
        await create_officer(session, client.app.state.identity.passwords, body, created_by="test")
    return login_name


def expectation(action: str, actor_role: str, relation: str, held_role: str) -> bool:
    # Managing an officer also needs the right to grant the role they hold (acceptor here: the
    # table allows granting it exactly where it allows managing, see domain/test_rights.py).
    return rights.allowed(action, actor_role, relation) and rights.allowed(
        rights.GRANT[held_role], actor_role, relation
    )


async def walk_officer_cell(client, token: str, action: str, actor_role: str, relation: str) -> tuple[bool, bool]:
    """(expected, what the API did) for one cell; asserts that a refusal changed nothing."""
    department = target_department(actor_role, relation)
    assert department is not None
    headers = bearer(token)
    if action == "create_officer" or action.startswith("grant_"):
        role = "acceptor" if action == "create_officer" else action.removeprefix("grant_")
        expected = expectation("create_officer", actor_role, relation, role)
        login_name = f"new.{next(_serial)}"
        body = {"login": login_name, "name": "新人", "department": department, "roles": [role], "password": PASSWORD}
        response = await client.post("/officers", json=body, headers=headers)
        row = await officer_row(client, login_name)
        if response.status_code == 201:
            assert row is not None and row.department == department and row.roles == role
            return expected, True
        assert response.status_code == 403, response.text
        assert row is None, "a refused creation wrote an officer"
        return expected, False
    target = await make_target(client, department, ["acceptor"])
    expected = expectation(action, actor_role, relation, "acceptor")
    if action == "change_officer":
        response = await client.patch(f"/officers/{target}", json={"name": "改名"}, headers=headers)
        row = await officer_row(client, target)
        if response.status_code == 200:
            assert row.name == "改名"
            return expected, True
        assert response.status_code == 403, response.text
        assert row.name == "对象" and row.changed_at is None, "a refused change changed the officer"
        return expected, False
    assert action == "disable_officer"
    response = await client.delete(f"/officers/{target}", headers=headers)
    row = await officer_row(client, target)
    if response.status_code == 200:
        assert row.disabled_at is not None and response.json()["disabled"] is True
        return expected, True
    assert response.status_code == 403, response.text
    assert row.disabled_at is None, "a refused disable disabled the officer"
    return expected, False


@pytest.mark.parametrize("action", rights.OFFICER_ACTIONS)
async def test_every_cell_of_an_officer_action(actors, action):
    client, tokens = actors
    mismatches = []
    walked = 0
    for actor_role in rights.ACTOR_ROLES:
        for relation in OFFICER_RELATIONS:
            if (actor_role, relation) in rights.UNREACHABLE:
                assert not rights.allowed(action, actor_role, relation)
                continue
            expected, done = await walk_officer_cell(client, tokens[actor_role], action, actor_role, relation)
            walked += 1
            if expected != done:
                mismatches.append((action, actor_role, relation, "expected", expected, "got", done))
        # an officer action is never about a person
        assert not rights.allowed(action, actor_role, rights.PERSON)
    assert walked == len(rights.ACTOR_ROLES) * len(OFFICER_RELATIONS) - len(rights.UNREACHABLE)
    assert mismatches == []


def test_the_table_is_walked_whole():
    assert set(rights.OFFICER_ACTIONS) | set(rights.PERSON_ACTIONS) | set(rights.KIOSK_ACTIONS) == set(rights.ACTIONS)


def fresh_id_number(serial: int) -> str:
    from stdnum.cn import ric

    body = f"37140219900101{serial:03d}"
    return body + ric.calc_check_digit(body + "0")


@pytest.mark.parametrize("action", rights.PERSON_ACTIONS)
async def test_every_cell_of_a_person_action(actors, action):
    """counter_verification raises a known person to L4; counter_session makes a token for a
    person (made known if new). Refused: 403, the person unchanged (or not made)."""
    client, tokens = actors
    mismatches = []
    for number, actor_role in enumerate(rights.ACTOR_ROLES):
        for relation in OFFICER_RELATIONS:
            assert not rights.allowed(action, actor_role, relation)
        # a fresh person for each actor, so an allowed cell cannot hide a refused one
        id_number = fresh_id_number(100 * rights.PERSON_ACTIONS.index(action) + number)
        if action == "counter_verification":
            async with client.app.state.sessionmaker() as session, session.begin():
                session.add(
                    Person(
                        id_number=id_number, name="某人", mobile=f"1361111{number:04d}", password_hash="x",
                        level=1, level_source="registration", created_at=now(),
                    )
                )  # fmt: skip
            response = await client.post(
                f"/persons/{id_number}/counter-verification", headers=bearer(tokens[actor_role])
            )
        else:
            response = await client.post(
                "/counter-sessions", json={"id_number": id_number, "name": "某人"}, headers=bearer(tokens[actor_role])
            )
        async with client.app.state.sessionmaker() as session:
            person = await session.get(Person, id_number)
        expected = rights.allowed(action, actor_role, rights.PERSON)
        done = response.status_code in (200, 201)
        if done:
            assert person.level == 4, response.text
            if action == "counter_verification":
                assert response.json() == {"level": 4, "method": "counter"}
            else:
                assert response.json()["subject"] == id_number and response.json()["level"] == 4
        else:
            assert response.status_code == 403, response.text
            if action == "counter_verification":
                assert person.level == 1
            else:
                assert person is None, "a refused counter token made a person"
        if expected != done:
            mismatches.append((actor_role, expected, done))
    assert mismatches == []
    assert rights.allowed(action, "counter", rights.PERSON)  # the one allowed cell


async def kiosk_row(client, device_id: str):
    from services.identity.models import Kiosk

    async with client.app.state.sessionmaker() as session:
        return await session.get(Kiosk, device_id)


@pytest.mark.parametrize(
    "kiosk_department",
    [
        # the kiosks belong to the actors' own department / to another / to the platform's
        pytest.param(department, marks=pytest.mark.identity_settings(kiosk_department=department))
        for department in (OWN, "GAJ", "ADMIN")
    ],
)
@pytest.mark.parametrize("action", rights.KIOSK_ACTIONS)
async def test_every_cell_of_a_kiosk_action(actors, action, kiosk_department):
    client, tokens = actors
    platform = bearer(tokens[rights.PLATFORM_ADMIN])  # allowed in every run: makes the targets
    mismatches = []
    for actor_role in rights.ACTOR_ROLES:
        actor_department = ACTORS[actor_role][1] if actor_role in ACTORS else None
        relation = rights.relation_to_department(actor_department, kiosk_department)
        expected = rights.allowed(action, actor_role, relation)
        headers = bearer(tokens[actor_role])
        device_id = f"KIOSK-T-{next(_serial):04d}"
        if action == "register_kiosk":
            body = {"device_id": device_id, "hall_code": "HALL-370102", "name": "自助机", "location": "一楼"}
            response = await client.post("/kiosks", json=body, headers=headers)
            row = await kiosk_row(client, device_id)
            done = response.status_code == 201
            if done:
                secret = response.json()["secret"]
                assert row.department == kiosk_department and secret not in row.secret_ciphertext
            else:
                assert response.status_code == 403 and row is None, response.text
        elif action == "list_kiosks":
            response = await client.get("/kiosks", headers=headers)
            done = response.status_code == 200
            assert done or response.status_code == 403, response.text
        else:
            body = {"device_id": device_id, "hall_code": "HALL-370102", "name": "自助机", "location": "一楼"}
            assert (await client.post("/kiosks", json=body, headers=platform)).status_code == 201
            before = await kiosk_row(client, device_id)
            verb = "secret" if action == "rotate_kiosk_secret" else "revoke"
            response = await client.post(f"/kiosks/{device_id}/{verb}", headers=headers)
            after = await kiosk_row(client, device_id)
            done = response.status_code == 200
            if done:
                if verb == "secret":
                    assert after.secret_ciphertext != before.secret_ciphertext and after.rotated_at is not None
                else:
                    assert after.status == "revoked" and after.revoked_at is not None
            else:
                assert response.status_code == 403, response.text
                assert (after.secret_ciphertext, after.status) == (before.secret_ciphertext, "active")
        if expected != done:
            mismatches.append((action, actor_role, relation, "expected", expected, "got", done))
    assert mismatches == []


async def test_department_admin_cannot_move_an_officer_out_nor_promote(actors):
    client, tokens = actors
    target = await make_target(client, OWN, ["acceptor"])
    headers = bearer(tokens[rights.DEPARTMENT_ADMIN])
    moved = await client.patch(f"/officers/{target}", json={"department": "GAJ"}, headers=headers)
    promoted = await client.patch(f"/officers/{target}", json={"roles": ["acceptor", "admin"]}, headers=headers)
    supervisor = await client.patch(f"/officers/{target}", json={"roles": ["supervisor"]}, headers=headers)
    assert (moved.status_code, promoted.status_code, supervisor.status_code) == (403, 403, 403)
    row = await officer_row(client, target)
    assert (row.department, row.roles) == (OWN, "acceptor")
    # within bounds: the case-work roles of its own department
    ok = await client.patch(f"/officers/{target}", json={"roles": ["reviewer", "counter"]}, headers=headers)
    assert ok.status_code == 200 and ok.json()["roles"] == ["counter", "reviewer"]
    # the platform admin may do what the department admin may not
    platform = bearer(tokens[rights.PLATFORM_ADMIN])
    assert (await client.patch(f"/officers/{target}", json={"department": "GAJ"}, headers=platform)).status_code == 200


async def test_the_issue_scenario_department_admin_creating_a_platform_supervisor_is_refused(actors):
    client, tokens = actors
    body = {"login": "evil.admin", "name": "坏人", "department": "ADMIN", "roles": ["admin", "supervisor"],
            "password": PASSWORD}  # fmt: skip
    response = await client.post("/officers", json=body, headers=bearer(tokens[rights.DEPARTMENT_ADMIN]))
    assert response.status_code == 403 and response.headers["content-type"].startswith("application/problem+json")
    assert await officer_row(client, "evil.admin") is None
