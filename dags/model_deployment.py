"""### model_deployment

Carries a model version the gate (or a person reviewing it) approved into traffic, watches it
on real data days, then promotes it or rolls it back; every alias move goes into the
deployment history.

1. **plan_deployment**: the request comes from the `candidate_model` asset event (version and
   the data day it was trained as of) or from the Params of a manual run (they win). A run
   woken by several candidates deploys the newest data day's, then the newest event's
   (`mlops.deployment.events.choose_event`); the others are recorded as `superseded` in the
   plan and in the history records of the run's moves (Airflow 3.3.2 hands the run after a
   rollout only the events up to the first one queued behind it: apache/airflow#56050,
   README "Deployments"). A first model (no champion yet) goes `direct`; a version that is
   already champion is left alone.
2. **approve_rollout** (when `require_approval`): Airflow's human-in-the-loop approval,
   assigned to `MLOPS_ROLLOUT_APPROVERS` (user names or `role:<Role>`), answerable in the UI
   or with `PATCH .../taskInstances/approve_rollout/-1/hitlDetails`. The user who triggered
   the run cannot approve it (their Approve is refused). Every answer (approved, rejected,
   refused, no answer in 2 days) goes into the history with the responder; only an
   approval lets the run go on. A version the gate sent for review is deployed only once a
   person approved it: here, or already in model_training's review (then the event comes
   without asking again, and the move names that reviewer as approver).
3. **start_rollout**: `direct` moves `champion` now (the old one becomes `previous`, kept warm
   by the model service: blue-green). `shadow`/`canary` make the version the `challenger`
   and write the rollout (strategy, share, start day) into the registered model's tag; the
   service and daily scoring route by it from then on. The days after the version's data
   (its run's `eval_end`) up to D, which it never saw, are scored by replay: their matured
   rows judge its quality too (`mlops.deployment.replay`).
4. **wait_for_observed_days**: a deferrable sensor over the prediction log's batch partitions
   of data days D+1..D+N (and, to judge on matured labels, the validated partition of
   D+N+7). Time is data time: a backfill or a simulation advances it, the wall clock never.
   Then, with `judge_quality` (the default), one more data day at a time until the rows the
   challenger scored (replayed or live) whose labels have matured hold enough frauds (30) to
   judge it, or until
   `quality_deadline_days` after D (`mlops.deployment.maturity`); a challenger that already
   fails on D+1..D+N (errors, latency, alert volume) is judged there.
5. **judge_rollout**: challenger errors and latency, score shift against the champion on the
   same rows, and the gate's paired bootstrap of average precision on matured labels. The
   evidence (matured rows and frauds, AP of each, the interval) goes to `reports/deployments/`.
6. **finish_rollout**: promote (`champion` moves, the old one becomes `previous`) or roll back
   (`challenger` alias and rollout cleared; the champion was never touched).
7. **decide_quality** (instead of 6, when the deadline passed without enough frauds and the
   challenger is healthy): a person decides, as for approve_rollout
   (`PATCH .../taskInstances/decide_quality/-1/hitlDetails`): Approve promotes; Reject, a
   refused self-approval or no answer in `MLOPS_ROLLOUT_DECISION_TIMEOUT_H` (48) rolls back.
   The answer and the move are both in the history (`mlops.deployment.quality_review`).

The defaults of the Params (those an asset-triggered rollout uses) come from
`MLOPS_ROLLOUT_STRATEGY`, `_CANARY_SHARE`, `_OBSERVATION_DAYS`, `_WAIT_FOR_LABELS`,
`_JUDGE_QUALITY` and `_QUALITY_DEADLINE_DAYS`.
Rollbacks are not done here: **`model_rollback`** moves `champion` back to `previous` at once,
even while a rollout of this DAG is observed (it aborts that rollout: the sensor ends
skipped, and judge and finish with it); a run asking for `action=rollback` is refused.
History: `mlops.registry.history.served_on(settings, day)` answers which version served a
day and who approved it. One run at a time. Owner: ml-platform.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Param, TriggerRule, dag, task

from mlops_airflow.alerts import FailureNotifier
from mlops_airflow.approval import QualityDecisionOperator, RolloutApprovalOperator
from mlops_airflow.assets import CANDIDATE_MODEL
from mlops_airflow.parse_time import (
    APPROVAL_TIMEOUT,
    OBSERVATION_TIMEOUT,
    deployment_run_timeout,
    retry_delay,
    rollout_approvers,
    rollout_decision_timeout,
    rollout_default,
    schedule_start,
    sensor_poke_s,
    task_timeout,
)
from mlops_airflow.sensors import ObservedDaysSensor


@dag(
    schedule=CANDIDATE_MODEL,
    start_date=schedule_start(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=deployment_run_timeout(),
    tags=["mlops", "deployment", "mlflow"],
    doc_md=__doc__,
    on_failure_callback=FailureNotifier(run=True),
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": retry_delay(timedelta(minutes=2)),
        "execution_timeout": task_timeout(),
        "on_failure_callback": FailureNotifier(),  # a task's last try only
    },
    params={
        # the title is part of the schema, so a refused "rollback" names where to go
        "action": Param(
            "deploy",
            type="string",
            enum=["deploy"],
            title="action: deploy only (to roll the champion back, trigger model_rollback)",
            description="Rollbacks have their own DAG, model_rollback, which does not wait "
            "for a rollout of this DAG to end.",
        ),
        "version": Param(
            None,
            type=["null", "string"],
            pattern="^[0-9]+$",
            description="The model version (default: the candidate_model event's).",
        ),
        "strategy": Param(
            rollout_default("strategy", "canary"),
            type="string",
            enum=["canary", "shadow", "direct"],
        ),
        "canary_share": Param(
            float(rollout_default("canary_share", "0.1")),
            type="number",
            minimum=0.01,
            maximum=1.0,
            description="Cards on the challenger.",
        ),
        "observation_days": Param(
            int(rollout_default("observation_days", "7")), type="integer", minimum=1, maximum=90
        ),
        "wait_for_labels": Param(
            rollout_default("wait_for_labels", "true").lower() == "true",
            type="boolean",
            description="Judge also on matured labels: wait until the labels of the last "
            "observed day are known (7 more data days).",
        ),
        "judge_quality": Param(
            rollout_default("judge_quality", "true").lower() == "true",
            type="boolean",
            description="Promote only on matured AP against the champion: observe day by day "
            "until the matured rows hold enough frauds; past the deadline a person decides.",
        ),
        "quality_deadline_days": Param(
            int(rollout_default("quality_deadline_days", "30")),
            type="integer",
            minimum=1,
            maximum=365,
            description="Data days after the start by which quality must be judged.",
        ),
        "require_approval": Param(False, type="boolean", description="Ask a human first."),
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="The data day the deployment happens at (default: the event's day, "
            "else the run's date).",
        ),
        "reason": Param(None, type=["null", "string"], description="Kept in the history."),
    },
)
def model_deployment():
    @task(multiple_outputs=False, inlets=[CANDIDATE_MODEL])  # drawn in the asset graph
    def plan_deployment(**context) -> dict:
        from mlops.deployment.run import plan
        from mlops.settings import load_settings
        from mlops_airflow.context import deployment_request

        settings = load_settings()
        return plan(settings, deployment_request(context)).to_xcom()

    @task.branch
    def choose_path(planned: dict) -> list[str]:
        path = planned["path"]
        if path == "start" and planned["request"]["require_approval"]:
            path = "approve"
        return {
            "approve": ["describe"],  # then approve_rollout
            "start": ["no_approval_needed"],
            "nothing": [],
        }[path]

    @task(multiple_outputs=False)
    def describe(planned: dict) -> str:
        days = ", ".join(planned["observed_days"]) or "none (direct)"
        return (
            f"{planned['why']}. Observed data days: {days}. Reason: {planned['request']['reason']}"
        )

    no_approval_needed = EmptyOperator(task_id="no_approval_needed")

    # Joins the two approval paths, so it reads the plan from XCom rather than taking it as
    # an argument: an argument would make plan_deployment an upstream, and its success alone
    # would satisfy the trigger rule when the plan is to do nothing.
    @task(multiple_outputs=False, trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def start_rollout(**context) -> dict:
        from mlops.deployment.plan import DeploymentPlan
        from mlops.deployment.run import start
        from mlops.settings import load_settings
        from mlops_airflow.context import approval_of, task_storage_options, wall_clock

        settings = load_settings()
        planned = context["ti"].xcom_pull(task_ids="plan_deployment")
        step = start(
            settings,
            DeploymentPlan.from_xcom(planned),
            task_storage_options(settings),
            approval=approval_of(context["ti"], "approve_rollout"),
            recorded_at=wall_clock(),
        )
        return step.to_xcom()

    @task.short_circuit
    def is_observed(planned: dict) -> bool:
        return planned["strategy"] != "direct"

    wait_for_observed_days = ObservedDaysSensor(
        task_id="wait_for_observed_days",
        plan_task_id="plan_deployment",
        poke_interval=sensor_poke_s(),
        timeout=int(OBSERVATION_TIMEOUT.total_seconds()),
        execution_timeout=None,  # bounded by timeout
    )

    @task(multiple_outputs=False)
    def judge_rollout(planned: dict) -> dict:
        from mlops.deployment.plan import DeploymentPlan
        from mlops.deployment.run import judge_rollout as judge
        from mlops.settings import load_settings
        from mlops_airflow.context import task_storage_options

        settings = load_settings()
        plan = DeploymentPlan.from_xcom(planned)
        return judge(settings, plan, task_storage_options(settings)).to_dict()

    @task.branch
    def choose_end(judgement: dict) -> str:
        # a healthy canary unjudged by its deadline is a person's to decide
        return {"review": "decide_quality"}.get(judgement["verdict"], "finish_rollout")

    @task(multiple_outputs=False)
    def finish_rollout(planned: dict, judgement: dict) -> dict:
        from mlops.deployment.judge import Judgement
        from mlops.deployment.plan import DeploymentPlan
        from mlops.deployment.run import finish
        from mlops.settings import load_settings
        from mlops_airflow.context import task_storage_options, wall_clock

        settings = load_settings()
        verdict = Judgement.from_dict(judgement)
        plan = DeploymentPlan.from_xcom(planned)
        step = finish(
            settings, plan, verdict, task_storage_options(settings), recorded_at=wall_clock()
        )
        return step.to_xcom()

    planned = plan_deployment()
    branch = choose_path(planned)
    described = describe(planned)
    approve_rollout = RolloutApprovalOperator(
        task_id="approve_rollout",
        plan_task_id="plan_deployment",
        approvers=rollout_approvers(),
        subject="Roll out a fraud model version?",
        body=described,
        response_timeout=APPROVAL_TIMEOUT,  # execution_timeout bounds the rest
    )
    branch >> described >> approve_rollout
    branch >> no_approval_needed
    started = start_rollout()
    [approve_rollout, no_approval_needed] >> started
    observed = is_observed(planned)
    started >> observed >> wait_for_observed_days
    judgement = judge_rollout(planned)
    wait_for_observed_days >> judgement
    decide_quality = QualityDecisionOperator(
        task_id="decide_quality",
        plan_task_id="plan_deployment",
        judgement_task_id="judge_rollout",
        approvers=rollout_approvers(),
        subject="A canary's quality could not be judged by its deadline: promote it?",
        response_timeout=rollout_decision_timeout(),  # then: rolled back
    )
    choose_end(judgement) >> [finish_rollout(planned, judgement), decide_quality]


model_deployment()
