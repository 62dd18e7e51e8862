"""The FAB auth manager, with rollout approvers assignable by role (``mlops_airflow.auth_roles``).

Set ``AIRFLOW__CORE__AUTH_MANAGER=mlops_airflow.fab_approvers.ApproverRoleFabAuthManager``;
the plugins folder is on the api-server's path.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

from mlops_airflow.auth_roles import may_answer


class ApproverRoleFabAuthManager(FabAuthManager):
    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: Any) -> bool:
        roles = [role.name for role in user.roles]
        return may_answer(assigned_users, str(user.get_id()), user.get_name(), roles)
