"""scikit-learn pipelines for the fraud model: three families, validated hyperparameters.

Every pipeline starts with a ColumnTransformer that selects the 15 ``FEATURES`` by name and
drops everything else. The model therefore cannot see TRANSACTION_ID, the keys or the label
even when a caller passes them, which is what the gate's invariance check verifies, and a
serving frame may carry extra columns in any order.

Class imbalance (about 1 % fraud with the defaults) can be handled with class weights, the
same way in the three families (the prequential selection keeps them for HGB only, below): ``class_weight="balanced"`` weighs each class by
``n / (2 * n_class)``, so the frauds carry as much total weight as the legitimate
transactions. Without it a logistic regression's loss is dominated by the majority class
and trees rarely split on the rare positives. scikit-learn 1.9's
HistGradientBoostingClassifier takes ``class_weight`` directly (equivalent to sample
weights, but it travels inside the pipeline, so no fit-parameter routing is needed). No
resampling: it would discard legitimate rows or invent frauds, and the weights do the same
job without changing the data. The scores are then not calibrated probabilities, which the
metrics (AUC, AP, CP@k are all rankings) do not need; ``class_weight`` stays a
hyperparameter (None allowed) so prequential validation can question the choice.

``random_state`` is the ``seed`` argument for every family, so the same inputs and seed give
the same model, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mlops.features.names import FEATURES

FAMILIES: tuple[str, ...] = ("logistic_regression", "random_forest", "hist_gradient_boosting")

# NOTE for the merge: H1 moves these into mlops/training/families.py; carry this block there.
# Chosen by ``mlops.training.selection`` (``make bench``: the 13-entry grid on ``daily``
# features, then each family's best on ``handbook``), default simulation, 3 folds of 7 train
# / 7 delay / 7 validation days before the handbook's test week (never the week itself),
# mean AP: rf_depth12_unweighted 0.679, hgb_default 0.674, hgb_slow_small_trees 0.667,
# hgb_regularised 0.660, hgb_early_stop 0.652, lr_c1_unweighted 0.632, ... hgb_unweighted
# 0.593 (handbook features: rf 0.693, hgb 0.686, lr 0.646). The family default stays HGB:
# RF leads by 0.006 AP and 0.005 CP@100, less than two equally good retrains differ (paired
# CI +-0.013, GatePolicy), for 2-4x the fit time and a 50 MB artifact. Within each family
# the defaults are its best entry: class weights help HGB (+0.08 AP) but hurt LR and RF.
DEFAULT_FAMILY = "hist_gradient_boosting"

# Defaults. HGB: no early stopping (its random 10 % hold-out ignores time; 100 iterations
# cost 4.5 s on 1M rows, ../shared/notes/libs.md §E). RF: depth-limited and on all cores,
# since unbounded trees on a month of data take minutes and weigh tens of MB.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": 1.0, "max_iter": 1000, "class_weight": None},
    "random_forest": {
        "n_estimators": 100,
        "max_depth": 12,
        "min_samples_leaf": 1,
        "max_features": "sqrt",
        "class_weight": None,
        "n_jobs": -1,
    },
    "hist_gradient_boosting": {
        "learning_rate": 0.1,
        "max_iter": 100,
        "max_leaf_nodes": 31,
        "max_depth": None,
        "min_samples_leaf": 20,
        "l2_regularization": 0.0,
        "early_stopping": False,
        "class_weight": "balanced",
    },
}

Check = Callable[[Any], bool]


def _int(lo: int, optional: bool = False) -> Check:
    def check(v: Any) -> bool:
        if v is None:
            return optional
        return isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= lo

    return check


def _float(lo: float, hi: float = math.inf, *, open_lo: bool = True) -> Check:
    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, int | float | np.number):
            return False
        return math.isfinite(v) and (v > lo if open_lo else v >= lo) and v <= hi

    return check


def _one_of(*allowed: Any) -> Check:
    return lambda v: any(v == a and type(v) is type(a) for a in allowed)


def _n_jobs(v: Any) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool) and v != 0 and v >= -1)


def _max_features(v: Any) -> bool:
    return v in ("sqrt", "log2") or _float(0.0, 1.0)(v) or v is None


CHECKS: dict[str, dict[str, Check]] = {
    "logistic_regression": {
        "C": _float(0.0),
        "max_iter": _int(1),
        "tol": _float(0.0),
        "class_weight": _one_of("balanced", None),
    },
    "random_forest": {
        "n_estimators": _int(1),
        "max_depth": _int(1, optional=True),
        "min_samples_leaf": _int(1),
        "max_features": _max_features,
        "max_samples": lambda v: v is None or _float(0.0, 1.0)(v),
        "class_weight": _one_of("balanced", "balanced_subsample", None),
        "n_jobs": _n_jobs,
    },
    "hist_gradient_boosting": {
        "learning_rate": _float(0.0),
        "max_iter": _int(1),
        "max_leaf_nodes": _int(2, optional=True),
        "max_depth": _int(1, optional=True),
        "min_samples_leaf": _int(1),
        "l2_regularization": _float(0.0, open_lo=False),
        "early_stopping": _one_of(True, False),
        # early stopping's hold-out share and patience (mlops.training.selection tunes them)
        "validation_fraction": _float(0.0, 0.5),
        "n_iter_no_change": _int(1),
        "class_weight": _one_of("balanced", None),
    },
}


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {FAMILIES}")


def validate_params(family: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The family's defaults overridden by ``params``; unknown keys and bad values raise.

    Hyperparameters arrive from a UI form (Airflow Params) and end up in MLflow, so a typo
    must fail before training rather than be silently ignored by scikit-learn.
    """
    _check_family(family)
    given = dict(params or {})
    unknown = sorted(set(given) - set(CHECKS[family]))
    if unknown:
        allowed = ", ".join(sorted(CHECKS[family]))
        raise ValueError(f"unknown {family} hyperparameters {unknown}; allowed: {allowed}")
    bad = [f"{k}={v!r}" for k, v in given.items() if not CHECKS[family][k](v)]
    if bad:
        raise ValueError(f"invalid {family} hyperparameters: {', '.join(bad)}")
    return {**DEFAULT_PARAMS[family], **given}


