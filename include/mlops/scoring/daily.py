"""Daily scoring: the day's transactions through the same router as the service, into the log.

The features come from the day's offline partition (``features/daily/date=D``), which equals
what the online store serves for those transactions (the project's skew test holds the two
equal), so a card's logged variant and score are what the service would have answered. In a
simulated or backfilled world this is the traffic a rollout is judged on; in production it
is the batch score of the day. Time is the data day: no wall clock enters the rows, and a
rerun replaces the day's batch partition with identical rows. A challenger that cannot be
loaded does not stop the day: the champion scores it and every row names the challenger's
failure in ``challenger_error`` (so the rollout's judgement rolls it back).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import pandas as pd

from mlops import zones
from mlops.features.inputs import DayLike, MissingPartitionError, as_date
from mlops.features.names import FEATURES
from mlops.features.offline import DATA_FILE
from mlops.io import storage
from mlops.io.partitions import publish_partition, read_partition
from mlops.registry.versions import MODEL_NAME
from mlops.rollout.live import LiveVariants, live_variants, load_version, registry_client
from mlops.rollout.state import CHALLENGER
from mlops.schema import partition_name
from mlops.scoring.log import (
    LOG_COLUMNS,
    ParquetSink,
    PredictionSink,
    log_frame,
    prediction_sink,
)
from mlops.scoring.score import ServingModels, load_serving, score_rows
from mlops.settings import Settings


@dataclass(frozen=True)
class ScoringResult:
    """What scoring one day did; ``status`` is ``scored`` or ``skipped`` (with ``reason``)."""

    day: str
    status: str
    reason: str = ""
    rows: int = 0
    champion_version: str | None = None
    challenger_version: str | None = None
    strategy: str = "direct"
    answered_by_challenger: int = 0
    challenger_error: str | None = None
    log: str = ""

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)


def scored_log_rows(serving: ServingModels, features: pd.DataFrame) -> pd.DataFrame:
    """The log rows of a feature partition scored through the router (pure given models)."""
    scores = score_rows(serving, features["CUSTOMER_ID"].tolist(), features)
    versions = serving.live.versions()
    challenger = scores.challenger
    tx_id = features["TRANSACTION_ID"].astype("int64")
    day = pd.to_datetime(features["TX_DATETIME"]).dt.date.astype(str)
    frame = pd.DataFrame(
        {
            "request_id": "batch:" + day + ":" + tx_id.astype(str),
            "time": features["TX_DATETIME"],
            "source": "batch",
            "transaction_id": tx_id,
            "tx_datetime": features["TX_DATETIME"],
            "customer_id": features["CUSTOMER_ID"],
            "terminal_id": features["TERMINAL_ID"],
            **{name: features[name] for name in FEATURES},
            "champion_version": versions["champion"],
            "champion_score": scores.champion,
            "challenger_version": versions.get(CHALLENGER),
            "challenger_score": challenger if challenger is not None else float("nan"),
            "variant": scores.variant,
            "model_version": [versions[v] for v in scores.variant],
            "score": scores.score,
            "rollout_strategy": serving.live.rollout.strategy,
            "challenger_error": scores.challenger_error,
            "customer_status": None,
            "terminal_status": None,
            "latency_ms": float("nan"),
        }
    )
    return log_frame(frame.sort_values("transaction_id", kind="stable").reset_index(drop=True))


def _load(tracking_uri: str, live: LiveVariants) -> ServingModels:
    """The champion and challenger; a challenger that cannot load is left out, and its rows
    carry the reason in ``challenger_error`` (the rollout judge then rolls it back)."""
    return load_serving(live, lambda version: load_version(tracking_uri, MODEL_NAME, version))


def _publish(
    settings: Settings,
    sink: PredictionSink,
    day: date,
    rows: pd.DataFrame,
    storage_options: storage.StorageOptions | None,
) -> None:
    sink.replace_day("batch", day, rows)
    if settings.prediction_log_url:  # a table has no partition marker: publish one beside it
        marker = ParquetSink(settings.zone(zones.PREDICTIONS)).partition("batch", day)
        metadata = {"day": day.isoformat(), "rows": len(rows), "sink": "postgresql"}
        publish_partition(marker, {}, metadata, storage_options)


def features_folder(settings: Settings, day: DayLike) -> str:
    return storage.join(settings.zone(zones.DAILY_FEATURES), partition_name(str(as_date(day))))


def day_features(
    settings: Settings, day: DayLike, storage_options: storage.StorageOptions | None = None
) -> pd.DataFrame | None:
    """The offline feature partition of ``day`` (None when it is not published)."""
    published = read_partition(features_folder(settings, day), storage_options)
    return (
        None
        if published is None
        else storage.read_parquet(published.file(DATA_FILE), storage_options)
    )


def score_day(
    settings: Settings, day: DayLike, storage_options: storage.StorageOptions | None = None
) -> ScoringResult:
    """Score the validated transactions of ``day`` and replace its batch log partition."""
    day = as_date(day)
    live = live_variants(registry_client(settings.mlflow_tracking_uri), MODEL_NAME)
    sink = prediction_sink(settings.data_root, settings.prediction_log_url, storage_options)
    if live.champion is None:
        # An empty partition still says "this day went through scoring" to whoever waits for it
        # (monitoring decides the first training from it).
        _publish(
            settings, sink, day, log_frame(pd.DataFrame(columns=list(LOG_COLUMNS))), storage_options
        )
        reason = f"no champion in the registry ({MODEL_NAME}): nothing serves yet, nothing scored"
        return ScoringResult(day.isoformat(), "skipped", reason)
    features = day_features(settings, day, storage_options)
    if features is None:
        raise MissingPartitionError(
            [day], f"scoring {day} (features: {features_folder(settings, day)})"
        )
    serving = _load(settings.mlflow_tracking_uri, live)
    rows = scored_log_rows(serving, features)
    _publish(settings, sink, day, rows, storage_options)
    return ScoringResult(
        day=day.isoformat(),
        status="scored",
        rows=len(rows),
        champion_version=live.champion,
        challenger_version=live.challenger,
        strategy=live.rollout.strategy,
        answered_by_challenger=int((rows["variant"] == CHALLENGER).sum()),
        challenger_error=rows["challenger_error"].iloc[0] if len(rows) else None,
        log=getattr(sink, "root", "postgresql") + f" (batch, {partition_name(day.isoformat())})",
    )


__all__ = ["ScoringResult", "day_features", "features_folder", "score_day", "scored_log_rows"]
