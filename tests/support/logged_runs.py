"""Training runs logged to MLflow on synthetic data, shared by the SQLite registry tests and
the integration test against a real MLflow server, so that both exercise the same flow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mlops.evaluation.metrics import Metrics, evaluate_scores
from mlops.features.names import FEATURES, LABEL
from mlops.gate.decision import decide
from mlops.gate.evidence import BehaviourResult, CheckResult, LatencyResult
from mlops.gate.policy import GatePolicy
from mlops.registry import versions as registry
from mlops.registry.tracking import DatasetSpec, LoggedRun, RunContext, log_training_run
from mlops.training.estimators import predict_scores, train
from mlops.training.job import gate_verdict
from mlops.training.windows import DataWindow

DAG_ID = "model_training"
# floors low enough for 400 synthetic rows; the gate itself is tested in tests/mlops/gate/
POLICY = GatePolicy(min_frauds=1, min_roc_auc=0.5, min_average_precision=0.05, k=10)
OK = BehaviourResult((CheckResult("invariance_transaction_id", True, "unchanged"),))
BROKEN = BehaviourResult((CheckResult("directional_amount", False, "0.40 < 0.95"),))
FAST = LatencyResult(2.0, 3.0, 5.0, 50, 50.0)


def synthetic_frame(seed: int, start: date, days: int = 4, n: int = 400) -> pd.DataFrame:
    """The 15 features (flags and counts as integers, as the feature tables have them), the
    keys and a label that depends on the amount, so a model has something to learn."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.random((n, len(FEATURES))), columns=list(FEATURES))
    frame["TX_AMOUNT"] = rng.gamma(2.0, 50.0, n)
    for name in ("TX_DURING_WEEKEND", "TX_DURING_NIGHT"):
        frame[name] = rng.integers(0, 2, n)
    for name in [f for f in FEATURES if "_NB_TX_" in f]:
        frame[name] = rng.integers(0, 30, n)
    seconds = pd.to_timedelta(rng.integers(0, days * 86_400, n), unit="s")
    frame["TX_DATETIME"] = pd.Timestamp(start) + seconds
    frame["CUSTOMER_ID"] = rng.integers(0, 150, n)
    frame["TRANSACTION_ID"] = np.arange(n)
    frame[LABEL] = ((frame["TX_AMOUNT"] > 160) | (rng.random(n) < 0.03)).astype("int64")
    return frame


@dataclass(frozen=True)
class Trained:
    logged: LoggedRun
    model: Any
    evaluation: pd.DataFrame
    metrics: Metrics


def train_and_log(
    tracking_uri: str,
    day: str,
    *,
    seed: int = 0,
    max_iter: int = 10,
    behaviour: BehaviourResult | None = OK,
    champion: Metrics | None = None,
) -> Trained:
    """Train as of ``day`` on 4 days, evaluate on the next 4, gate, log; ``behaviour=None``
    logs without a decision (the gate comes later)."""
    end = date.fromisoformat(day)
    train_frame = synthetic_frame(seed, end - timedelta(days=15))
    eval_frame = synthetic_frame(seed + 100, end - timedelta(days=4))
    params = {"max_iter": max_iter}
    model = train(
        "hist_gradient_boosting", train_frame, train_frame[LABEL], params, seed, threads=1
    )
    metrics = evaluate_scores(eval_frame, predict_scores(model, eval_frame), k=10)
    decision = None if behaviour is None else decide(metrics, None, None, behaviour, FAST, POLICY)
    train_days = {f"date={end - timedelta(days=15 - i)}": f"{i:064x}" for i in range(4)}
    eval_days = {f"date={end - timedelta(days=4 - i)}": f"{i + 9:064x}" for i in range(4)}
    logged = log_training_run(
        tracking_uri,
        RunContext(DAG_ID, end, airflow_run_id=f"scheduled__{day}T00:00:00+00:00"),
        model,
        family="hist_gradient_boosting",
        params=params,
        seed=seed,
        window=DataWindow(*(end - timedelta(days=d) for d in (15, 11, 4, 0)), 7).to_params(),
        training=DatasetSpec("training", train_frame, train_days, "s3://mlops/data/features"),
        evaluation=DatasetSpec("evaluation", eval_frame, eval_days, "s3://mlops/data/features"),
        candidate_metrics=metrics.flat(),
        champion_metrics=None if champion is None else champion.flat(),
        decision=None if decision is None else gate_verdict(decision),
    )
    return Trained(logged, model, eval_frame, metrics)


def versions_with_key(client: Any, run_key: str) -> list[str]:
    query = f"name = '{registry.MODEL_NAME}' and tags.`{registry.TAG_RUN_KEY}` = '{run_key}'"
    return sorted(str(mv.version) for mv in client.search_model_versions(query))
