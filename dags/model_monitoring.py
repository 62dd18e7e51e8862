"""### model_monitoring

Watches the serving champion on each data day D, once D's predictions are logged, and
turns what it sees into at most one retrain request or one rollback.

1. **wait_for_predictions**: a deferrable sensor waits for
   `predictions/batch/date=D/_SUCCESS` (written by `transactions_daily.score_transactions`);
   when none comes within `MLOPS_SENSOR_TIMEOUT_S` (no champion scored the day) the run is
   skipped, not failed.
2. **decide**, in one task (the decision reads the summary and nothing else: a split would
   buy a task start, about a second on the laptop profile, and nothing more):
   - *monitor*: D's logged features and champion scores against the champion's training
     data (PSI on reference-quantile bins, thresholds calibrated on stable simulated days;
     the weekend flag is reported, not judged), and the quality of what was served on the
     days whose labels are known at D (AUC, AP, CP@100). Writes
     `monitoring/reports/date=D/summary.json` and Evidently's `report.html` (Param
     `html_report`, or `MLOPS_MONITORING_HTML=false` for scheduled runs), and emits a
     `model_monitoring` asset event whose extra is the summary;
   - *decide*: the retrain policy (signals, consecutive days, cooldown, budget, no request
     while `model_training` runs, probation of a new champion) records D's decision in
     `monitoring/decisions/date=D.json`, with its reasons, retrain or not. A breach's
     request waits until a training run as of D would train on 3 days of the breach (its
     first data day is recorded as `breach_since`; the reasons name the day it will ask),
     and carries that day so the run places its windows after it.
3. **route_decision** → **request_retraining** emits a `retrain_request` asset event with
   extra `{"day": D, "reasons": [...], "breach_since": ...}` (model_training then trains as
   of D), or
   **request_rollback** emits a `rollback_request` asset event with extra `{"day": D,
   "version": <bad champion>, "reason": ...}`, which `model_rollback` is scheduled on (it
   acts at once, aborting a rollout observed meanwhile; a second request for the same bad
   champion finds it gone and does nothing); a quiet day skips both.

The loop, as the asset graph shows it: `validated_transactions`, `scored_predictions` →
`model_monitoring` → `retrain_request` → `model_training` → `candidate_model` →
`model_deployment`, and `model_monitoring` → `rollback_request` → `model_rollback`.

**Why a cron and a sensor, not the partitioned `scored_predictions` events** (README "How
the day travels"): a run woken by a day-keyed event has that key, and in Airflow 3.3.2 every
asset event such a run emits carries it; a keyed event queues only partition-aware DAGs, so
this DAG's `retrain_request` and `rollback_request` would wake neither `model_training` (a
weekly cron too, backfilled by date) nor `model_rollback`. Not partitioned, this DAG takes
no `partition_key` (the REST API answers 400): re-judge a day with the `day` Param.

**Backfill / catch-up**: each run reads only D's log, labels known at D and the decisions of
days before D, so a re-run range gives the same decisions. `max_active_runs=1`: a decision
needs the one of the day before. **Alerts** (README "Alerts"): a task's last failed try,
a failed run, and day D not judged by the end of D+1 (`MLOPS_MONITORING_DEADLINE_H`, 24 h
after the run was queued). Owner: ml-platform.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from mlops_airflow.alerts import FailureNotifier, deadline_alert
from mlops_airflow.assets import (
    MODEL_MONITORING,
    RETRAIN_REQUEST,
    ROLLBACK_REQUEST,
    SCORED_PREDICTIONS,
    VALIDATED_TRANSACTIONS,
)
from mlops_airflow.parse_time import (
    daily_run_timeout,
    monitoring_deadline,
    retry_delay,
    schedule_end,
    schedule_start,
    sensor_mode,
    sensor_poke_s,
    sensor_timeout_s,
    task_timeout,
    zone_uri,
)
from mlops_airflow.sensors import PredictionLogSensor


@dag(
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=schedule_start(),
    end_date=schedule_end(),
    catchup=True,
    max_active_runs=1,
    dagrun_timeout=daily_run_timeout(),
    tags=["mlops", "monitoring", "retraining"],
    doc_md=__doc__,
    on_failure_callback=FailureNotifier(run=True),
    # Day D's run is queued when D ends: the day judged by the end of D+1 (deadline_alert).
    deadline=deadline_alert("day_judged", "the day judged by D+1", monitoring_deadline()),
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": retry_delay(timedelta(minutes=2)),
        "execution_timeout": task_timeout(),
        "on_failure_callback": FailureNotifier(),  # a task's last try only
    },
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Monitor this day (YYYY-MM-DD) instead of the run's data interval.",
        ),
        "html_report": Param(
            None,
            type=["null", "boolean"],
            description="Write Evidently's HTML page (about 13 s); default: "
            "MLOPS_MONITORING_HTML, else true.",
        ),
    },
)
def model_monitoring():
    wait_for_predictions = PredictionLogSensor(
        task_id="wait_for_predictions",
        batch_uri=f"{zone_uri('predictions')}/batch",
        poke_interval=sensor_poke_s(),
        **sensor_mode(),
        timeout=sensor_timeout_s(),
        execution_timeout=None,  # bounded by timeout
        soft_fail=True,  # no log by the timeout (no champion yet): the day is skipped
    )

    # inlets and outlets draw the loop in the UI's asset graph (data dependencies): the day's
    # log is scored_predictions, the labels come from validated_transactions, and a request
    # follows from the day's summary
    @task(
        multiple_outputs=False,
        inlets=[SCORED_PREDICTIONS, VALIDATED_TRANSACTIONS],
        outlets=[MODEL_MONITORING],
    )
    def decide(*, outlet_events=None, **context) -> dict:
        import os

        from mlops.monitoring.daily import html_wanted, monitor_day
        from mlops.monitoring.reference import ReferenceUnavailable
        from mlops.retraining.decisions import decide_day
        from mlops.settings import load_settings
        from mlops_airflow.context import (
            data_errors_fail_the_task,
            partition_day,
            task_storage_options,
        )

        settings = load_settings()
        options = task_storage_options(settings)
        html = html_wanted(context["params"].get("html_report"), os.environ)
        with data_errors_fail_the_task(ReferenceUnavailable):
            summary = monitor_day(settings, partition_day(context), options, html=html)
        outlet_events[MODEL_MONITORING].extra = summary.to_xcom()
        active = context["ti"].get_dr_count(dag_id="model_training", states=["queued", "running"])
        result = decide_day(settings, summary.day, options, training_active=active > 0)
        return result.to_xcom()

    @task.branch
    def route_decision(decision: dict) -> str | None:
        routes = {"retrain": "request_retraining", "rollback": "request_rollback"}
        return routes.get(decision["action"])

    @task(inlets=[MODEL_MONITORING], outlets=[RETRAIN_REQUEST])
    def request_retraining(decision: dict, *, outlet_events=None) -> None:
        from mlops.training.requests import retrain_request

        outlet_events[RETRAIN_REQUEST].extra = retrain_request(decision)

    @task(inlets=[MODEL_MONITORING], outlets=[ROLLBACK_REQUEST])
    def request_rollback(decision: dict, *, outlet_events=None) -> None:
        from mlops.deployment.events import rollback_event

        outlet_events[ROLLBACK_REQUEST].extra = rollback_event(decision)

    decision = decide()
    wait_for_predictions >> decision
    route_decision(decision) >> [request_retraining(decision), request_rollback(decision)]


model_monitoring()
