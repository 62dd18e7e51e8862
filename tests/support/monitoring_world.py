"""A world monitoring can watch: labelled days, a champion with its run, a prediction log.

85 simulated days of 1,000 cards (about 1,900 transactions a day). A champion is trained as
of ``TRAINED`` the way ``model_training`` does it (training week, gap, evaluation week),
logged to a SQLite MLflow with its training-sets partition and evaluation metrics, and
registered; the batch prediction log holds ``LOGGED`` days scored by it, as daily scoring
writes them. A second version trained with another seed can take over as champion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from mlops import zones
from mlops.evaluation.metrics import evaluate_scores
from mlops.features.names import FEATURES
from mlops.features.offline import compute_features_all
from mlops.registry import aliases
from mlops.registry import versions as registry
from mlops.registry.tracking import DatasetSpec, RunContext, log_training_run
from mlops.scoring.log import LOG_COLUMNS, ParquetSink
from mlops.settings import Settings, load_settings
from mlops.simulator import SimulationConfig, simulate
from mlops.training.estimators import predict_scores, train
from mlops.training.job import TrainingRequest, publish_training_sets, training_sets_uri
from tests.support.reference_features import publish_validated

CONFIG = SimulationConfig(n_customers=1000, n_terminals=2000, n_days=85, seed=4)
FIRST, LAST = CONFIG.start_date, CONFIG.day(CONFIG.n_days - 1)
# trained on days 38..44: settled 30-day windows (37 days of history), as training requires
TRAINED = CONFIG.day(66)
LOGGED = [CONFIG.day(i) for i in range(66, 85)]
FAMILY = "hist_gradient_boosting"


@dataclass(frozen=True)
class MonitoringWorld:
    root: Path
    env: dict[str, str]
    features: pd.DataFrame

    @property
    def settings(self) -> Settings:
        return load_settings(self.env)


def environment(root: Path) -> dict[str, str]:
    return {
        "MLOPS_DATA_ROOT": str(root),
        "MLOPS_HISTORY_START": FIRST.isoformat(),
        "MLOPS_MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
    }


def _rows(features: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    day = features["TX_DATETIME"].dt.date
    return features.loc[(day >= start) & (day < end)].reset_index(drop=True)


def train_champion(world: MonitoringWorld, as_of: date, seed: int) -> str:
    """Train, log and register a version as of ``as_of``; returns its number."""
    settings = world.settings
    request = TrainingRequest(as_of=as_of, family=FAMILY, params={"max_iter": 20}, seed=seed)
    window = request.window
    training = _rows(world.features, window.train_start, window.train_end)
    evaluation = _rows(world.features, window.eval_start, window.eval_end)
    uri = training_sets_uri(settings, as_of)
    publish_training_sets(uri, training, evaluation, {})
    model = train(FAMILY, training, training["TX_FRAUD"], request.params, seed, threads=1)
    metrics = evaluate_scores(evaluation, predict_scores(model, evaluation))
    logged = log_training_run(
        settings.mlflow_tracking_uri,
        RunContext("model_training", as_of, f"seed{seed}"),
        model,
        family=FAMILY,
        params=request.params,
        seed=seed,
        window=window.to_params(),
        training=DatasetSpec("training", training, {}, uri),
        evaluation=DatasetSpec("evaluation", evaluation, {}, uri),
        candidate_metrics=metrics.flat(),
        extra_tags={registry.TAG_GATE_OUTCOME: "approve"},  # what serves was approved
    )
    return registry.register_candidate(settings.mlflow_tracking_uri, logged.run_id).version


def log_days(world: MonitoringWorld, version: str, days: list[date]) -> None:
    """The batch log of ``days`` as daily scoring writes it, all answered by ``version``."""
    settings = world.settings
    model = registry.load_model(settings.mlflow_tracking_uri, version)
    sink = ParquetSink(str(world.root / zones.PREDICTIONS))
    for day in days:
        rows = _rows(world.features, day, day + timedelta(days=1))
        scores = predict_scores(model, rows)
        frame = pd.DataFrame(
            {
                "request_id": [f"batch:{day}:{t}" for t in rows["TRANSACTION_ID"]],
                "time": rows["TX_DATETIME"],
                "source": "batch",
                "transaction_id": rows["TRANSACTION_ID"],
                "tx_datetime": rows["TX_DATETIME"],
                "customer_id": rows["CUSTOMER_ID"],
                "terminal_id": rows["TERMINAL_ID"],
                **{name: rows[name] for name in FEATURES},
                "champion_version": version,
                "champion_score": scores,
                "challenger_version": None,
                "challenger_score": float("nan"),
                "variant": "champion",
                "model_version": version,
                "score": scores,
                "rollout_strategy": "direct",
                "challenger_error": None,
                "customer_status": None,
                "terminal_status": None,
                "latency_ms": float("nan"),
            }
        )
        sink.replace_day("batch", day, frame[list(LOG_COLUMNS)])


def build_world(root: Path) -> MonitoringWorld:
    frame = simulate(CONFIG)
    publish_validated(root / zones.VALIDATED, frame, FIRST, LAST)
    features = compute_features_all(str(root / zones.VALIDATED), history_start=FIRST).to_pandas()
    features["TX_DATETIME"] = pd.to_datetime(features["TX_DATETIME"])
    world = MonitoringWorld(root, environment(root), features)
    version = train_champion(world, TRAINED, seed=1)
    aliases.set_challenger(world.settings.mlflow_tracking_uri, version)
    aliases.promote_challenger(world.settings.mlflow_tracking_uri)
    log_days(world, version, LOGGED)
    return world
