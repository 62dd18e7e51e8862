"""### model_rollback

Puts the `previous` champion back at once, whatever else is going on. It is a DAG of its own
so that it never queues behind a rollout: `model_deployment` runs one at a time and a
canary may wait weeks of data days on its observed days.

Scheduled on the **`rollback_request`** asset: `model_monitoring`'s `request_rollback` (the
probation of a new champion failed) emits an event with extra `{"day": D, "version": <bad
champion>, "reason": ...}`; anyone may emit one the same way. An asset-triggered run has no
logical date: its day is the event's. A run woken by several requests acts on the newest
data day's (then the newest event; `mlops.deployment.events.choose_event`) and records the
others as `superseded` in its history record (Airflow 3.3.2 hands a run only the requests up
to the first one queued behind the previous run: apache/airflow#56050). Triggered by hand,
the Params win over any event.

1. **plan_rollback**: the bad champion (Param `version`, else the event's, else the current
   champion), the data day the rollback is made at (`day`, else the event's, else the run's
   date) and the rollout found in traffic. Nothing to do when there is no `previous` version,
   or when the champion is no longer the bad one (rolled back or replaced since: so a second
   request for the same day rolls nothing back twice): then `roll_back` is skipped, naming why.
2. **roll_back**: `champion` moves back to `previous` (the bad version is tagged
   `mlops.rolled_back`); then a shadow or canary rollout observed meanwhile is aborted: its
   challenger withdrawn, the rollout cleared, and an abort mark written for the
   `model_deployment` run that waits on it, whose `wait_for_observed_days` ends at once,
   skipped (judge and finish are skipped after it), the mark kept in the rollout's evidence
   under `reports/deployments/`. Both moves go into the deployment history
   (`rolled_back`, `rollout_aborted`) and are idempotent, so a retry finishes what a failed
   try began.

Each task retries 3 times, `MLOPS_ROLLBACK_RETRY_DELAY_S` (30 s) apart; a task that fails its
last try alerts, and so does a failed run (`FailureNotifier`: an ERROR log, a JSON alert
under the data root's `alerts/`, a POST to `MLOPS_ALERT_WEBHOOK_URL` when set). One run at a
time. Owner: ml-platform.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from mlops_airflow.alerts import FailureNotifier
from mlops_airflow.assets import ROLLBACK_REQUEST
from mlops_airflow.parse_time import (
    ROLLBACK_RETRIES,
    ROLLBACK_TIMEOUT,
    rollback_retry_delay,
    rollback_run_timeout,
    schedule_start,
)


@dag(
    schedule=ROLLBACK_REQUEST,
    start_date=schedule_start(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=rollback_run_timeout(),
    tags=["mlops", "deployment", "rollback", "mlflow"],
    doc_md=__doc__,
    on_failure_callback=FailureNotifier(run=True),
    default_args={
        "owner": "ml-platform",
        "retries": ROLLBACK_RETRIES,
        "retry_delay": rollback_retry_delay(),
        "execution_timeout": ROLLBACK_TIMEOUT,
        "on_failure_callback": FailureNotifier(),  # a task's last try only
    },
    params={
        "version": Param(
            None,
            type=["null", "string"],
            pattern="^[0-9]+$",
            description="The champion found bad (default: the rollback_request event's, else "
            "the current champion). When the champion is another version by then, nothing is "
            "rolled back.",
        ),
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="The data day the rollback happens at (default: the event's day, else "
            "the run's date).",
        ),
        "reason": Param(None, type=["null", "string"], description="Kept in the history."),
    },
)
def model_rollback():
    @task(multiple_outputs=False, inlets=[ROLLBACK_REQUEST])
    def plan_rollback(**context) -> dict:
        from mlops.deployment.rollback import plan_rollback as plan
        from mlops.settings import load_settings
        from mlops_airflow.context import rollback_request

        return plan(load_settings(), rollback_request(context)).to_xcom()

    @task(multiple_outputs=False)
    def roll_back(planned: dict) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from mlops.deployment.rollback import RollbackPlan, roll_back_preempting
        from mlops.settings import load_settings
        from mlops_airflow.context import task_storage_options, wall_clock

        plan = RollbackPlan.from_xcom(planned)
        if plan.deployment.path != "rollback":
            raise AirflowSkipException(plan.deployment.why)
        settings = load_settings()
        options = task_storage_options(settings)
        return roll_back_preempting(settings, plan, options, recorded_at=wall_clock()).to_xcom()

    roll_back(plan_rollback())


model_rollback()
