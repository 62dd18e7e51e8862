"""The production stack's users and roles in FAB (what docker-compose's ``airflow-init`` does
with the image entrypoint): the Approver role, and the user ``admin`` whose password comes
from ``MLOPS_ADMIN_PASSWORD`` (so it is never on a command line). Idempotent.

    MLOPS_ADMIN_PASSWORD=... python -m demo.airflow_users
"""

from __future__ import annotations

import os

APPROVER_ROLE = "Approver"  # docker-compose.yaml: MLOPS_ROLLOUT_APPROVERS=role:Approver


def main() -> None:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    password = os.environ.get("MLOPS_ADMIN_PASSWORD")
    if not password:
        raise SystemExit("MLOPS_ADMIN_PASSWORD is not set: the admin user needs a password")
    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        security.add_role(APPROVER_ROLE)
        if security.find_user(username="admin") is None:
            created = security.add_user(
                username="admin",
                first_name="Airflow",
                last_name="Admin",
                email="admin@example.org",
                role=security.find_role("Admin"),
                password=password,
            )
            if not created:
                raise SystemExit("FAB refused to create the user admin; see the log above")


if __name__ == "__main__":
    main()
