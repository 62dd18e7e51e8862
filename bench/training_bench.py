"""Training and evaluation figures on the full default data set.

- The handbook's protocol (train 2018-07-25..31, skip the 7-day delay, test 2018-08-08..14,
  known compromised cards removed) for each model family, with the book's exact feature
  windows (``handbook``) and with the windows the pipeline serves (``daily``), so the
  results compare with the published ones.
- Training and evaluation time for the default window (the same days, ``daily`` features,
  default family), evaluation against a champion included (paired bootstrap).
- The prequential model selection that chose the default family, on data before the
  evaluation window only.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

TRAIN = (date(2018, 7, 25), date(2018, 8, 1))
TEST = (date(2018, 8, 8), date(2018, 8, 15))


def _between(frame: Any, start: date, end: date) -> Any:
    days = frame["TX_DATETIME"].dt.date
    return frame.loc[(days >= start) & (days < end)].reset_index(drop=True)


def _features(definition: str) -> Any:
    from bench.features_bench import write_validated
    from mlops.features.offline import compute_features_all
    from mlops.simulator import SimulationConfig, simulate

    config = SimulationConfig()
    with tempfile.TemporaryDirectory() as root:
        write_validated(simulate(config), Path(root), config)
        table = compute_features_all(root, definition=definition)
    frame = table.to_pandas()
    frame["TX_DATETIME"] = frame["TX_DATETIME"].astype("datetime64[us]")
    return frame


def _protocol(frame: Any) -> dict[str, Any]:
    from mlops.evaluation.metrics import evaluate_scores, first_fraud_days
    from mlops.training.estimators import predict_scores, train
    from mlops.training.families import FAMILIES

    train_rows, test_rows = _between(frame, *TRAIN), _between(frame, *TEST)
    known = first_fraud_days(train_rows)
    results = {}
    for family in FAMILIES:
        began = time.perf_counter()
        model = train(family, train_rows, train_rows["TX_FRAUD"], seed=0)
        fit_s = time.perf_counter() - began
        metrics = evaluate_scores(
            test_rows, predict_scores(model, test_rows), known_compromised=known
        )
        results[family] = {
            "roc_auc": round(metrics.roc_auc, 4),
            "average_precision": round(metrics.average_precision, 4),
            "card_precision_at_100": round(metrics.card_precision_at_k, 4),
            "fit_seconds": round(fit_s, 2),
        }
    return results


def _timings(frame: Any) -> dict[str, Any]:
    from mlops.gate.compare import evaluate_against_champion
    from mlops.gate.policy import GatePolicy
    from mlops.training.estimators import train
    from mlops.training.families import DEFAULT_FAMILY

    train_rows, test_rows = _between(frame, *TRAIN), _between(frame, *TEST)
    began = time.perf_counter()
    candidate = train(DEFAULT_FAMILY, train_rows, train_rows["TX_FRAUD"], seed=0)
    train_s = time.perf_counter() - began
    champion = train(DEFAULT_FAMILY, train_rows, train_rows["TX_FRAUD"], seed=1)
    policy = GatePolicy()
    began = time.perf_counter()
    first = evaluate_against_champion(candidate, None, test_rows, train_rows, policy)
    first_s = time.perf_counter() - began
    began = time.perf_counter()
    paired = evaluate_against_champion(candidate, champion, test_rows, train_rows, policy)
    paired_s = time.perf_counter() - began
    return {
        "family": DEFAULT_FAMILY,
        "training_rows": len(train_rows),
        "evaluation_rows": len(test_rows),
        "train_seconds": round(train_s, 2),
        "evaluate_first_model_seconds": round(first_s, 2),
        "evaluate_vs_champion_seconds": round(paired_s, 2),
        "first_model_outcome": first.decision.outcome,
        "retrain_vs_champion_outcome": paired.decision.outcome,
    }


def _selection(frame: Any) -> dict[str, Any]:
    from mlops.training.selection import select_model

    before_eval = frame.loc[frame["TX_DATETIME"].dt.date < TEST[0]]
    began = time.perf_counter()
    result = select_model(before_eval, TEST[0], n_folds=3, seed=0)
    summary = result.to_dict()
    return {
        "seconds": round(time.perf_counter() - began, 1),
        "best": summary.get("best"),
        "mean_scores": summary.get("means"),
    }


def run() -> dict[str, Any]:
    handbook, daily = _features("handbook"), _features("daily")
    return {
        "handbook_protocol": {
            "handbook_features": _protocol(handbook),
            "daily_features": _protocol(daily),
        },
        "default_window": _timings(daily),
        "prequential_selection": _selection(daily),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2, default=str))
