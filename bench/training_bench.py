"""Training and evaluation figures on the full default data set.

- The handbook's protocol (train 2018-07-25..31, skip the 7-day delay, test 2018-08-08..14)
  for the default model and each family (at its default hyperparameters), with the features
  the pipeline serves (``daily``) and the book's exact windows (``handbook``), so the results
  compare with the published ones. Known compromised cards are removed the way the training
  job removes them: every fraud of the validated zone from the training start to the test
  week (``mlops.evaluation.history``), the delay gap included; the count the training set
  alone would give is reported beside it.
- Training and evaluation time for the default window (the same days, ``daily`` features,
  default model), evaluation against a champion included (paired bootstrap).
- The prequential selection that chose the defaults, on data before the test week only:
  the whole grid on ``daily`` features, then each family's best on ``handbook`` features.
- The serving cost of the default against its members alone: the row scorer's time for one
  transaction (``mlops.scoring.row_scorer``, the model service's path) and the time to
  build that checked scorer when a version loads.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

TRAIN = (date(2018, 7, 25), date(2018, 8, 1))
TEST = (date(2018, 8, 8), date(2018, 8, 15))
DEFINITIONS = ("daily", "handbook")
THREADS = 1


def _between(frame: Any, start: date, end: date) -> Any:
    days = frame["TX_DATETIME"].dt.date
    return frame.loc[(days >= start) & (days < end)].reset_index(drop=True)


def _data() -> dict[str, Any]:
    """One simulation, its validated zone, both feature definitions and the known frauds."""
    from bench.features_bench import write_validated
    from mlops.evaluation.history import history_days, read_known_frauds
    from mlops.features.offline import compute_features_all
    from mlops.simulator import SimulationConfig, simulate

    config = SimulationConfig()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as root:
        write_validated(simulate(config), Path(root), config)
        for definition in DEFINITIONS:
            frame = compute_features_all(root, definition=definition).to_pandas()
            frame["TX_DATETIME"] = frame["TX_DATETIME"].astype("datetime64[us]")
            out[definition] = frame
        out["known"] = read_known_frauds(root, *history_days(TRAIN[0], TEST[0])).frame
    return out


def _models(selected: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The default, each family at its defaults, and each family's selected candidate when
    it differs from the defaults (so a stale default shows)."""
    from mlops.training.families import DEFAULT_FAMILY, DEFAULT_PARAMS, FAMILIES, validate_params

    models = {"default": (DEFAULT_FAMILY, DEFAULT_PARAMS[DEFAULT_FAMILY])}
    models |= {family: (family, DEFAULT_PARAMS[family]) for family in FAMILIES}
    for family, candidate in selected.items():
        params = validate_params(family, candidate.params)
        if params != DEFAULT_PARAMS[family]:
            models[f"selected:{candidate.label}"] = (family, params)
    return models


def _scores(metrics: Any) -> dict[str, Any]:
    return {
        "roc_auc": round(metrics.roc_auc, 4),
        "average_precision": round(metrics.average_precision, 4),
        "card_precision_at_100": round(metrics.card_precision_at_k, 4),
        "removed_rows": metrics.n_removed_known,
    }


def _protocol(frame: Any, known: Any, selected: dict[str, Any]) -> dict[str, Any]:
    """Each model fitted once, evaluated with the job's history and, for comparison, with
    the training set alone as history (what the job did before: optimistic figures)."""
    from mlops.evaluation.metrics import evaluate_scores, first_fraud_days
    from mlops.training.estimators import predict_scores, train

    train_rows, test_rows = _between(frame, *TRAIN), _between(frame, *TEST)
    histories = {"known": first_fraud_days(known), "old": first_fraud_days(train_rows)}
    results = {}
    for name, (family, params) in _models(selected).items():
        began = time.perf_counter()
        model = train(family, train_rows, train_rows["TX_FRAUD"], params, seed=0, threads=THREADS)
        fit_s = time.perf_counter() - began
        scores = predict_scores(model, test_rows)
        metrics = {
            key: evaluate_scores(test_rows, scores, known_compromised=history)
            for key, history in histories.items()
        }
        results[name] = {"family": family, **_scores(metrics["known"])}
        results[name] |= {"fit_seconds": round(fit_s, 2)}
        results[name] |= {"training_set_only": _scores(metrics["old"])}
    return results


def _known_cards(frame: Any, known: Any) -> dict[str, Any]:
    """Rows removed with the job's history, and with the training set alone (the old way)."""
    from mlops.evaluation.metrics import eligible_mask, first_fraud_days

    test_rows = _between(frame, *TEST)

    def removed(history: Any) -> int:
        return int((~eligible_mask(test_rows, first_fraud_days(history))).sum())

    return {
        "history": f"{TRAIN[0]}..{TEST[0]} (exclusive)",
        "removed_rows": removed(known),
        "removed_rows_training_set_only": removed(_between(frame, *TRAIN)),
    }


