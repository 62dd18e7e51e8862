"""``alert_on_failure``: the ``on_failure_callback`` of tasks whose failure a person must hear
about at once (a rollback that did not happen). Airflow calls it once, after the last try
(``on_retry_callback`` is the one for the tries before), with the task's context; the alert
itself (ERROR log, JSON under ``alerts/``, the ``MLOPS_ALERT_WEBHOOK_URL`` POST) is
``mlops.alerts.send_alert``.
"""

from __future__ import annotations

from typing import Any


def alert_on_failure(context: Any) -> None:
    import os

    from mlops.alerts import Alert, send_alert
    from mlops.settings import load_settings
    from mlops_airflow.context import task_storage_options, wall_clock

    ti = context["ti"]
    alert = Alert(
        summary=f"{ti.dag_id}.{ti.task_id} failed after {ti.try_number} tries",
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        try_number=ti.try_number,
        error=repr(context.get("exception")),
        recorded_at=wall_clock(),
        details={"params": dict(context.get("params") or {})},
    )
    settings = load_settings()
    send_alert(
        settings,
        alert,
        task_storage_options(settings),
        webhook_url=os.environ.get("MLOPS_ALERT_WEBHOOK_URL") or None,
    )
