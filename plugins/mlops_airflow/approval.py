"""The rollout's approval: Airflow's ``ApprovalOperator`` assigned to the approvers, which
refuses the requester's own Approve and writes every answer to the deployment history
(``mlops.deployment.approval``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from mlops_airflow.auth_roles import assigned_users


class RolloutApprovalOperator(ApprovalOperator):
    """Asks ``approvers`` (auth-manager user ids, or ``role:<Role>``; empty: anyone allowed
    to answer HITL tasks) to approve the plan of ``plan_task_id``. No answer within
    ``response_timeout`` rejects."""

    def __init__(self, *, plan_task_id: str, approvers: Sequence[str], **kwargs: Any) -> None:
        super().__init__(assigned_users=assigned_users(approvers), defaults="Reject", **kwargs)
        self.plan_task_id = plan_task_id

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from mlops.deployment.approval import decide, record_decision
        from mlops.deployment.plan import DeploymentPlan
        from mlops.settings import load_settings
        from mlops_airflow.context import task_storage_options, wall_clock

        if "error" not in event:
            decision = decide(event, requester=context["dag_run"].triggering_user_name)
            settings = load_settings()
            plan = DeploymentPlan.from_xcom(context["ti"].xcom_pull(task_ids=self.plan_task_id))
            uri = record_decision(
                settings, plan, decision, task_storage_options(settings), recorded_at=wall_clock()
            )
            self.log.info("%s: %s (recorded in %s)", decision.outcome, decision.why, uri)
            if not decision.proceeds and event["chosen_options"] != [self.REJECT]:
                event = {**event, "chosen_options": [self.REJECT]}  # skips the rollout
        return super().execute_complete(context, event)
