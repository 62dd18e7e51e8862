"""### transactions_daily

One partition of card transactions a day, from landing to validated data, to the day's
features offline and online.

1. **wait_for_landing_partition**: a deferrable sensor waits for
   `<landing>/date=YYYY-MM-DD/_SUCCESS` (local folder or `s3://`); it fails naming the
   partition when the producer is later than the timeout (`MLOPS_SENSOR_TIMEOUT_S`).
2. **validate_partition**: ingests, then validates. Ingesting reads every file of the day
   (Parquet or CSV), normalises types, keeps the file and row of each record, and publishes
   `raw/date=YYYY-MM-DD` atomically; unreadable files are copied to the quarantine, and
   landing is never changed. Then the Great Expectations suite splits the rows into
   `validated/date=...` and `quarantine/date=...` (with the failed rules per row), writes
   `reports/validation/date=....json` and the Data Docs under `docs/validation/`. A batch
   with a broken schema or too many bad rows is quarantined whole and the task fails. One
   task, not two: a retry re-ingests (an atomic replace of the same partition), and each
   task start costs about a second of scheduling on the laptop profile.
3. **wait_for_earlier_days**: a deferrable sensor waits for the validated partitions of the
   37 days before D that the feature windows read (none before `MLOPS_HISTORY_START`). In a
   scheduled run they are long there; in a backfill, days run side by side and each day's
   features start once the days before it are validated. It fails on the sensor timeout,
   naming the days that never came: no window is computed over a gap.
4. **materialize_features**: builds, then materialises. Building writes the day's feature
   partition `features/daily/date=...` (the model's 15 inputs, `daily` definition) and the
   day-end snapshots per card and per terminal, `features/snapshots/{customer,terminal}/
   date=...`, from the validated partitions of the 38 days the windows reach. Then the
   Feast definitions of `feature_repo/` are applied (a no-op when unchanged) and the day's
   snapshots, stamped the start of the next day, materialised into the online store
   (SQLite locally, Redis in production). Exact and idempotent per day; a day older than
   one already online is skipped. Redis unreachable: the task fails naming the URL and
   retries (rebuilding the same partitions). One at a time across runs
   (`max_active_tis_per_dag=1`): in a backfill the builds queue too, under a second each.
5. **score_transactions**: scores the day's transactions (features from its offline
   partition, equal to what the online store serves) with the registry's `champion` and,
   during a rollout, the challenger, through the same router as the model service, and
   replaces the day's batch partition of the prediction log
   (`predictions/batch/date=...`, or the PostgreSQL table when `MLOPS_PREDICTION_LOG_URL`
   is set). No champion yet: the task succeeds, reporting that it skipped and why.

**Partitioned by the day**: `CronPartitionTimetable("@daily", run_offset=-1)` gives each
run the day D as its `partition_key` (`partition_date` D 00:00 UTC, no data interval); D's
run is due when D ends. **Produces** the `validated_transactions` asset (event extra: day,
rows, bad rows), the `features` asset (event extra: day, feature rows, snapshot rows,
online store) and the `scored_predictions` asset (event extra: day, status `scored` or
`skipped`, rows, champion version), each event keyed by D, so a rerun of a day is another
event for the same partition (README "How the day travels").
**Backfill by partition range**: `airflow backfill create --dag-id transactions_daily
--from-date D1 --to-date D2` makes one run per day of `[D1, D2]` (partition dates, both
inclusive), with any `--max-active-runs`; `--reprocess-behavior completed` reruns days
already done. Each run processes its own day, so reruns replace the same partitions, and
each day's features wait for the days before it (a 37-day window is no partition range:
the `wait_for_earlier_days` sensor keeps that check). **Rerun**: clear the run, or
`POST /api/v2/dags/transactions_daily/clearDagRuns` with `partition_key` (or
`partition_date_start`/`_end`). **Manual run**: trigger over REST with
`{"logical_date": null, "partition_key": "D"}`, or with the `day` Param. A backfill reaching
past the scheduler's latest day B makes the scheduler run B once more (Airflow 3.3.2; README
"How the day travels"). **Alerts** (README "Alerts"): a task's last failed try, a failed
run, and a run not done `MLOPS_FEATURES_DEADLINE_H` (8) hours after it was queued.
Owner: ml-platform.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronPartitionTimetable, Param, dag, task

from mlops_airflow.alerts import FailureNotifier, deadline_alert
from mlops_airflow.assets import DAY_KEY, FEATURES, SCORED_PREDICTIONS, VALIDATED_TRANSACTIONS
from mlops_airflow.parse_time import (
    daily_run_timeout,
    features_deadline,
    landing_uri,
    partition_run_dates,
    retry_delay,
    sensor_mode,
    sensor_poke_s,
    sensor_timeout_s,
    task_timeout,
    validated_uri,
)
from mlops_airflow.sensors import EarlierPartitionsSensor, LandingPartitionSensor

START, END = partition_run_dates()


@dag(
    # one run a day, its partition key the day; D's run is due when D ends (run_offset=-1)
    schedule=CronPartitionTimetable("@daily", timezone="UTC", run_offset=-1, key_format=DAY_KEY),
    start_date=START,
    end_date=END,
    catchup=True,
    max_active_runs=1,  # scheduled catch-up one day at a time; backfills set their own
    dagrun_timeout=daily_run_timeout(),
    tags=["mlops", "ingestion", "validation", "features"],
    doc_md=__doc__,
    on_failure_callback=FailureNotifier(run=True),
    # From the run's queued time, which for a scheduled run is the end of its day: when the
    # day's data lands (deadline_alert says why not the logical date).
    deadline=deadline_alert("features_online", "the day's features online", features_deadline()),
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
            description="Process this day (YYYY-MM-DD) instead of the run's partition key.",
        )
    },
)
def transactions_daily():
    wait_for_landing_partition = LandingPartitionSensor(
        task_id="wait_for_landing_partition",
        landing_uri=landing_uri(),
        poke_interval=sensor_poke_s(),
        **sensor_mode(),
        timeout=sensor_timeout_s(),
        execution_timeout=None,  # bounded by timeout
    )

    @task(multiple_outputs=False, outlets=[VALIDATED_TRANSACTIONS])
    def validate_partition(*, outlet_events=None, **context) -> dict:
        from mlops.ingestion.landing import LandingFileError, ingest_partition
        from mlops.settings import load_settings
        from mlops.validation.partition import ValidationFailed, validate_partition
        from mlops_airflow.context import (
            data_errors_fail_the_task,
            partition_day,
            task_storage_options,
        )

        settings = load_settings()
        options = task_storage_options(settings)
        with data_errors_fail_the_task(LandingFileError, ValidationFailed):
            ingested = ingest_partition(settings, partition_day(context), options)
            result = validate_partition(settings, ingested.day, options)
        outlet_events[VALIDATED_TRANSACTIONS].extra = {
            "day": result.day,
            "rows": result.good,
            "bad_rows": result.bad,
        }
        outlet_events[VALIDATED_TRANSACTIONS].add_partitions(result.day)
        return {**result.to_xcom(), "ingested": ingested.to_xcom()}

    @task(multiple_outputs=False, outlets=[FEATURES], max_active_tis_per_dag=1)
    def materialize_features(validated: dict, *, outlet_events=None) -> dict:
        from mlops.features.inputs import MissingPartitionError, PartitionDayMismatch
        from mlops.features.pipeline import build_day_features, materialize_day_features
        from mlops.features.snapshots import SnapshotMissingError
        from mlops.settings import ConfigError, load_settings
        from mlops_airflow.context import data_errors_fail_the_task, task_storage_options

        settings = load_settings()
        options = task_storage_options(settings)
        with data_errors_fail_the_task(
            MissingPartitionError, PartitionDayMismatch, SnapshotMissingError, ConfigError
        ):
            features = build_day_features(settings, validated["day"], options).to_xcom()
            result = materialize_day_features(settings, features["day"], options)
        online = result.materialized
        outlet_events[FEATURES].extra = {
            "day": features["day"],
            "rows": features["rows"],
            "customers": online.customers,
            "terminals": online.terminals,
            "online_store": online.online_store,
        }
        outlet_events[FEATURES].add_partitions(features["day"])
        return {**result.to_xcom(), "built": features}

    @task(multiple_outputs=False, outlets=[SCORED_PREDICTIONS])
    def score_transactions(materialized: dict, *, outlet_events=None) -> dict:
        from mlops.features.inputs import MissingPartitionError
        from mlops.scoring.daily import score_day
        from mlops.settings import load_settings
        from mlops_airflow.context import data_errors_fail_the_task, task_storage_options

        settings = load_settings()
        with data_errors_fail_the_task(MissingPartitionError):
            result = score_day(settings, materialized["day"], task_storage_options(settings))
        scored = result.to_xcom()
        outlet_events[SCORED_PREDICTIONS].extra = {
            key: scored[key] for key in ("day", "status", "rows", "champion_version")
        }
        outlet_events[SCORED_PREDICTIONS].add_partitions(result.day)
        return scored

    wait_for_earlier_days = EarlierPartitionsSensor(
        task_id="wait_for_earlier_days",
        validated_uri=validated_uri(),
        poke_interval=sensor_poke_s(),
        **sensor_mode(),
        timeout=sensor_timeout_s(),
        execution_timeout=None,  # bounded by timeout
    )
    validated = validate_partition()
    wait_for_landing_partition >> validated
    materialized = materialize_features(validated)
    wait_for_earlier_days >> materialized
    score_transactions(materialized)


transactions_daily()
