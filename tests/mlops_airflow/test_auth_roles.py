"""Who may answer a rollout's approval: approvers named by user or by role, checked by the
production profile's FAB auth manager (``ApproverRoleFabAuthManager``) on FAB's own user and
role models, as the api-server's HITL route calls it."""

from __future__ import annotations

import pytest

from mlops_airflow.auth_roles import assigned_users, may_answer


def test_approvers_become_the_hitl_assigned_users_and_none_means_anyone():
    assert assigned_users(["carol", "role:Approver"]) == [
        {"id": "carol", "name": "carol"},
        {"id": "role:Approver", "name": "role:Approver"},
    ]
    assert assigned_users([]) is None


def test_a_user_may_answer_by_id_by_name_or_by_one_of_their_roles():
    assert may_answer({"7"}, "7", "bob", [])
    assert may_answer({"bob"}, "7", "bob", [])
    assert may_answer({"role:Approver"}, "7", "bob", ["User", "Approver"])
    assert not may_answer({"role:Approver", "carol"}, "7", "bob", ["User", "Approver-ish"])


@pytest.fixture(scope="module")
def fab():
    from airflow.providers.fab.auth_manager.models import Role, User

    from mlops_airflow.fab_approvers import ApproverRoleFabAuthManager

    def user(user_id: int, name: str, *roles: str) -> User:
        found = User(id=user_id, username=name)
        found.roles = [Role(name=role) for role in roles]
        return found

    return ApproverRoleFabAuthManager(), user


def test_fab_lets_a_member_of_the_approver_role_answer(fab):
    manager, user = fab
    bob = user(7, "bob", "User", "Approver")
    assert manager.is_authorized_hitl_task(assigned_users={"role:Approver"}, user=bob)


def test_fab_refuses_a_user_outside_the_role_even_an_admin(fab):
    manager, user = fab
    admin = user(1, "admin", "Admin")
    assert not manager.is_authorized_hitl_task(assigned_users={"role:Approver"}, user=admin)


def test_fab_matches_a_named_approver_by_name_though_its_ids_are_numbers(fab):
    manager, user = fab
    assert manager.is_authorized_hitl_task(assigned_users={"carol"}, user=user(9, "carol", "User"))
