"""Prequential (time-based) model selection, on data strictly before the evaluation window.

A random split would let a model learn from the future of the very cards and terminals it
is validated on, and choosing hyperparameters on the evaluation window would make the gate's
numbers optimistic. So each fold repeats the production protocol, rolled back in time:
train on ``train_days``, skip ``delay_days`` (labels not yet known when the model would have
been trained), validate on ``valid_days``; the latest fold ends where the evaluation window
begins, and each earlier fold is ``step_days`` further back. Every candidate sees the same
folds, and the best mean score wins (ties go to the earlier candidate of the grid, so the
order of the grid expresses a preference for the simpler model).

The grid crosses what could matter: each family's capacity (regularisation, depth, learning
rate), early stopping where the family has it (HGB; its hold-out is a random share of the
training week, which is why it is a candidate, not a given), class weighting (``balanced``
against none), a blend of the two families that rank differently (``hgb_lr_stack``: the
trees catch the amount and terminal patterns, the linear model ranks the rest more smoothly)
and the two feature definitions. Only a ``daily`` candidate can become the
default, since only ``daily`` features are served (``mlops.features.offline``); the
``handbook`` candidates say what that serving decision costs. The grid is sized for about
three minutes on 2 cores over three folds of the default data (``make bench`` reports it).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mlops.evaluation.metrics import evaluate_scores, first_fraud_days, transaction_days
from mlops.features.names import LABEL
from mlops.training.estimators import predict_scores, train
from mlops.training.families import validate_params

SELECTION_METRICS: tuple[str, ...] = ("average_precision", "card_precision_at_k", "roc_auc")


SERVED_DEFINITIONS: tuple[str, ...] = ("daily",)


@dataclass(frozen=True)
class Candidate:
    family: str
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    definition: str = "daily"  # the feature definition (mlops.features.sql) it is fitted on

    @property
    def label(self) -> str:
        return self.name or self.family

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.label, "family": self.family, "params": dict(self.params)}
        return out | {"definition": self.definition}


_UNWEIGHTED = {"class_weight": None}  # weighting explicit: the families' defaults may change
_EARLY_STOP = {
    "class_weight": "balanced",
    "early_stopping": True,
    "max_iter": 500,
    "validation_fraction": 0.1,
    "n_iter_no_change": 10,
}
_SLOW = {"learning_rate": 0.05, "max_iter": 200, "max_leaf_nodes": 15, "class_weight": "balanced"}
_REGULARISED = {"max_leaf_nodes": 15, "min_samples_leaf": 100, "l2_regularization": 1.0}
_REGULARISED |= {"class_weight": "balanced"}
_RF = {"n_estimators": 100, "max_depth": 12, "class_weight": "balanced_subsample"}
# (name, family, params), listed simplest first within a family; every one is fitted once
# per fold and per definition in ``wide_grid``.
_GRID: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("lr_c1", "logistic_regression", {"C": 1.0, "class_weight": "balanced"}),
    ("lr_c0.1", "logistic_regression", {"C": 0.1, "class_weight": "balanced"}),
    ("lr_c1_unweighted", "logistic_regression", {"C": 1.0, **_UNWEIGHTED}),
    ("hgb_default", "hist_gradient_boosting", {"class_weight": "balanced"}),
    ("hgb_unweighted", "hist_gradient_boosting", _UNWEIGHTED),
    ("hgb_slow_small_trees", "hist_gradient_boosting", _SLOW),
    ("hgb_slow_small_trees_unweighted", "hist_gradient_boosting", {**_SLOW, **_UNWEIGHTED}),
    ("hgb_regularised", "hist_gradient_boosting", _REGULARISED),
    ("hgb_early_stop", "hist_gradient_boosting", _EARLY_STOP),
    ("hgb_early_stop_unweighted", "hist_gradient_boosting", {**_EARLY_STOP, **_UNWEIGHTED}),
    ("rf_depth12", "random_forest", _RF),
    ("rf_depth12_unweighted", "random_forest", {**_RF, **_UNWEIGHTED}),
    ("rf_depth8_leaf5", "random_forest", {**_RF, "max_depth": 8, "min_samples_leaf": 5}),
    # the HGB and LR families' own defaults (their best entries above), blended in log-odds
    ("stack_hgb_lr", "hgb_lr_stack", {"cv": 3}),
)


def wide_grid(definitions: Sequence[str] = ("daily", "handbook")) -> tuple[Candidate, ...]:
    """Every grid entry on every definition; the first definition keeps the bare names."""
    return tuple(
        Candidate(family, params, name if i == 0 else f"{name}@{definition}", definition)
        for i, definition in enumerate(definitions)
        for name, family, params in _GRID
    )


DEFAULT_GRID: tuple[Candidate, ...] = wide_grid(("daily",))


@dataclass(frozen=True)
class Fold:
    """Half-open day ranges: train [train_start, train_end), validate [valid_start, valid_end)."""

    index: int
    train_start: date
    train_end: date
    valid_start: date
    valid_end: date

    def to_dict(self) -> dict[str, Any]:
        return {key: str(value) for key, value in asdict(self).items()} | {"index": self.index}


@dataclass(frozen=True)
class SelectionResult:
    best: Candidate
    metric: str
    eval_start: date
    folds: tuple[Fold, ...]
    means: Mapping[str, float | None]
    scores: tuple[Mapping[str, Any], ...]
    seconds: float = 0.0
    candidates: tuple[Candidate, ...] = ()

    def best_per_family(self) -> dict[str, Candidate]:
        """Each family's best candidate by the mean ``metric`` (the first of equals)."""
        out: dict[str, Candidate] = {}
        for candidate in self.candidates:
            mean, held = self.means[candidate.label], out.get(candidate.family)
            if mean is not None and (held is None or mean > self.means[held.label]):
                out[candidate.family] = candidate
        return out

    def summary(self) -> dict[str, dict[str, float | None]]:
        """Per candidate: the mean of every metric over the folds, and the mean fit time."""
        out = {}
        for label in self.means:
            rows = [r for r in self.scores if r["candidate"] == label]
            out[label] = {
                key: _mean([r[key] for r in rows]) for key in (*SELECTION_METRICS, "fit_seconds")
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best.to_dict(),
            "metric": self.metric,
            "eval_start": str(self.eval_start),
            "seconds": self.seconds,
            "folds": [f.to_dict() for f in self.folds],
            "means": dict(self.means),
            "scores": [dict(row) for row in self.scores],
        }


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return round(float(np.mean(finite)), 4) if finite else None


