"""One frozen settings object, read from ``MLOPS_*`` environment variables when a task runs.

Two profiles: ``local`` (everything under one data root, SQLite, no services) and
``production`` (S3 data root, PostgreSQL, Redis, an MLflow server). A value set in the
environment always wins over the profile default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from mlops import zones

PREFIX = "MLOPS_"
PROFILES = ("local", "production")
ONLINE_STORES = ("sqlite", "redis")
HISTORY_START = date(2018, 4, 1)
PRODUCTION_DATA_ROOT = "s3://mlops-fraud/data"
# The checkout this package runs from (an editable install, as in the Docker image).
DEFAULT_FEATURE_REPO = Path(__file__).resolve().parents[2] / "feature_repo"


class ConfigError(ValueError):
    """A setting is missing or impossible; the message names the variable to fix."""


@dataclass(frozen=True)
class ValidationRules:
    """Thresholds of the transactions suite (see mlops.validation.run)."""

    max_amount: float = 10_000.0
    min_rows: int = 1
    max_rows: int = 100_000
    bad_row_tolerance: float = 0.05

    def __post_init__(self) -> None:
        if self.max_amount <= 0:
            raise ConfigError(f"{PREFIX}MAX_AMOUNT must be > 0, got {self.max_amount}")
        if not 0 <= self.min_rows <= self.max_rows:
            raise ConfigError(
                f"{PREFIX}MIN_ROWS/{PREFIX}MAX_ROWS: need 0 <= min <= max, "
                f"got {self.min_rows}..{self.max_rows}"
            )
        if not 0.0 <= self.bad_row_tolerance <= 1.0:
            raise ConfigError(f"{PREFIX}BAD_ROW_TOLERANCE must be in [0, 1]")


@dataclass(frozen=True)
class Settings:
    """Where data lives and which services a run talks to."""

    profile: str
    data_root: str
    landing_uri: str
    aws_conn_id: str = "aws_default"
    s3_endpoint_url: str | None = None
    mlflow_tracking_uri: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Bounds each connect and each reply of the online store's Redis: one that stops
    # answering fails the call (a task retries, the service answers 503) instead of hanging.
    redis_timeout_s: float = 2.0
    label_delay_days: int = 7
    validation: ValidationRules = field(default_factory=ValidationRules)
    # The first day of the data set: feature windows may reach before it, into nothing.
    history_start: date = HISTORY_START
    # Feast (mlops.features.store): None means the profile's choice, derived when used, so
    # that ``with_overrides(data_root=...)`` moves the registry along with the data.
    online_store: str | None = None  # sqlite (local) or redis (production)
    feast_registry: str | None = None  # path, s3:// URI or SQLAlchemy URL
    feature_repo: str = str(DEFAULT_FEATURE_REPO)
    # The prediction log (mlops.scoring.log): a SQLAlchemy URL of a PostgreSQL database, or
    # None for Parquet partitions under the data root.
    prediction_log_url: str | None = None
    # Where alerts are POSTed besides their file under alerts/ (mlops.alerts): a chat
    # incoming webhook or a relay to a pager; None: logged and written only.
    alert_webhook_url: str | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"{PREFIX}PROFILE must be one of {PROFILES}, got {self.profile!r}")
        if self.profile == "production" and not self.data_root.startswith("s3://"):
            raise ConfigError(f"{PREFIX}DATA_ROOT must be an s3:// URI in the production profile")
        if not self.redis_timeout_s > 0:
            raise ConfigError(f"{PREFIX}REDIS_TIMEOUT_S must be > 0, got {self.redis_timeout_s}")
        if self.online_store not in (None, *ONLINE_STORES):
            raise ConfigError(
                f"{PREFIX}ONLINE_STORE must be one of {ONLINE_STORES}, got {self.online_store!r}"
            )

    def zone(self, name: str) -> str:
        """URI of a zone under the data root (one of ``mlops.zones.ZONES``)."""
        return zones.zone_uri(self.data_root, name)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(PREFIX + name)
    try:
        return default if raw in (None, "") else int(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(PREFIX + name)
    try:
        return default if raw in (None, "") else float(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be a number, got {raw!r}") from None


def _date(env: Mapping[str, str], name: str, default: date) -> date:
    raw = env.get(PREFIX + name)
    try:
        return default if raw in (None, "") else date.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be a YYYY-MM-DD date, got {raw!r}") from None


def default_data_root(env: Mapping[str, str]) -> str:
    """``MLOPS_DATA_ROOT``, else the profile's default; parse-time code calls this too."""
    root = env.get(PREFIX + "DATA_ROOT")
    if root:
        return root
    if env.get(PREFIX + "PROFILE") == "production":
        return PRODUCTION_DATA_ROOT
    return str(Path.home() / "mlops-data")


def default_landing_uri(env: Mapping[str, str]) -> str:
    """``MLOPS_LANDING_URI``, else the landing zone under the data root."""
    return env.get(PREFIX + "LANDING_URI") or zones.zone_uri(default_data_root(env), zones.LANDING)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (``os.environ`` by default); pure in its input."""
    env = os.environ if env is None else env
    get = env.get
    profile = get(PREFIX + "PROFILE", "local")
    data_root = default_data_root(env)
    if profile == "production":
        mlflow_uri = get(PREFIX + "MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    else:
        mlflow_uri = get(PREFIX + "MLFLOW_TRACKING_URI", f"sqlite:///{data_root}/mlflow.db")
    rules = ValidationRules(
        max_amount=_float(env, "MAX_AMOUNT", ValidationRules.max_amount),
        min_rows=_int(env, "MIN_ROWS", ValidationRules.min_rows),
        max_rows=_int(env, "MAX_ROWS", ValidationRules.max_rows),
        bad_row_tolerance=_float(env, "BAD_ROW_TOLERANCE", ValidationRules.bad_row_tolerance),
    )
    return Settings(
        profile=profile,
        data_root=data_root,
        landing_uri=default_landing_uri(env),
        aws_conn_id=get(PREFIX + "AWS_CONN_ID", "aws_default"),
        s3_endpoint_url=get(PREFIX + "S3_ENDPOINT_URL") or None,
        mlflow_tracking_uri=mlflow_uri,
        redis_url=get(PREFIX + "REDIS_URL", "redis://127.0.0.1:6379/0"),
        redis_timeout_s=_float(env, "REDIS_TIMEOUT_S", Settings.redis_timeout_s),
        label_delay_days=_int(env, "LABEL_DELAY_DAYS", 7),
        validation=rules,
        history_start=_date(env, "HISTORY_START", HISTORY_START),
        online_store=get(PREFIX + "ONLINE_STORE") or None,
        feast_registry=get(PREFIX + "FEAST_REGISTRY") or None,
        feature_repo=get(PREFIX + "FEATURE_REPO") or str(DEFAULT_FEATURE_REPO),
        prediction_log_url=get(PREFIX + "PREDICTION_LOG_URL") or None,
        alert_webhook_url=get(PREFIX + "ALERT_WEBHOOK_URL") or None,
    )
