"""Facts fixed for a whole deployment that DAG files need at parse time.

Only environment variables are read here (cheap, no I/O): the landing and data locations
that sensors and Asset URIs are built from, the calendar of the data set and the sensor's
patience. Everything
else comes from ``mlops.settings.load_settings()`` when a task runs. The defaults must match
``mlops.settings`` (a test checks that they do).
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum

DEFAULT_START_DATE = "2018-04-01"


def data_root() -> str:
    root = os.environ.get("MLOPS_DATA_ROOT")
    if root:
        return root
    if os.environ.get("MLOPS_PROFILE") == "production":
        return "s3://mlops-fraud/data"
    return str(Path.home() / "mlops-data")


def landing_uri() -> str:
    return os.environ.get("MLOPS_LANDING_URI") or f"{data_root().rstrip('/')}/landing"


def zone_uri(name: str) -> str:
    return f"{data_root().rstrip('/')}/{name}"


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
