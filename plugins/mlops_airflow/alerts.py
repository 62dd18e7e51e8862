"""How Airflow's failures and missed deadlines reach ``mlops.alerts.send_alert`` (an ERROR
log, a JSON under the data root's ``alerts/``, a POST to the settings' ``alert_webhook_url``).

- ``FailureNotifier()`` is every task's ``on_failure_callback`` (in each DAG's
  ``default_args``): Airflow calls it once, after the last try (``on_retry_callback`` is the
  one for the tries before), in the worker process that ran the try, with the task's context;
  should the dag-processor run it again for that try, ``send_alert`` sends it once (its key).
- ``FailureNotifier(run=True)`` is every DAG's own ``on_failure_callback``: a run that failed,
  by a task or by its ``dagrun_timeout``. Airflow 3.3 runs it in the dag-processor with the
  context of the task that failed the run and a ``reason`` (``dag.test()`` runs it in line).
- ``deadline_alert`` declares a DAG's deadline; when the run is not done by then, the
  scheduler hands ``deadline_missed`` to the executor (a ``SyncCallback``), which runs it in a
  process of its own with ``context={"dag_run": <the run as the REST API shows it>,
  "deadline": {"id", "deadline_time"}}`` and the callback's kwargs.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier, DeadlineAlert, DeadlineReference, SyncCallback

if TYPE_CHECKING:
    from mlops.alerts import Alert

log = logging.getLogger(__name__)


class FailureNotifier(BaseNotifier):
    """Alert on a task's last failed try, or (``run=True``) on a failed DAG run."""

    def __init__(self, *, run: bool = False) -> None:
        super().__init__()
        self.run = run

    def notify(self, context: Any) -> None:
        deliver(run_failed(context) if self.run else task_failed(context))

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to render; and under ``dag.test()`` a run's callback gets the scheduler's
        ``SerializedDAG``, which has no template environment to render with (Airflow 3.3.2)."""


def task_failed(context: Any) -> Alert:
    from mlops.alerts import Alert
    from mlops_airflow.context import wall_clock

    ti = context["ti"]
    return Alert(
        summary=f"{ti.dag_id}.{ti.task_id} failed after {ti.try_number} tries",
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        try_number=ti.try_number,
        error=repr(context.get("exception")),
        recorded_at=wall_clock(),
        details={"params": dict(context.get("params") or {})},
    )


def run_failed(context: Any) -> Alert:
    """The context has the task that failed the run when Airflow knows it (``ti``), else only
    the DAG and the run id; ``reason`` says why it failed (``task_failure``, ``timed_out``)."""
    from mlops.alerts import RUN_FAILED, Alert
    from mlops_airflow.context import wall_clock

    dag_id, reason = context["dag"].dag_id, str(context.get("reason"))
    ti = context.get("ti")
    return Alert(
        summary=f"{dag_id} run failed: {reason}",
        dag_id=dag_id,
        task_id="",
        run_id=context["run_id"],
        try_number=0,
        error=reason,
        recorded_at=wall_clock(),
        details={"failed_task": ti.task_id if ti is not None else None},
        kind=RUN_FAILED,
    )


def deadline_alert(name: str, deadline: str, interval: timedelta | None) -> DeadlineAlert | None:
    """``deadline`` (what must be done, for the alert's summary) ``interval`` after the run
    was queued; no deadline when ``interval`` is None (turned off).

    Queued, not the logical date: a scheduled run is queued when its data interval ends,
    which is when the day's data lands, so the two agree for the live day; but a catch-up,
    a demo's simulated days or a manual re-run of an old day would have missed a deadline
    counted from its logical date before it began. ``DAGRUN_QUEUED_AT`` is evaluated when
    Airflow creates the run; a run that succeeds before it has its deadline deleted."""
    if interval is None:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval,
        callback=SyncCallback(deadline_missed, kwargs={"deadline": deadline}),
        name=name,
    )


def deadline_missed(deadline: str, context: dict[str, Any]) -> None:
    """The ``SyncCallback`` of ``deadline_alert``. A backfill's runs are skipped: they are all
    queued when the backfill is created and run a few at a time, so a day's place in the
    queue, not its lateness, would decide."""
    from mlops.alerts import DEADLINE_MISSED, Alert
    from mlops_airflow.context import wall_clock

    run, missed = context.get("dag_run") or {}, context.get("deadline") or {}
    if run.get("run_type") == "backfill":
        log.warning(
            "%s: backfill run %s missed: %s", run.get("dag_id"), run.get("dag_run_id"), deadline
        )
        return
    deliver(
        Alert(
            summary=f"{run.get('dag_id')} missed its deadline: {deadline}",
            dag_id=str(run.get("dag_id")),
            task_id="",
            run_id=str(run.get("dag_run_id")),
            try_number=0,
            error=f"not done by {missed.get('deadline_time')} (run {run.get('state')})",
            recorded_at=wall_clock(),
            details={
                "deadline": deadline,
                "deadline_time": str(missed.get("deadline_time")),
                "queued_at": run.get("queued_at"),
                "data_interval_end": run.get("data_interval_end"),
                "partition_key": run.get("partition_key"),  # the day of a partitioned run
                "run_type": run.get("run_type"),
            },
            kind=DEADLINE_MISSED,
        )
    )


def deliver(alert: Alert) -> None:
    from mlops.alerts import send_alert
    from mlops.settings import load_settings
    from mlops_airflow.context import task_storage_options

    settings = load_settings()
    send_alert(settings, alert, task_storage_options(settings))