def _as_date(day: date | datetime | str) -> date:
    if isinstance(day, datetime):
        return day.date()
    return day if isinstance(day, date) else date.fromisoformat(day)


def prequential_folds(
    eval_start: date | str,
    *,
    n_folds: int = 4,
    train_days: int = 7,
    delay_days: int = 7,
    valid_days: int = 7,
    step_days: int | None = None,
) -> tuple[Fold, ...]:
    """Folds rolled back from ``eval_start``, latest first; each ends by ``eval_start``."""
    if min(n_folds, train_days, valid_days) < 1 or delay_days < 0:
        raise ValueError("n_folds, train_days and valid_days must be >= 1, delay_days >= 0")
    step = valid_days if step_days is None else step_days
    if step < 1:
        raise ValueError(f"step_days must be >= 1, got {step}")
    end = _as_date(eval_start)
    folds = []
    for i in range(n_folds):
        valid_end = end - timedelta(days=i * step)
        valid_start = valid_end - timedelta(days=valid_days)
        train_end = valid_start - timedelta(days=delay_days)
        train_start = train_end - timedelta(days=train_days)
        folds.append(Fold(i, train_start, train_end, valid_start, valid_end))
    return tuple(folds)


def _rows(frame: pd.DataFrame, days: np.ndarray, start: date, end: date) -> pd.DataFrame:
    return frame.loc[(days >= np.datetime64(start, "D")) & (days < np.datetime64(end, "D"))]


def _check_window(frame: pd.DataFrame, days: np.ndarray, folds: Sequence[Fold], eval_start: date):
    if (days >= np.datetime64(eval_start, "D")).any():
        raise ValueError(f"the frame holds rows on or after the evaluation window {eval_start}")
    first = pd.Timestamp(days.min()).date() if len(days) else eval_start
    earliest = min(f.train_start for f in folds)
    if earliest < first:
        raise ValueError(f"the folds need data from {earliest}, the frame starts on {first}")
    for fold in folds:
        assert fold.train_end <= fold.valid_start and fold.valid_end <= eval_start, fold


