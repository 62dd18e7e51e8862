"""The reference a day is judged against: the serving champion's own training data.

A champion's MLflow run names its training set (``inputs/training.json``: the training-sets
partition it was read from) and carries its evaluation metrics (logged by the gate on its
held-out window), its data window and the day it was trained as of. From them, once per
version, the **reference profile** is built and kept in ``monitoring/references``:

- each feature's reference-quantile bins and shares (``mlops.monitoring.drift``);
- the bins of the champion's scores on its training rows (prediction drift);
- the feature importances that weight drift in the retrain policy: permutation importance
  on a fixed sample of the training rows, measured as the drop of average precision when a
  column is shuffled. Chosen because it is model-agnostic (HGB has no impurity importances),
  speaks the metric the gate judges, and costs 15 predictions of 5,000 rows once per
  version, not per day;
- the evaluation metrics, the training day and the end of the data window.

A profile is a small JSON file, so a day's monitoring reads the day's log and this file, not
the 70 k training rows (those are read again only for the HTML report).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from mlops import zones
from mlops.features.names import FEATURES, LABEL
from mlops.io import storage
from mlops.io.partitions import read_partition
from mlops.monitoring.drift import BinnedReference, bin_reference
from mlops.registry.versions import MODEL_NAME, load_model, tracking_scope
from mlops.settings import Settings

TRAINING_TABLE = "training.parquet"  # the table mlops.training.job publishes in its sets
TRAINING_LINEAGE = "inputs/training.json"  # the run artifact naming the training set
EVALUATION_METRICS = ("roc_auc", "average_precision", "card_precision_at_100")
IMPORTANCE_SAMPLE = 5_000
PROFILE_FORMAT = 1


class ReferenceUnavailable(FileNotFoundError):
    """The champion's run does not say where its training data is, or that data is gone."""


@dataclass(frozen=True)
class ChampionRun:
    """What the registry knows of a version: its run, its data and its own evaluation."""

    version: str
    run_id: str
    trained_as_of: str
    data_end: str  # first day after its evaluation window: newer labels are new data
    training_uri: str
    evaluation: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReferenceProfile:
    champion: ChampionRun
    features: dict[str, BinnedReference]
    score: BinnedReference
    importances: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "champion": self.champion.to_dict(),
            "features": {name: b.to_dict() for name, b in self.features.items()},
            "score": self.score.to_dict(),
            "importances": dict(self.importances),
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> ReferenceProfile:
        return cls(
            champion=ChampionRun(**value["champion"]),
            features={n: BinnedReference.from_dict(b) for n, b in value["features"].items()},
            score=BinnedReference.from_dict(value["score"]),
            importances={n: float(v) for n, v in value["importances"].items()},
        )


def champion_run(tracking_uri: str, version: str, model_name: str = MODEL_NAME) -> ChampionRun:
    """The version's run, lineage and evaluation metrics, read from the registry."""
    import mlflow.artifacts

    with tracking_scope(tracking_uri) as client:
        run_id = client.get_model_version(model_name, str(version)).run_id
        run = client.get_run(run_id)
        try:
            lineage = mlflow.artifacts.load_dict(f"runs:/{run_id}/{TRAINING_LINEAGE}")
        except Exception as err:  # MLflow raises several types for a missing artifact
            raise ReferenceUnavailable(
                f"version {version} (run {run_id}) has no {TRAINING_LINEAGE}: "
                "its training data is unknown, so drift has no reference"
            ) from err
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    return ChampionRun(
        version=str(version),
        run_id=run_id,
        trained_as_of=tags.get("mlops.logical_date", ""),
        data_end=params.get("eval_end", ""),
        training_uri=storage.join(lineage.get("source", ""), TRAINING_TABLE),
        evaluation={m: float(metrics[m]) for m in EVALUATION_METRICS if m in metrics},
    )


def positive_scores(model: Any, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(frame.loc[:, list(FEATURES)]))[:, 1]


def permutation_importances(
    model: Any, frame: pd.DataFrame, sample: int = IMPORTANCE_SAMPLE, seed: int = 0
) -> dict[str, float]:
    """Share of the average-precision drop each feature causes when shuffled (sums to 1;
    uniform when no column matters or the sample has a single class)."""
    from sklearn.metrics import average_precision_score

    rows = frame.sample(n=min(sample, len(frame)), random_state=seed).reset_index(drop=True)
    labels = rows[LABEL].to_numpy()
    if labels.min() == labels.max():
        return dict.fromkeys(FEATURES, 1 / len(FEATURES))
    base = average_precision_score(labels, positive_scores(model, rows))
    rng = np.random.default_rng(seed)
    drops = {}
    for name in FEATURES:
        shuffled = rows.copy()
        shuffled[name] = rng.permutation(shuffled[name].to_numpy())
        drops[name] = max(
            0.0, base - average_precision_score(labels, positive_scores(model, shuffled))
        )
    total = sum(drops.values())
    if total <= 0:
        return dict.fromkeys(FEATURES, 1 / len(FEATURES))
    return {name: round(drop / total, 6) for name, drop in drops.items()}


def build_profile(champion: ChampionRun, model: Any, training: pd.DataFrame) -> ReferenceProfile:
    """The profile of a champion from its model and training rows (pure given its inputs)."""
    missing = [c for c in (*FEATURES, LABEL) if c not in training.columns]
    if missing:
        raise ReferenceUnavailable(f"{champion.training_uri}: columns {missing} missing")
    return ReferenceProfile(
        champion=champion,
        features={
            name: bin_reference(training[name], what=f"reference {name}") for name in FEATURES
        },
        score=bin_reference(positive_scores(model, training), what="reference scores"),
        importances=permutation_importances(model, training),
    )


def profile_uri(settings: Settings, version: str) -> str:
    return storage.join(settings.zone(zones.MONITORING_REFERENCES), f"version={version}.json")


def read_training_rows(
    champion: ChampionRun, options: storage.StorageOptions | None = None
) -> pd.DataFrame:
    """The rows of the champion's training set, from the visible version of its partition
    (``training_uri`` names the partition's file as the lineage recorded it)."""
    folder, _, name = champion.training_uri.rpartition("/")
    published = read_partition(folder, options) if folder else None
    if published is None or name not in published.manifest.get("files", {}):
        raise ReferenceUnavailable(
            f"version {champion.version}: training set {champion.training_uri!r} not found"
        )
    return storage.read_parquet(published.file(name), options)


def reference_profile(
    settings: Settings,
    version: str,
    options: storage.StorageOptions | None = None,
    *,
    model: Any = None,
) -> ReferenceProfile:
    """The version's profile: read when kept, else built from the registry and kept."""
    uri = profile_uri(settings, version)
    if storage.exists(uri, options):
        kept = storage.read_json(uri, options)
        if kept.get("format") == PROFILE_FORMAT:
            return ReferenceProfile.from_dict(kept)
    champion = champion_run(settings.mlflow_tracking_uri, version)
    model = model if model is not None else load_model(settings.mlflow_tracking_uri, version)
    profile = build_profile(champion, model, read_training_rows(champion, options))
    storage.write_json_atomic(uri, profile.to_dict(), options)
    return profile


def days_between(first: str, last: date) -> int | None:
    return (last - date.fromisoformat(first)).days if first else None
