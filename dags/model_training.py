"""### model_training

Trains a fraud model **as of the run's date D**, judges it against the champion and records
the decision.

- **Data**: labels are known 7 days after a transaction, so the run uses the transactions
  in `[D - 7 - window_days, D - 7)`, built by Feast's point-in-time retrieval through the
  `fraud_model_v1` feature service. The last `eval_days` are held out (the most recent
  matured days); the candidate trains on the days before them minus a 7-day gap.
- **Gate**: candidate and champion are scored on the same held-out rows; floors, a paired
  bootstrap non-inferiority test, behavioural checks and a latency budget give
  *approve*, *reject* or *needs review*. The decision record and model card are attached to
  the MLflow run and model version. *approve* moves an alias (`challenger`) and emits the
  `candidate_model` asset for the deployment DAG; *reject* moves nothing.
- **Review** (*needs review* only; skipped otherwise): `review_candidate` is Airflow's
  human-in-the-loop approval, assigned to the rollout approvers (`MLOPS_ROLLOUT_APPROVERS`,
  user names or `role:<Role>`), answerable in the UI or with
  `PATCH .../taskInstances/review_candidate/-1/hitlDetails`. The user who triggered the run
  cannot approve it. *Approve*: the version gets the human approval tag
  (`mlops.human_approval`, so it may load), becomes `challenger` and is announced as if the
  gate had approved it; model_deployment then rolls it out without asking again. *Reject*, a
  refused self-approval, or no answer within `MLOPS_REVIEW_TIMEOUT_H` (24 h): nothing moves.
  Every answer is a deployment-history event (`approved`, `rejected`, `approval_refused`,
  `approval_timed_out`, with `details.stage = "review"`), naming the responder.
- **While a review waits** the run stays running, and with `max_active_runs=1` a retrain
  request that arrives meanwhile queues behind it: it is answered (as of its own day) once
  the review is answered or times out, never lost. The unattended loops (`make demo`,
  `make e2e-prod`) set a review timeout of 36 s (`MLOPS_REVIEW_TIMEOUT_H=0.01` in
  `demo.closed_loop.loop_environment`; the scheduler applies it within 15 s more):
  nobody is there to answer, so a *needs review* candidate (e.g. one trained before the
  drift, judged on drifted days) times out, is recorded as such and is never deployed, as
  the demo's story wants; the demo's day loop does not wait on an `awaiting_input` task.
- **Schedule**: weekly (Monday 03:00 UTC; `MLOPS_TRAINING_CRON` changes it, and empty leaves
  only the asset) or whenever a `retrain_request` asset event arrives (the monitoring
  policy's retrain signal). An asset-triggered run has no logical date: it trains as of the
  `day` in the event's extra, and keeps its `reasons`. `max_active_runs=1`.
- **Once per request**: a second retrain request for the same day, settings and data (a
  rerun of the monitoring day, an event that queued a second run) trains nothing and
  announces nothing: it returns the first run's decision (`reused`). A run holds a claim on
  its request while it trains, so even callers outside Airflow cannot train it twice at once.
- **After a breach**: a retrain request that follows a breach carries `breach_since` (the
  first data day of the breach; also a Param). The run then drops the gap: it trains on the
  14 days right before the held-out week, so it holds matured days of the new data, and is
  judged on the latest matured week; an approved model is refit on the whole 21-day window
  and registered (the model card and tags `mlops.gated_on` / `mlops.registered_model` say
  what was gated and what was registered).
- **Settled features**: the feature windows reach 37 days back; a window with rows in the
  first 37 days after `MLOPS_HISTORY_START` is refused (truncated windows), unless the
  `allow_unsettled_features` Param asks for it: the run is then flagged in the decision
  record and model card, and needs review.
- **Manual run**: trigger with Params (window, model family, hyperparameters, seed,
  force review, allow unsettled features, reason). **Historical retraining**:
  `airflow backfill create --dag-id model_training --from-date 2018-08-01 --to-date 2018-09-01`
  rebuilds "the model we would have had" on each date; a rerun of a date replaces its MLflow
  run and model version. Owner: ml-platform.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, TriggerRule, dag, task

from mlops_airflow.alerts import FailureNotifier
from mlops_airflow.approval import CandidateReviewOperator
from mlops_airflow.assets import CANDIDATE_MODEL, RETRAIN_REQUEST
from mlops_airflow.parse_time import (
    DEFAULT_MODEL_FAMILY,
    MODEL_FAMILIES,
    retry_delay,
    review_timeout,
    rollout_approvers,
    schedule_start,
    task_timeout,
    training_cron,
    training_run_timeout,
    training_timeout,
)

CRON = training_cron()


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(CRON, timezone="UTC"), assets=RETRAIN_REQUEST
    )
    if CRON
    else RETRAIN_REQUEST,
    start_date=schedule_start(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=training_run_timeout(),
    tags=["mlops", "training", "mlflow"],
    doc_md=__doc__,
    on_failure_callback=FailureNotifier(run=True),
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": retry_delay(timedelta(minutes=5)),
        "execution_timeout": task_timeout(),
        "on_failure_callback": FailureNotifier(),  # a task's last try only
    },
    params={
        "window_days": Param(
            21,
            type="integer",
            minimum=15,
            maximum=365,
            description="Days of matured data: training + 7-day gap + evaluation.",
        ),
        "eval_days": Param(
            7,
            type="integer",
            minimum=1,
            maximum=60,
            description="Held-out days at the end of the window.",
        ),
        "family": Param(
            DEFAULT_MODEL_FAMILY, type="string", enum=MODEL_FAMILIES, description="Model family."
        ),
        "hyperparameters": Param(
            {},
            type="object",
            description='Family hyperparameters, e.g. {"max_iter": 300} for '
            'hist_gradient_boosting, {"hist_gradient_boosting": {"max_iter": 300}} for the stack.',
        ),
        "seed": Param(
            0, type="integer", minimum=0, description="Random seed of training and bootstrap."
        ),
        "force_review": Param(
            False,
            type="boolean",
            description="Never auto-approve: an approval becomes needs_review (a person "
            "reviews it).",
        ),
        "allow_unsettled_features": Param(
            False,
            type="boolean",
            description="Train on rows whose 37-day feature windows reach before "
            "MLOPS_HISTORY_START (refused otherwise); the decision then needs review.",
        ),
        "breach_since": Param(
            None,
            type=["null", "string"],
            format="date",
            description="First data day of a breach (YYYY-MM-DD): train on the days right "
            "up to the held-out week (no gap) and, once approved, register the model refit on "
            "the whole window. A retrain request after a breach carries it.",
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            description="Why this run was asked for (kept in the decision record).",
        ),
    },
)
def model_training():
    @task(multiple_outputs=False, execution_timeout=training_timeout())
    def build_training_sets(**context) -> dict:
        from mlops.features.inputs import MissingPartitionError
        from mlops.settings import load_settings
        from mlops.training.job import build_training_sets as build
        from mlops.training.settled import UnsettledFeaturesError
        from mlops_airflow.context import (
            as_of_day,
            data_errors_fail_the_task,
            task_storage_options,
            training_request,
            triggering_reason,
        )

        settings = load_settings()
        day = as_of_day(context)
        request = training_request(
            context["params"], day, settings, triggering_reason(context), context
        )
        with data_errors_fail_the_task(MissingPartitionError, UnsettledFeaturesError):
            return build(settings, request, task_storage_options(settings)).to_xcom()

    @task(multiple_outputs=False, execution_timeout=training_timeout())
    def train_and_gate(built: dict, **context) -> dict:
        from mlops.settings import load_settings
        from mlops.training.job import train_and_gate as run
        from mlops_airflow.context import (
            answers_retrain_request,
            as_of_day,
            run_context,
            task_storage_options,
            training_request,
            triggering_reason,
        )

        settings = load_settings()
        day = as_of_day(context)
        request = training_request(
            context["params"], day, settings, triggering_reason(context), context
        )
        outcome = run(
            settings,
            request,
            task_storage_options(settings),
            context=run_context(context, day),
            sets_uri=built["sets_uri"],
            reuse_decided=answers_retrain_request(context),
        )
        return outcome.to_xcom()

    @task.branch
    def route_decision(outcome: dict) -> list[str]:
        # a request another run already decided (reused) was announced or reviewed there
        if outcome.get("reused"):
            return []
        return {"approve": ["gate_approved"], "needs_review": ["describe_review"]}.get(
            outcome["outcome"], []
        )

    gate_approved = EmptyOperator(task_id="gate_approved")

    @task(multiple_outputs=False)
    def describe_review(outcome: dict, **context) -> str:
        from mlops.deployment.review import review_body
        from mlops_airflow.context import as_of_day

        return review_body(outcome, as_of_day(context))

    # Joins the gate's approval and a person's, so it reads the outcome from XCom rather than
    # taking it as an argument: an argument would make train_and_gate an upstream, and its
    # success alone would satisfy the trigger rule when the gate rejected.
    @task(outlets=[CANDIDATE_MODEL], trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def announce_candidate(**context) -> None:
        from mlops.training.requests import candidate_event
        from mlops_airflow.context import as_of_day

        outcome = context["ti"].xcom_pull(task_ids="train_and_gate")
        extra = candidate_event(outcome, as_of_day(context))
        context["outlet_events"][CANDIDATE_MODEL].extra = extra

    outcome = train_and_gate(build_training_sets())
    route = route_decision(outcome)
    described = describe_review(outcome)
    review_candidate = CandidateReviewOperator(
        task_id="review_candidate",
        outcome_task_id="train_and_gate",
        approvers=rollout_approvers(),
        subject="The gate asks for a review of a fraud model candidate",
        body=described,
        response_timeout=review_timeout(),  # execution_timeout bounds the rest
    )
    route >> [gate_approved, described]
    described >> review_candidate
    [gate_approved, review_candidate] >> announce_candidate()


model_training()
