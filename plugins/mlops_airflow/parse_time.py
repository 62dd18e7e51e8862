"""What DAG files need to know when they are parsed, from the environment alone.

Facts fixed for a whole installation of the project (nothing to do with model deployment).

Only environment variables are read here (cheap, no I/O): the landing and data locations
that sensors and Asset URIs are built from, the calendar of the data set, the bounds on
every wait and every run (sensor timeouts, task and DAG-run timeouts), the model families
of the training form. Everything else comes from
``mlops.settings.load_settings()`` when a task runs. The defaults are ``mlops``'s own: the
modules imported from it here (settings, zones, training.families) import nothing heavy,
which tests/dags checks by importing each DAG file in a fresh interpreter.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum

from mlops import zones
from mlops.settings import HISTORY_START, default_data_root, default_landing_uri
from mlops.training.families import DEFAULT_FAMILY, FAMILIES

DEFAULT_START_DATE = HISTORY_START.isoformat()
# The choices of model_training's ``family`` Param (light: no scikit-learn behind them).
MODEL_FAMILIES: list[str] = list(FAMILIES)
DEFAULT_MODEL_FAMILY = DEFAULT_FAMILY


def data_root() -> str:
    return default_data_root(os.environ)


def landing_uri() -> str:
    return default_landing_uri(os.environ)


def validated_uri() -> str:
    return zone_uri(zones.VALIDATED)


def zone_uri(name: str) -> str:
    """URI of a zone (one of ``mlops.zones.ZONES``) under the data root."""
    return zones.zone_uri(data_root(), name)


def _date(variable: str, default: str | None) -> pendulum.DateTime | None:
    value = os.environ.get(variable) or default
    return pendulum.parse(value, tz="UTC") if value else None


def schedule_start() -> pendulum.DateTime:
    """First data interval of the daily DAGs (the data set's first day)."""
    return _date("MLOPS_START_DATE", DEFAULT_START_DATE)


def schedule_end() -> pendulum.DateTime | None:
    """Last day to schedule, so that catchup stops where a finite data set ends."""
    return _date("MLOPS_END_DATE", None)


def partition_run_dates() -> tuple[pendulum.DateTime, pendulum.DateTime | None]:
    """``start_date`` and ``end_date`` of a daily DAG on ``CronPartitionTimetable("@daily",
    run_offset=-1)``: day D's run is due when D ends (D+1 00:00), so the run dates are one
    day after the first and last days (``MLOPS_START_DATE``, ``MLOPS_END_DATE``)."""
    end = schedule_end()
    return schedule_start().add(days=1), end.add(days=1) if end else None


def sensor_timeout_s() -> int:
    """How long the landing sensor waits for a day before it fails (6 h by default)."""
    return int(os.environ.get("MLOPS_SENSOR_TIMEOUT_S") or 6 * 3600)


def _seconds(variable: str, default: timedelta) -> timedelta:
    value = os.environ.get(variable)
    return timedelta(seconds=float(value)) if value else default


# Bounds on every task and every run: a hung call fails its try (and is retried) instead of
# holding a worker slot, and a run that cannot finish gives way to the next one. A sensor is
# bounded by its own ``timeout`` instead (an ``execution_timeout`` would cut its deferral short).
TASK_TIMEOUT = timedelta(minutes=30)  # a day's task takes minutes
TRAINING_TIMEOUT = timedelta(hours=3)  # Feast's historical retrieval, fit, gate
APPROVAL_TIMEOUT = timedelta(days=2)  # a human's answer to a rollout (then: reject)
REVIEW_TIMEOUT = timedelta(hours=24)  # a human's review of a needs_review candidate
DECISION_TIMEOUT = timedelta(days=2)  # a human's call on a canary unjudged by its deadline
OBSERVATION_TIMEOUT = timedelta(days=120)  # a rollout's observed data days
RUN_WORK = timedelta(hours=6)  # a run's tasks, retries included, besides its waits
ROLLBACK_TIMEOUT = timedelta(minutes=5)  # a rollback's task: a few registry calls
ROLLBACK_RETRIES = 3


def task_timeout() -> timedelta:
    """``execution_timeout`` of a task (``MLOPS_TASK_TIMEOUT_S``, 30 min by default)."""
    return _seconds("MLOPS_TASK_TIMEOUT_S", TASK_TIMEOUT)


def training_timeout() -> timedelta:
    """``execution_timeout`` of the training tasks (``MLOPS_TRAINING_TIMEOUT_S``, 3 h)."""
    return _seconds("MLOPS_TRAINING_TIMEOUT_S", TRAINING_TIMEOUT)


def daily_run_timeout() -> timedelta:
    """``dagrun_timeout`` of a daily DAG: its sensor's wait, then the day's work."""
    return timedelta(seconds=sensor_timeout_s()) + RUN_WORK


def review_timeout() -> timedelta:
    """How long model_training's review of a ``needs_review`` candidate waits for an answer
    before it counts as a rejection (``MLOPS_REVIEW_TIMEOUT_H``, hours, 24 by default). The
    run, and the retrain requests queued behind it (``max_active_runs=1``), wait that long."""
    return _positive_hours("MLOPS_REVIEW_TIMEOUT_H", REVIEW_TIMEOUT)


def rollout_decision_timeout() -> timedelta:
    """How long model_deployment waits for a person to decide a canary whose quality could
    not be judged by its deadline, before it counts as a rejection (rolled back):
    ``MLOPS_ROLLOUT_DECISION_TIMEOUT_H``, hours, 48 by default."""
    return _positive_hours("MLOPS_ROLLOUT_DECISION_TIMEOUT_H", DECISION_TIMEOUT)


def _positive_hours(variable: str, default: timedelta) -> timedelta:
    """A positive number of hours from ``variable``, else ``default``."""
    value = os.environ.get(variable, "").strip()
    hours = float(value) if value else default.total_seconds() / 3600
    if not hours > 0:
        raise ValueError(f"{variable} must be a positive number of hours, got {value!r}")
    return timedelta(hours=hours)


def training_run_timeout() -> timedelta:
    """``dagrun_timeout`` of model_training: two training tasks, each with a retry, the
    review's wait, and room."""
    return 4 * training_timeout() + review_timeout() + RUN_WORK


def deployment_run_timeout() -> timedelta:
    """``dagrun_timeout`` of model_deployment: an approval, the observed days, a decision,
    then the work."""
    return APPROVAL_TIMEOUT + OBSERVATION_TIMEOUT + rollout_decision_timeout() + RUN_WORK


def retry_delay(default: timedelta) -> timedelta:
    """Between the tries of a DAG's tasks: the DAG's own ``default``, or ``MLOPS_RETRY_DELAY_S``
    for every DAG but model_rollback (which has its own). A try lost with its worker is
    failed after the heartbeat timeout, then waits this long before it runs again."""
    return _seconds("MLOPS_RETRY_DELAY_S", default)


def rollback_retry_delay() -> timedelta:
    """Between the tries of a rollback's task (``MLOPS_ROLLBACK_RETRY_DELAY_S``, 30 s)."""
    return _seconds("MLOPS_ROLLBACK_RETRY_DELAY_S", timedelta(seconds=30))


def rollback_run_timeout() -> timedelta:
    """``dagrun_timeout`` of model_rollback: its two tasks, every try with its delay."""
    return 2 * (ROLLBACK_RETRIES + 1) * (ROLLBACK_TIMEOUT + rollback_retry_delay())


# Deadlines (mlops_airflow.alerts.deadline_alert), counted from when a daily run is queued:
# the end of its data interval, when the day's data lands. The day's features are normally
# online within the hour; the landing sensor may wait up to 6 h for late data. A monitoring
# run judges day D from the start of D+1: by the end of D+1.
FEATURES_DEADLINE = timedelta(hours=8)
MONITORING_DEADLINE = timedelta(hours=24)


def _hours(variable: str, default: timedelta) -> timedelta | None:
    """Hours; ``off`` (or ``0``): no deadline alert at all."""
    value = os.environ.get(variable, "").strip().lower()
    if value in ("off", "0"):
        return None
    return timedelta(hours=float(value)) if value else default


def features_deadline() -> timedelta | None:
    """transactions_daily: the day's features online this long after the run is queued
    (``MLOPS_FEATURES_DEADLINE_H``, 8 h)."""
    return _hours("MLOPS_FEATURES_DEADLINE_H", FEATURES_DEADLINE)


def monitoring_deadline() -> timedelta | None:
    """model_monitoring: the day judged this long after the run is queued
    (``MLOPS_MONITORING_DEADLINE_H``, 24 h: by the end of D+1)."""
    return _hours("MLOPS_MONITORING_DEADLINE_H", MONITORING_DEADLINE)


def sensor_mode() -> dict[str, object]:
    """How the daily partition sensors wait (``MLOPS_SENSOR_MODE``): ``deferrable`` (the
    default: in the triggerer, no worker slot held for hours), or ``poke`` (in a worker slot,
    looking every ``MLOPS_SENSOR_POKE_S``: on a laptop whose days land seconds apart this
    ends a wait at once instead of at the triggerer's next one-second sync; it needs
    executor slots for the waiting sensors beside the work) or ``reschedule``."""
    mode = (os.environ.get("MLOPS_SENSOR_MODE") or "deferrable").strip().lower()
    if mode == "deferrable":
        return {"deferrable": True}
    if mode in ("poke", "reschedule"):
        return {"deferrable": False, "mode": mode}
    raise ValueError(f"MLOPS_SENSOR_MODE must be deferrable, poke or reschedule, got {mode!r}")


def sensor_poke_s() -> float:
    """Seconds between a sensor's looks (its trigger's, when deferred); fractions allowed."""
    return float(os.environ.get("MLOPS_SENSOR_POKE_S") or 30)


def training_cron() -> str | None:
    """model_training's own schedule besides the ``retrain_request`` asset (weekly by
    default); ``MLOPS_TRAINING_CRON=""`` leaves only the asset (the closed-loop demo, where
    the monitoring policy alone asks for retraining)."""
    value = os.environ.get("MLOPS_TRAINING_CRON", "0 3 * * 1")
    return value.strip() or None


def rollout_default(name: str, default: str) -> str:
    """A default of model_deployment's Params (what an asset-triggered rollout uses):
    ``MLOPS_ROLLOUT_STRATEGY``, ``_CANARY_SHARE``, ``_OBSERVATION_DAYS``,
    ``_WAIT_FOR_LABELS``, ``_JUDGE_QUALITY``, ``_QUALITY_DEADLINE_DAYS``."""
    return os.environ.get(f"MLOPS_ROLLOUT_{name.upper()}") or default


def rollout_approvers() -> list[str]:
    """Who may approve a rollout, and review a candidate the gate could not approve alone:
    ``MLOPS_ROLLOUT_APPROVERS``, comma-separated user names or ``role:<Role>``
    (``mlops_airflow.auth_roles``); empty: anyone allowed to answer HITL tasks. The requester
    is refused either way."""
    value = os.environ.get("MLOPS_ROLLOUT_APPROVERS", "")
    return [name.strip() for name in value.split(",") if name.strip()]
