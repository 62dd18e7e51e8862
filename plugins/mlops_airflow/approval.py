"""Accountable approvals: Airflow's ``ApprovalOperator`` assigned to the approvers, which
refuses the requester's own Approve and writes every answer to the deployment history
(``mlops.deployment.approval``). Three questions are asked this way: a rollout's and a
canary's that reached its deadline unjudged (model_deployment), and a gate's
``needs_review`` (model_training)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from mlops_airflow.auth_roles import assigned_users


class RecordedApprovalOperator(ApprovalOperator):
    """Asks ``approvers`` (auth-manager user ids, or ``role:<Role>``; empty: anyone allowed
    to answer HITL tasks). No answer within ``response_timeout`` rejects. Every answer is
    judged (``mlops.deployment.approval.decide``) and handed to the subclass's
    ``record(context, decision) -> str`` (where it was written); an answer that
    does not let the run go on (a refused self-approval) becomes a Reject, which skips what
    follows."""

    def __init__(self, *, approvers: Sequence[str], **kwargs: Any) -> None:
        super().__init__(assigned_users=assigned_users(approvers), defaults="Reject", **kwargs)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from mlops.deployment.approval import decide

        if "error" not in event:
            decision = decide(event, requester=context["dag_run"].triggering_user_name)
            uri = self.record(context, decision)
            self.log.info("%s: %s (recorded in %s)", decision.outcome, decision.why, uri)
            if not decision.proceeds and event["chosen_options"] != [self.REJECT]:
                event = {**event, "chosen_options": [self.REJECT]}  # skips what follows
        return super().execute_complete(context, event)


class RolloutApprovalOperator(RecordedApprovalOperator):
    """Asks the approvers to approve the plan of ``plan_task_id``."""

    def __init__(self, *, plan_task_id: str, approvers: Sequence[str], **kwargs: Any) -> None:
        super().__init__(approvers=approvers, **kwargs)
        self.plan_task_id = plan_task_id

    def record(self, context: Any, decision: Any) -> str:
        from mlops.deployment.approval import record_decision
        from mlops.deployment.plan import DeploymentPlan
        from mlops.settings import load_settings
        from mlops_airflow.context import task_storage_options, wall_clock

        settings = load_settings()
        plan = DeploymentPlan.from_xcom(context["ti"].xcom_pull(task_ids=self.plan_task_id))
        return record_decision(
            settings, plan, decision, task_storage_options(settings), recorded_at=wall_clock()
        )


class CandidateReviewOperator(RecordedApprovalOperator):
    """Asks the approvers to review the candidate of ``outcome_task_id`` (a training outcome
    the gate marked ``needs_review``): an approval vouches for the version and makes it the
    challenger (``mlops.deployment.review``); what follows announces it."""

    def __init__(self, *, outcome_task_id: str, approvers: Sequence[str], **kwargs: Any) -> None:
        super().__init__(approvers=approvers, **kwargs)
        self.outcome_task_id = outcome_task_id

    def record(self, context: Any, decision: Any) -> str:
        from mlops.deployment.review import CandidateReview, record_review
        from mlops.settings import load_settings
        from mlops_airflow.context import as_of_day, run_actor, task_storage_options, wall_clock

        settings = load_settings()
        review = CandidateReview.from_outcome(
            context["ti"].xcom_pull(task_ids=self.outcome_task_id),
            as_of_day(context),
            actor=run_actor(context),
            run_id=context["run_id"],
        )
        return record_review(
            settings, review, decision, task_storage_options(settings), recorded_at=wall_clock()
        )


class QualityDecisionOperator(RecordedApprovalOperator):
    """Asks the approvers to decide a rollout of ``plan_task_id`` whose quality could not be
    judged by its deadline (the ``review`` judgement of ``judgement_task_id``); the question
    names what was observed (``quality_body``, built when the task runs). The answer ends
    the rollout (``mlops.deployment.quality_review``): an approval promotes, anything else
    rolls back."""

    def __init__(
        self, *, plan_task_id: str, judgement_task_id: str, approvers: Sequence[str], **kwargs: Any
    ) -> None:
        super().__init__(approvers=approvers, **kwargs)
        self.plan_task_id = plan_task_id
        self.judgement_task_id = judgement_task_id

    def _judged(self, context: Any) -> tuple[Any, Any]:
        from mlops.deployment.judge import Judgement
        from mlops.deployment.plan import DeploymentPlan

        ti = context["ti"]
        return (
            DeploymentPlan.from_xcom(ti.xcom_pull(task_ids=self.plan_task_id)),
            Judgement.from_dict(ti.xcom_pull(task_ids=self.judgement_task_id)),
        )

    def execute(self, context: Any) -> Any:
        from mlops.deployment.quality_review import quality_body

        self.body = quality_body(*self._judged(context))
        return super().execute(context)

    def record(self, context: Any, decision: Any) -> str:
        from mlops.deployment.quality_review import record_quality_decision
        from mlops.settings import load_settings
        from mlops_airflow.context import task_storage_options, wall_clock

        settings = load_settings()
        step = record_quality_decision(
            settings,
            *self._judged(context),
            decision,
            task_storage_options(settings),
            recorded_at=wall_clock(),
        )
        return step.event or ""
