"""The model families, their default hyperparameters and the checks of a requested set.

Kept apart from ``mlops.training.estimators`` (the scikit-learn pipelines) and free of
numpy, pandas and scikit-learn, so that a DAG file can offer the families in its trigger
form at parse time without paying for those imports, and a request is validated in the
same words wherever it arrives. Numbers from numpy pass the checks through the ``numbers``
ABCs, which numpy registers its scalar types with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any

FAMILIES: tuple[str, ...] = (
    "logistic_regression",
    "random_forest",
    "hist_gradient_boosting",
    "hgb_lr_stack",
)
# The stack's members: each takes its family's hyperparameters (validated as that family's)
STACK_MEMBERS: tuple[str, ...] = ("hist_gradient_boosting", "logistic_regression")

# Chosen by ``mlops.training.selection`` (``make bench``: the 14-entry grid on ``daily``
# features, then each family's best on ``handbook``), default simulation, 3 folds of 7 train
# / 7 delay / 7 validation days before the handbook's test week (never the week itself),
# mean AP: stack_hgb_lr 0.683, rf_depth12_unweighted 0.679, hgb_default 0.674,
# hgb_slow_small_trees 0.667, hgb_regularised 0.660, hgb_early_stop 0.652, lr_c1_unweighted
# 0.632, ... hgb_unweighted 0.593 (handbook features: stack 0.695, rf 0.693, hgb 0.686, lr
# 0.646). The stack also leads HGB alone on the folds' AUC (0.877 against 0.870) and CP@100
# (0.303 against 0.298); on the test week (bench, handbook protocol) it gives AUC 0.881, AP
# 0.682, CP@100 0.340 where HGB gave 0.863 / 0.653 / 0.323. What buys it is the blend in
# log-odds: the trees and the linear model rank differently (LR alone has the better AUC,
# HGB the better AP), and averaging their probabilities instead gains nothing (the weighted
# HGB's inflated probabilities drown the LR's). It costs 3-4x HGB's fit (4 fits of each
# member: 3 out-of-fold, 1 on all rows) and about 8 us a row on the service's fast path.
# Within each family the defaults are its best entry: class weights help HGB (+0.08 AP)
# but hurt LR and RF; the stack's members are those two defaults, not tuned again.
DEFAULT_FAMILY = "hgb_lr_stack"

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
    # members at their families' defaults (the overrides given here, validated as theirs);
    # ``cv`` folds give the out-of-fold scores the blending weights are fitted on
    "hgb_lr_stack": {"cv": 3, "hist_gradient_boosting": {}, "logistic_regression": {}},
}

Check = Callable[[Any], bool]


def _int(lo: int, optional: bool = False) -> Check:
    def check(v: Any) -> bool:
        if v is None:
            return optional
        return isinstance(v, Integral) and not isinstance(v, bool) and v >= lo

    return check


def _float(lo: float, hi: float = math.inf, *, open_lo: bool = True) -> Check:
    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, Real):
            return False
        return math.isfinite(v) and (v > lo if open_lo else v >= lo) and v <= hi

    return check


def _one_of(*allowed: Any) -> Check:
    return lambda v: any(v == a and type(v) is type(a) for a in allowed)


def _n_jobs(v: Any) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool) and v != 0 and v >= -1)


def _max_features(v: Any) -> bool:
    return v in ("sqrt", "log2") or _float(0.0, 1.0)(v) or v is None


def _member(family: str) -> Check:
    """A stack member's overrides: a mapping that ``validate_params`` accepts for its family
    (which raises naming the bad key, a clearer message than a failed check)."""

    def check(v: Any) -> bool:
        if not isinstance(v, Mapping):
            return False
        validate_params(family, v)
        return True

    return check


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
    "hgb_lr_stack": {"cv": _int(2), **{member: _member(member) for member in STACK_MEMBERS}},
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
