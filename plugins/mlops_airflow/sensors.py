"""Sensors for partition markers, on a local folder or on S3; deferrable by default.

A writer signals that a day's partition is complete with ``<zone>/date=YYYY-MM-DD/_SUCCESS``
after its data files; waiting for the marker, not for any file, never reads a half-written
day (the pipeline's own zones write it last and name in it the version folder that holds the
day's files, ``mlops.io.partitions``; the landing zone's producer writes it empty, after its
files). Four waits use it:

* ``LandingPartitionSensor``: the producer's landing partition of the run's day;
* ``EarlierPartitionsSensor``: the validated partitions of the days before it that the day's
  feature windows read. A backfill runs several days side by side (its ``max_active_runs``
  is its own, not the DAG's), so a day's features wait here, deferred, for the days before
  it rather than failing or computing a window over a gap;
* ``PredictionLogSensor``: the day's batch partition of the prediction log, which monitoring
  reads (with ``MLOPS_PREDICTION_LOG_URL`` the log is a table and has no marker);
* ``ObservedDaysSensor``: a rollout's observed days, a wait that a rollback may call off
  (its abort mark ends the wait through ``mlops_airflow.triggers.AbortableTrigger``).

The day is resolved when the task runs (see ``context.partition_day``), so a manual run
without a logical date works too. The waiting itself is done by the providers' triggers: the
amazon provider's ``S3KeyTrigger`` (what ``S3KeySensor(deferrable=True)`` defers to, through
the Airflow AWS connection, all keys at once) and, for local markers,
``mlops_airflow.triggers.LocalMarkersTrigger``, which ends the task itself once every marker
is there (no worker resumes it). ``ObservedDaysSensor`` waits on the standard provider's
``FileTrigger`` (one file, so a local wait defers once per missing marker, within one
deadline): it resumes to decide. They are imported when the task runs, not when the DAG file
is parsed: importing the amazon provider loads boto3, about a second on every parse. On timeout the task fails naming what never came,
or is skipped with ``soft_fail=True``. With ``deferrable=False`` the sensors are classic ones
(``poke`` in ``mode="poke"`` or ``"reschedule"``, Airflow's own loop and timeout), for a
deployment without a triggerer.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout, AirflowSkipException

from mlops_airflow.context import partition_day

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

MARKER = "_SUCCESS"


def marker_uri(zone_uri: str, day: str) -> str:
    return f"{zone_uri.rstrip('/')}/date={day}/{MARKER}"


class PartitionMarkersSensor(BaseSensorOperator):
    """Wait until every marker that ``markers(context)`` names exists.

    Deferred (the default): ``execute`` pokes once, then defers to the provider's trigger for
    the first missing marker(s); ``execute_complete`` pokes again when it fires, and defers
    again within the same deadline while markers are missing. Not deferred: Airflow's sensor
    loop calls ``poke`` (``mode="poke"`` holds the worker slot, ``"reschedule"`` frees it).
    ``soft_fail`` turns a timeout into a skip on both paths.

    :param aws_conn_id: Airflow connection used for ``s3://`` markers.
    :param deferrable: wait in the triggerer rather than in a worker slot (default True:
        a day's data may take hours to land).
    """

    what = "partition markers"
    remedy = "write the partitions, then clear this task"
    # local markers: the trigger ends the task once all are there, no worker resumes it
    # (mlops_airflow.triggers.LocalMarkersTrigger); a sensor that decides more on resuming
    # keeps the provider's trigger
    ends_in_triggerer = True

    def __init__(self, *, aws_conn_id: str = "aws_default", deferrable: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.deferrable = deferrable

    @abstractmethod
    def markers(self, context: Context) -> list[str]:
        """The markers to wait for, resolved for this run."""

    def missing(self, context: Context) -> list[str]:
        markers = self.markers(context)
        self.log.info("Looking for %d marker(s): %s", len(markers), ", ".join(markers))
        if not markers or not markers[0].startswith("s3://"):
            import os

            return [marker for marker in markers if not os.path.isfile(marker)]
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook = S3Hook(aws_conn_id=self.aws_conn_id)  # one connection lookup per poke
        locations = [(marker, *S3Hook.parse_s3_url(marker)) for marker in markers]
        return [m for m, bucket, key in locations if not hook.check_for_key(key, bucket)]

    def check_aborted(self, context: Context) -> None:
        """Raise ``AirflowSkipException`` when the wait was called off (none by default)."""

    def poke(self, context: Context) -> bool:
        self.check_aborted(context)
        return not self.missing(context)

    def execute(self, context: Context) -> None:
        if self.deferrable:
            self._wait(context, deadline=None)
            return
        try:
            super().execute(context)  # the poke loop: mode, timeout, soft_fail, backoff
        except AirflowSensorTimeout as err:
            raise AirflowSensorTimeout(self._timeout_message(self.missing(context))) from err

    def _wait(self, context: Context, deadline: datetime | None) -> None:
        self.check_aborted(context)
        missing = self.missing(context)
        if not missing:
            self.log.info("All %s are present", self.what)
            return
        now = datetime.now(UTC)
        deadline = deadline or now + timedelta(seconds=self.timeout)
        if now >= deadline:
            message = self._timeout_message(missing)
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        self.log.info("Waiting for %d missing: %s", len(missing), ", ".join(missing))
        if self.ends_in_triggerer and not missing[0].startswith("s3://"):
            from mlops_airflow.triggers import LocalMarkersTrigger

            trigger = LocalMarkersTrigger(missing, poke_interval=self.poke_interval)
        else:
            trigger = self._trigger(context, missing, deadline)
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            kwargs={"deadline": deadline.isoformat()},
            timeout=deadline - now,
        )

    def _trigger(
        self, context: Context, markers: list[str], deadline: datetime | None = None
    ) -> BaseTrigger:
        """The provider's trigger for ``markers`` (all on S3, or the first local one)."""
        if markers[0].startswith("s3://"):
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook
            from airflow.providers.amazon.aws.triggers.s3 import S3KeyTrigger

            locations = [S3Hook.parse_s3_url(marker) for marker in markers]
            return S3KeyTrigger(
                bucket_name=locations[0][0],
                bucket_key=[key for _, key in locations],
                aws_conn_id=self.aws_conn_id,
                poke_interval=self.poke_interval,
            )
        from airflow.providers.standard.triggers.file import FileTrigger

        return FileTrigger(filepath=markers[0], poke_interval=self.poke_interval)

    def execute_complete(
        self, context: Context, event: Any = None, deadline: str | None = None
    ) -> None:
        if isinstance(event, dict) and event.get("status") == "error":
            raise AirflowException(f"waiting for the {self.what} failed: {event['message']}")
        self._wait(context, datetime.fromisoformat(deadline) if deadline else None)

    def _timeout_message(self, missing: list[str]) -> str:
        return (
            f"{self.what} not complete: {', '.join(missing)} did not appear within "
            f"{self.timeout:.0f} s; {self.remedy}"
        )

    def resume_execution(self, next_method: str, next_kwargs: Any, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout as err:
            raise AirflowSensorTimeout(self._timeout_message(self.missing(context))) from err

    def _start_in_triggerer(self, kind: str, zone_uri: str) -> None:
        """Deferred on a local zone: the scheduler defers the task straight to
        ``RunMarkersTrigger`` (``start_from_trigger``), so waiting costs no worker start at
        all. S3 and templated zones keep the worker path (a connection, a rendering)."""
        if not self.deferrable or zone_uri.startswith("s3://") or "{{" in zone_uri:
            return
        from airflow.triggers.base import StartTriggerArgs

        self.start_from_trigger = True
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls="mlops_airflow.triggers.RunMarkersTrigger",
            trigger_kwargs={
                "kind": kind,
                "zone_uri": zone_uri,
                "poke_interval": float(self.poke_interval),
            },
            next_method="execute_complete",  # on a timeout only: it fails naming the markers
            timeout=timedelta(seconds=self.timeout),
        )


def run_markers(kind: str, zone_uri: str, context: Context) -> list[str]:
    """The markers a run waits for: its day's (``"day"``), or those of the earlier days its
    feature windows read (``"earlier_days"``)."""
    day = partition_day(context)
    if kind == "day":
        return [marker_uri(zone_uri, day)]
    if kind != "earlier_days":
        raise ValueError(f"unknown kind of markers {kind!r}")
    from mlops.features.inputs import earlier_input_days
    from mlops.settings import load_settings

    settings = load_settings()
    days = earlier_input_days(day, settings.label_delay_days, settings.history_start)
    return [marker_uri(zone_uri, earlier.isoformat()) for earlier in days]


class LandingPartitionSensor(PartitionMarkersSensor):
    """Wait, deferred, until the day's landing partition is marked complete.

    :param landing_uri: landing folder or ``s3://bucket/prefix``; the day's marker is
        ``date=<day>/_SUCCESS`` under it. (templated)
    """

    template_fields = ("landing_uri",)
    what = "landing partition"
    remedy = f"land the day's files and its {MARKER} marker, then clear this task"

    def __init__(self, *, landing_uri: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.landing_uri = landing_uri
        self._start_in_triggerer("day", landing_uri)

    def markers(self, context: Context) -> list[str]:
        return run_markers("day", self.landing_uri, context)


class EarlierPartitionsSensor(PartitionMarkersSensor):
    """Wait, deferred, until the validated partitions that the day's feature windows read
    from earlier days are published (days before ``MLOPS_HISTORY_START`` excepted).

    :param validated_uri: the validated zone, folder or ``s3://``. (templated)
    """

    template_fields = ("validated_uri",)
    what = "validated partitions of the earlier days"
    remedy = (
        "run (or fix and re-run) transactions_daily for those days, or set "
        "MLOPS_HISTORY_START if the data set starts later; then clear this task"
    )

    def __init__(self, *, validated_uri: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.validated_uri = validated_uri
        self._start_in_triggerer("earlier_days", validated_uri)

    def markers(self, context: Context) -> list[str]:
        return run_markers("earlier_days", self.validated_uri, context)


class ObservedDaysSensor(PartitionMarkersSensor):
    """Wait, deferred, until a rollout's observed data days are scored (and, to judge on
    matured labels, until the data clock reaches the day their labels are known), then, to
    judge its quality, one more data day at a time until its matured rows hold enough
    frauds or its deadline passes (``mlops.deployment.maturity``: each look works out again
    which day's markers are missing, so the wait moves on a day whenever one is scored);
    unless a rollback aborts the rollout first: model_rollback writes an abort mark for this
    run (``mlops.deployment.rollback``), the trigger fires on it as on the markers
    (``AbortableTrigger``), and the task is skipped, the mark kept in the rollout's evidence.

    :param plan_task_id: the task whose XCom is the deployment plan (its days).
    """

    what = "observed days of the rollout"
    ends_in_triggerer = False  # it resumes to look again at the observation and the abort
    remedy = "run transactions_daily for those days (it scores them), then clear this task"

    def __init__(self, *, plan_task_id: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id

    def _plan(self, context: Context) -> Any:
        from mlops.deployment.plan import DeploymentPlan

        return DeploymentPlan.from_xcom(context["ti"].xcom_pull(task_ids=self.plan_task_id))

    def markers(self, context: Context) -> list[str]:
        from mlops.deployment.maturity import observe
        from mlops.settings import load_settings
        from mlops_airflow.context import task_storage_options

        settings = load_settings()
        seen = observe(settings, self._plan(context), task_storage_options(settings))
        if seen.concluded:
            self.log.info("Observation %s: %s", seen.status, seen.to_dict())
        return list(seen.missing)

    def check_aborted(self, context: Context) -> None:
        from mlops.deployment.rollback import aborted_rollout
        from mlops.settings import load_settings
        from mlops_airflow.context import task_storage_options

        settings = load_settings()
        options = task_storage_options(settings)
        mark = aborted_rollout(settings, self._plan(context), context["run_id"], options)
        if mark is not None:
            raise AirflowSkipException(f"rollout aborted by {mark['aborted_by']}: {mark['reason']}")

    def _trigger(
        self, context: Context, markers: list[str], deadline: datetime | None = None
    ) -> BaseTrigger:
        from mlops.deployment.rollback import abort_mark_uri
        from mlops.settings import load_settings
        from mlops_airflow.triggers import AbortableTrigger

        mark = abort_mark_uri(load_settings(), context["run_id"])
        return AbortableTrigger(
            wait=super()._trigger(context, markers).serialize(),
            abort=super()._trigger(context, [mark]).serialize(),
            deadline=deadline.isoformat() if deadline else None,
        )


class PredictionLogSensor(PartitionMarkersSensor):
    """Wait, deferred, until the day's batch partition of the prediction log is published.

    :param batch_uri: ``<data root>/predictions/batch``, folder or ``s3://``. (templated)
    """

    template_fields = ("batch_uri",)
    what = "batch prediction log partition"
    remedy = "run transactions_daily's score_transactions for the day, then clear this task"

    def __init__(self, *, batch_uri: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.batch_uri = batch_uri
        self._start_in_triggerer("day", batch_uri)

    def markers(self, context: Context) -> list[str]:
        return run_markers("day", self.batch_uri, context)
