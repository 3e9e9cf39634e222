"""The rights table's shape; tests/test_rights_matrix.py walks every cell through the API."""

from services.identity.domain import rights


def test_every_cell_names_known_roles_and_relations():
    for action, cells in rights.RIGHTS.items():
        assert set(cells) <= set(rights.ACTOR_ROLES), action
        for relations in cells.values():
            assert relations <= set(rights.RELATIONS), action


def test_unreachable_cells_are_refused():
    for role, relation in rights.UNREACHABLE:
        assert not any(rights.allowed(action, role, relation) for action in rights.ACTIONS)


def test_a_grant_is_only_allowed_where_creating_and_changing_are():
    for role in rights.OFFICER_ROLES:
        for actor in rights.ACTOR_ROLES:
            for relation in rights.RELATIONS:
                if rights.allowed(rights.GRANT[role], actor, relation):
                    assert rights.allowed("create_officer", actor, relation)
                    assert rights.allowed("change_officer", actor, relation)


def test_actor_roles_split_admin_by_department():
    assert rights.actor_roles("officer", ["admin"], "ADMIN") == {rights.PLATFORM_ADMIN}
    assert rights.actor_roles("officer", ["admin", "acceptor"], "SCJGJ") == {rights.DEPARTMENT_ADMIN, "acceptor"}
    assert rights.actor_roles("person", ["admin"], "ADMIN") == {"person"}  # claims of a person token mean nothing


def test_relations():
    assert rights.relation_to_department("SCJGJ", "SCJGJ") == rights.SAME_DEPARTMENT
    assert rights.relation_to_department("SCJGJ", "GAJ") == rights.OTHER_DEPARTMENT
    assert rights.relation_to_department("SCJGJ", "ADMIN") == rights.PLATFORM
    assert rights.relation_to_department("ADMIN", "ADMIN") == rights.SAME_DEPARTMENT
    assert rights.relation_to_department(None, "GAJ") == rights.OTHER_DEPARTMENT


def test_a_department_admin_cannot_move_an_officer_out_or_touch_an_admin():
    department_admin = {rights.DEPARTMENT_ADMIN}
    refuse = rights.officer_change_refusal
    assert refuse("change_officer", department_admin, "SCJGJ", {"SCJGJ"}, {"acceptor", "counter"}) is None
    assert refuse("change_officer", department_admin, "SCJGJ", {"SCJGJ", "GAJ"}, {"acceptor"})
    assert refuse("change_officer", department_admin, "SCJGJ", {"SCJGJ"}, {"admin"})
    assert refuse("create_officer", department_admin, "SCJGJ", {"SCJGJ"}, {"supervisor"})
    assert refuse("create_officer", {rights.PLATFORM_ADMIN}, "ADMIN", {"GAJ"}, {"admin", "supervisor"}) is None