def _score_fold(
    candidate: Candidate, frame: pd.DataFrame, days: np.ndarray, fold: Fold, settings: dict
) -> dict[str, Any]:
    fit_rows = _rows(frame, days, fold.train_start, fold.train_end)
    valid = _rows(frame, days, fold.valid_start, fold.valid_end)
    # known compromised as in the handbook: frauds of the training and delay periods
    known = first_fraud_days(_rows(frame, days, fold.train_start, fold.valid_start))
    started = time.perf_counter()
    model = train(
        candidate.family,
        fit_rows,
        fit_rows[LABEL],
        candidate.params,
        settings["seed"],
        threads=settings["threads"],
    )
    fit_seconds = time.perf_counter() - started
    metrics = evaluate_scores(
        valid,
        predict_scores(model, valid),
        k=settings["k"],
        known_compromised=known,
        delay_days=settings["delay_days"],
    )
    return {
        "candidate": candidate.label,
        "fold": fold.index,
        "value": getattr(metrics, settings["metric"]),
        **{name: getattr(metrics, name) for name in SELECTION_METRICS},
        "n_train": len(fit_rows),
        "n_valid": metrics.n_transactions,
        "valid_frauds": metrics.n_frauds,
        "fit_seconds": round(fit_seconds, 3),
    }


def select_model(
    frame: pd.DataFrame | Mapping[str, pd.DataFrame],
    eval_start: date | str,
    *,
    candidates: Sequence[Candidate] = DEFAULT_GRID,
    servable: Collection[str] = SERVED_DEFINITIONS,
    metric: str = "average_precision",
    n_folds: int = 4,
    train_days: int = 7,
    delay_days: int = 7,
    valid_days: int = 7,
    step_days: int | None = None,
    k: int = 100,
    seed: int = 0,
    threads: int | None = None,
) -> SelectionResult:
    """Score every candidate on the same prequential folds; the best mean ``metric`` among
    the candidates of a ``servable`` definition wins.

    ``frame`` (or one frame per feature definition) holds TX_DATETIME, CUSTOMER_ID, the 15
    features and TX_FRAUD, all strictly before ``eval_start``: a row inside the evaluation
    window is an error, not a filter, because it means the caller's window arithmetic is
    wrong.
    """
    began = time.perf_counter()
    frames = {"daily": frame} if isinstance(frame, pd.DataFrame) else dict(frame)
    missing = sorted({c.definition for c in candidates} - set(frames))
    if missing:
        raise ValueError(f"no frame for the feature definition(s) {missing}")
    if metric not in SELECTION_METRICS:
        raise ValueError(f"metric must be one of {SELECTION_METRICS}, got {metric!r}")
    labels = [c.label for c in candidates]
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f"candidates need distinct names, got {labels}")
    for candidate in candidates:
        validate_params(candidate.family, candidate.params)
    start = _as_date(eval_start)
    folds = prequential_folds(
        start,
        n_folds=n_folds,
        train_days=train_days,
        delay_days=delay_days,
        valid_days=valid_days,
        step_days=step_days,
    )
    days = {name: transaction_days(rows) for name, rows in frames.items()}
    for name, rows in frames.items():
        _check_window(rows, days[name], folds, start)
    settings = {
        "metric": metric,
        "k": k,
        "delay_days": delay_days,
        "seed": seed,
        "threads": threads,
    }
    rows = [
        _score_fold(c, frames[c.definition], days[c.definition], fold, settings)
        for c in candidates
        for fold in folds
    ]
    means: dict[str, float | None] = {}
    for candidate in candidates:
        values = [r["value"] for r in rows if r["candidate"] == candidate.label]
        finite = [v for v in values if v is not None]
        means[candidate.label] = float(np.mean(finite)) if finite else None
    scored = [c for c in candidates if means[c.label] is not None and c.definition in servable]
    if not scored:
        raise ValueError(
            f"{metric} is undefined on every fold (single-class validation days), or no "
            f"candidate uses a servable definition {tuple(servable)}"
        )
    best = max(scored, key=lambda c: means[c.label])  # max keeps the first of equals
    seconds = round(time.perf_counter() - began, 1)
    return SelectionResult(
        best, metric, start, folds, means, tuple(rows), seconds, tuple(candidates)
    )
