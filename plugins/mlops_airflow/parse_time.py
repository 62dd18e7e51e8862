"""What DAG files need to know when they are parsed, from the environment alone.

Facts fixed for a whole installation of the project (nothing to do with model deployment).

Only environment variables are read here (cheap, no I/O): the landing and data locations
that sensors and Asset URIs are built from, the calendar of the data set and the sensor's
patience, the model families of the training form. Everything else comes from
``mlops.settings.load_settings()`` when a task runs. The defaults are ``mlops``'s own: the
modules imported from it here (settings, zones, training.families) import nothing heavy,
which tests/dags checks by importing each DAG file in a fresh interpreter.
"""

from __future__ import annotations

import os

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


def sensor_timeout_s() -> int:
    """How long the landing sensor waits for a day before it fails (6 h by default)."""
    return int(os.environ.get("MLOPS_SENSOR_TIMEOUT_S") or 6 * 3600)


def sensor_poke_s() -> int:
    return int(os.environ.get("MLOPS_SENSOR_POKE_S") or 30)


def training_cron() -> str | None:
    """model_training's own schedule besides the ``retrain_request`` asset (weekly by
    default); ``MLOPS_TRAINING_CRON=""`` leaves only the asset (the closed-loop demo, where
    the monitoring policy alone asks for retraining)."""
    value = os.environ.get("MLOPS_TRAINING_CRON", "0 3 * * 1")
    return value.strip() or None


def rollout_default(name: str, default: str) -> str:
    """A default of model_deployment's Params (what an asset-triggered rollout uses):
    ``MLOPS_ROLLOUT_STRATEGY``, ``_CANARY_SHARE``, ``_OBSERVATION_DAYS``,
    ``_WAIT_FOR_LABELS``."""
    return os.environ.get(f"MLOPS_ROLLOUT_{name.upper()}") or default
