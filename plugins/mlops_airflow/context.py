"""Task-time helpers that turn an Airflow context into the plain inputs of ``mlops``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any


def partition_day(context: Any) -> str:
    """The ``YYYY-MM-DD`` day a run processes.

    A ``day`` param wins (manual re-processing from the UI). A partitioned run (scheduled,
    backfilled or triggered with a ``partition_key``) processes its key, the day. Runs with a
    data interval use its start. Manual or asset-triggered runs may have no logical date at
    all in Airflow 3, and a manual run of a partitioned DAG without a key gets an empty
    interval at ``run_after`` (a cron trigger's): they take the last complete day before
    ``run_after``.
    """
    params = context.get("params") or {}
    if params.get("day"):
        return str(params["day"])
    if key := context.get("partition_key"):
        return _day_key(key)
    start = context.get("data_interval_start")
    if start is not None and start != context.get("data_interval_end"):
        return start.strftime("%Y-%m-%d")
    run_after = context["dag_run"].run_after
    return (run_after - timedelta(days=1)).strftime("%Y-%m-%d")


def _day_key(key: str) -> str:
    """A partition key that must be a day, ``YYYY-MM-DD`` (the daily DAGs' keys)."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return date.fromisoformat(key).isoformat()
    except ValueError:
        raise AirflowFailException(f"partition key {key!r} is not a day (YYYY-MM-DD)") from None


def storage_options(uri: str, aws_conn_id: str) -> dict[str, Any]:
    """fsspec options for ``uri``: for ``s3://`` the credentials and endpoint of the
    Airflow AWS connection, so tasks use the same identity as the S3 sensor."""
    if not uri.startswith("s3://"):
        return {}
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from mlops.io.storage import s3_options

    hook = S3Hook(aws_conn_id=aws_conn_id)
    credentials = hook.get_credentials()
    return s3_options(
        endpoint_url=hook.conn_config.endpoint_url,
        key=credentials.access_key,
        secret=credentials.secret_key,
        region=hook.conn_region_name,
        token=credentials.token,
    )


def task_storage_options(settings: Any) -> dict[str, Any]:
    """The storage options every stage entry of a task takes: those of the data root."""
    return storage_options(settings.data_root, settings.aws_conn_id)


@contextmanager
def data_errors_fail_the_task(*errors: type[Exception]) -> Iterator[None]:
    """Bad data will not fix itself on retry: fail at once with the message as it is."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except errors as err:
        raise AirflowFailException(str(err)) from err


def _triggering_extras(context: Any) -> list[dict[str, Any]]:
    """The extras of the asset events that triggered the run (none for other runs); an event
    seen through an asset alias as well is listed under both keys, hence the de-duplication."""
    events = context.get("triggering_asset_events") or {}
    extras: list[dict[str, Any]] = []
    for found in events.values():
        for event in found:
            if (extra := dict(event.extra or {})) not in extras:
                extras.append(extra)
    return extras


def triggering_day(context: Any) -> date | None:
    """The latest ``day`` carried by the triggering events' extras, if any: an asset-triggered
    run has no logical date, and the simulated clock travels in the event."""
    from mlops.training.requests import requested_day

    return requested_day(_triggering_extras(context))


def triggering_reason(context: Any) -> str:
    """The triggering events' days and reasons, one line (for the decision record)."""
    from mlops.training.requests import requested_reason

    return requested_reason(_triggering_extras(context))


def answers_retrain_request(context: Any) -> bool:
    """Whether the run was woken by a retrain request carrying a day: such a run reuses the
    decision of another run that answered the same request (``mlops.training.claims``)."""
    return triggering_day(context) is not None


def as_of_day(context: Any) -> date:
    """The point in time of a training run: the ``day`` of the asset event that triggered it,
    else its logical date, else (manual without a date) the moment the run was due."""
    if (day := triggering_day(context)) is not None:
        return day
    moment = context.get("logical_date") or context["dag_run"].run_after
    return date(moment.year, moment.month, moment.day)


def run_context(context: Any, day: date) -> Any:
    """The run's identity in MLflow (``mlops.registry.tracking.RunContext``): a rerun of the
    same DAG and day replaces its run and model version."""
    from mlops.registry.tracking import RunContext

    return RunContext(context["dag"].dag_id, day, context["run_id"])


def training_request(
    params: Any, day: date, settings: Any, triggered_by: str = "", context: Any = None
) -> Any:
    """The run's validated Params as an ``mlops.training.job.TrainingRequest``; without a
    ``reason`` Param, the triggering events' reasons (``triggering_reason``) are kept, and
    without a ``breach_since`` Param, the triggering request's (a retrain after a breach)."""
    from mlops.training.requests import requested_breach_since
    from mlops.training.requests import training_request as request

    since = requested_breach_since(_triggering_extras(context)) if context is not None else None
    return request(params, day, settings.label_delay_days, triggered_by, since)


def wall_clock() -> str:
    """Now, for the audit trail of a record (never for the data's own time)."""
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def _triggering_events(context: Any) -> list[Any]:
    """The asset events that triggered the run, as ``mlops.deployment.events.TriggeringEvent``
    (none for other runs), in the order Airflow lists them (emission order)."""
    from mlops.deployment.events import TriggeringEvent

    events = context.get("triggering_asset_events") or {}
    found = []
    for key, listed in events.items():
        for event in listed:
            asset = getattr(event, "asset", None)
            source = getattr(event, "source_dag_id", None)
            if source and getattr(event, "source_run_id", None):
                source = f"{source}/{event.source_run_id}"
            found.append(
                TriggeringEvent(
                    asset=getattr(asset, "name", None) or getattr(key, "name", str(key)),
                    extra=dict(event.extra or {}),
                    emitted_at=getattr(event, "timestamp", None),
                    source=source,
                )
            )
    return found


def triggering_choice(context: Any) -> Any:
    """The triggering event the run acts on and those it supersedes
    (``mlops.deployment.events.choose_event``: the newest day, then the newest event)."""
    from mlops.deployment.events import choose_event

    return choose_event(_triggering_events(context))


def run_actor(context: Any) -> str:
    """``dag_id/run_type`` (``model_rollback/asset_triggered``): the run type is a str enum,
    which Python 3.11 formats as ``DagRunType.ASSET_TRIGGERED``, hence its value."""
    run_type = context["dag_run"].run_type
    return f"{context['dag'].dag_id}/{getattr(run_type, 'value', run_type)}"


def _chosen_request(context: Any, build: Any) -> Any:
    """``build`` (a request maker of ``mlops.deployment``) on the run's Params, the extra of
    the triggering event chosen among those that queued (``triggering_choice``; the others
    kept as superseded) and the run's own date as the fallback day."""
    choice = triggering_choice(context)
    return build(
        context["params"],
        choice.extra,
        fallback_day=as_of_day(context),
        actor=run_actor(context),
        run_id=context["run_id"],
        superseded=choice.superseded_records(),
    )


def deployment_request(context: Any) -> Any:
    """The run's ``mlops.deployment.plan.DeploymentRequest``: Params win, then the extra
    (version, day) of the chosen ``candidate_model`` event, then the run's own date."""
    from mlops.deployment.plan import deployment_request as request

    return _chosen_request(context, request)


def rollback_request(context: Any) -> Any:
    """model_rollback's request (``mlops.deployment.rollback.rollback_request``): Params win,
    then the chosen ``rollback_request`` event's extra (day, version, reason), then the run's
    own date."""
    from mlops.deployment.rollback import rollback_request as request

    return _chosen_request(context, request)


def approval_of(ti: Any, task_id: str) -> Any:
    """The HITL response pushed by an approval task (``mlops.deployment.run.Approval``;
    empty when nobody was asked)."""
    from mlops.deployment.run import Approval

    response = ti.xcom_pull(task_ids=task_id)
    if not response:
        return Approval()
    user = response.get("responded_by_user") or {}
    at = response.get("responded_at")
    comment = (response.get("params_input") or {}).get("comment")
    return Approval(
        by=user.get("name") or user.get("id"),
        at=at.isoformat() if hasattr(at, "isoformat") else at,
        comment=comment,
    )