def _timings(frame: Any, known: Any) -> dict[str, Any]:
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
    first = evaluate_against_champion(candidate, None, test_rows, known, policy)
    first_s = time.perf_counter() - began
    began = time.perf_counter()
    paired = evaluate_against_champion(candidate, champion, test_rows, known, policy)
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


def _serving_cost(frame: Any) -> dict[str, Any]:
    """Per family fitted on the training week: what scores one row, its median and 99th
    percentile time over 2,000 single-row calls on test rows (microseconds, in process),
    ``predict_proba`` of a one-row frame for scale, and the build of the checked scorer; on
    one OpenMP thread, as the service runs (``OMP_NUM_THREADS=1``)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from mlops.features.names import FEATURES
    from mlops.scoring.row_scorer import row_scorer
    from mlops.training.estimators import train
    from mlops.training.families import DEFAULT_FAMILY

    train_rows, test_rows = _between(frame, *TRAIN), _between(frame, *TEST)
    values = test_rows[list(FEATURES)].to_numpy(dtype=np.float64)[:2000]
    out = {}
    for family in dict.fromkeys((DEFAULT_FAMILY, "hist_gradient_boosting", "logistic_regression")):
        model = train(family, train_rows, train_rows["TX_FRAUD"], seed=0, threads=THREADS)
        with threadpool_limits(limits=1):
            began = time.perf_counter()
            scorer = row_scorer(model)
            build_s = time.perf_counter() - began
            took = []
            for i in range(len(values)):
                began = time.perf_counter()
                scorer.scores(values[i : i + 1])
                took.append(time.perf_counter() - began)
            began = time.perf_counter()
            for i in range(50):
                model.predict_proba(test_rows.iloc[i : i + 1])
            proba_ms = (time.perf_counter() - began) / 50 * 1e3
        out[family] = {
            "fast_path": scorer.fast_path,
            "row_us_median": round(float(np.median(took)) * 1e6, 1),
            "row_us_p99": round(float(np.quantile(took, 0.99)) * 1e6, 1),
            "predict_proba_one_row_ms": round(proba_ms, 2),
            "scorer_build_seconds": round(build_s, 3),
        }
    return out


def _selection(frames: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    from mlops.training.selection import select_model, wide_grid

    before = {name: frames[name].loc[frames[name]["TX_DATETIME"].dt.date < TEST[0]] for name in DEFINITIONS}  # fmt: skip
    began = time.perf_counter()
    # one OpenMP thread: on a shared 2-core host HGB's two threads wait on each other (a
    # fit ~9x slower, mlops.training.estimators.train); RF keeps its n_jobs
    grid = wide_grid(("daily",))
    daily = select_model(before["daily"], TEST[0], candidates=grid, n_folds=3, threads=THREADS)
    bests = daily.best_per_family()
    handbook_grid = [
        replace(c, name=f"{c.label}@handbook", definition="handbook") for c in bests.values()
    ]
    handbook = select_model(
        before,
        TEST[0],
        candidates=handbook_grid,
        n_folds=3,
        servable=("handbook",),
        threads=THREADS,
    )
    summary = daily.summary() | handbook.summary()
    return bests, {
        "seconds": round(time.perf_counter() - began, 1),
        "folds": [f.to_dict() for f in daily.folds],
        "metric": daily.metric,
        "best": daily.best.to_dict(),
        "best_per_family": {family: c.to_dict() for family, c in bests.items()},
        "candidates": {
            name: summary[name]
            for name in sorted(summary, key=lambda n: -(summary[n][daily.metric] or 0))
        },  # fmt: skip
    }


def _progress(name: str, figures: Any) -> Any:
    import json
    import sys

    print(f"{name}: {json.dumps(figures, default=str)}", file=sys.stderr, flush=True)
    return figures


def run() -> dict[str, Any]:
    began = time.perf_counter()
    data = _data()
    _progress("data_seconds", round(time.perf_counter() - began, 1))
    known = _progress("known_cards", _known_cards(data["daily"], data["known"]))
    protocol = {"known_cards": known}
    for definition in DEFINITIONS:
        figures = _protocol(data[definition], data["known"], {})
        protocol[f"{definition}_features"] = _progress(definition, figures)
    bests, selection = _selection(data)
    _progress("prequential_selection", selection)
    return {
        "handbook_protocol": protocol,
        "default_window": _progress("timings", _timings(data["daily"], data["known"])),
        "serving_cost": _progress("serving_cost", _serving_cost(data["daily"])),
        "prequential_selection": selection,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2, default=str))