def _estimator(family: str, params: dict[str, Any], seed: int) -> Any:
    if family == "logistic_regression":
        return LogisticRegression(random_state=seed, **params)
    if family == "random_forest":
        return RandomForestClassifier(random_state=seed, **params)
    return HistGradientBoostingClassifier(random_state=seed, **params)


def build_pipeline(family: str, params: Mapping[str, Any] | None = None, seed: int = 0) -> Pipeline:
    """Unfitted pipeline: select the 15 features by name (scaled for the linear model), fit."""
    merged = validate_params(family, params)
    scale = StandardScaler() if family == "logistic_regression" else "passthrough"
    select = ColumnTransformer(
        [("features", scale, list(FEATURES))], remainder="drop", verbose_feature_names_out=False
    )
    return Pipeline([("select", select), ("model", _estimator(family, merged, seed))])


def check_features(frame: pd.DataFrame) -> None:
    """Raise naming the missing feature columns (a clearer error than the ColumnTransformer's)."""
    missing = [name for name in FEATURES if name not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks feature columns {missing}")


def train(
    family: str,
    features_frame: pd.DataFrame,
    labels: Any,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    *,
    threads: int | None = None,
) -> Pipeline:
    """Fit one pipeline on the 15 features of ``features_frame`` (other columns are ignored).

    The pipeline is fitted on exactly the feature columns, so its ``feature_names_in_`` (and
    the MLflow signature inferred from it) names the 15 features and nothing else.
    ``threads`` caps the OpenMP/BLAS threads while fitting: when other processes share the
    cores, HGB's OpenMP threads wait on each other (measured: 3.0 s with 2 threads against
    0.33 s with 1 on 27k rows, a loaded 2-core host). None leaves the library default.
    """
    check_features(features_frame)
    y = np.asarray(labels).reshape(-1)
    if len(y) != len(features_frame):
        raise ValueError(f"{len(y)} labels for {len(features_frame)} rows")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError("labels must hold both classes, 0 and 1")
    model = build_pipeline(family, params, seed)
    with threadpool_limits(limits=threads):
        model.fit(features_frame.loc[:, list(FEATURES)], y)
    if family == "random_forest":
        # n_jobs speeds up fitting only: one row gains nothing from a thread pool (43 ms a
        # call instead of a few, measured), and threads sum the trees' votes in any order,
        # so the last bits of a score would differ from call to call.
        model.set_params(model__n_jobs=1)
    return model


def predict_scores(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """P(fraud) for each row; the column order of ``frame`` and extra columns do not matter."""
    return np.asarray(model.predict_proba(frame))[:, 1]
