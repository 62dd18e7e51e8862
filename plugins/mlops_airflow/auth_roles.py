"""Who may answer a rollout's approval: the approvers named by user or by role.

Airflow checks a HITL response against the task's ``assigned_users`` ids (403 otherwise). An
approver is named here by user name or as ``role:<Role>``; ``ApproverRoleFabAuthManager``
(``mlops_airflow.fab_approvers``, the production profile's auth manager) lets a user answer
when their id, their name or one of their roles is assigned. SimpleAuthManager (the laptop
profile) knows users by name only, so there the approvers are user names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

ROLE_PREFIX = "role:"


def assigned_users(approvers: Sequence[str]) -> list[dict[str, str]] | None:
    """The HITL ``assigned_users`` of ``approvers`` (None: anyone allowed to answer)."""
    return [{"id": a, "name": a} for a in approvers] or None


def may_answer(assigned: set[str], user_id: str, user_name: str, roles: Iterable[str]) -> bool:
    named = {user_id, user_name} | {ROLE_PREFIX + role for role in roles}
    return bool(named & assigned)
