"""A fast scorer of a few rows, derived from a registered scikit-learn model and checked
against it: the model service's path for one transaction.

``predict_proba`` of the training pipeline on a one-row DataFrame costs about 3 ms, most of
it pandas and validation around two small computations. ``row_scorer`` reads the fitted
pipeline and rebuilds those computations on a float array in the order of ``FEATURES``:

- the ``ColumnTransformer`` (``mlops.training.estimators``: the 15 features by name,
  ``"passthrough"`` or a ``StandardScaler``, the rest dropped) as a column selection and
  ``(x - mean_) / scale_``;
- a binary ``HistGradientBoostingClassifier`` as compiled Python (``tree_code``), a
  binary ``LogisticRegression`` as ``expit(x @ coef + intercept)``, or a binary
  ``StackingClassifier`` of those on their log-odds (``mlops.scoring.fast_form``, where
  the form is data that pickles).

Anything else (random forest, other steps, NaN in a tree model's row, more than ``BATCH``
rows at once) is scored by the model itself. The registry keeps the scikit-learn model as
the source of truth: the fast form is rebuilt from it at every load, carries the model's
``digest`` (SHA-256 of its pickle) and version, and is only used once it gave the model's
own ``predict_proba`` to ``TOLERANCE`` on ``PROBE_ROWS`` probe rows (every split threshold
and the float just above it, among ordinary values); on any difference the scorer falls
back to the model and says why in ``fast_path``.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops.features.names import FEATURES
from mlops.scoring.fast_form import FastForm, columns_of, fast_form, identity, tree_models

log = logging.getLogger(__name__)

TOLERANCE = 1e-9
PROBE_ROWS = 512
BATCH = 32  # above this many rows at once, scikit-learn's vectorised path is as quick
Fast = Callable[[np.ndarray], np.ndarray]
_ORDINARY = (0.0, 1.0, 2.0, 3.0, 7.5, 20.0, 55.5, 130.0, 1000.0, 0.25, 0.01)


def digest(model: Any) -> str:
    return hashlib.sha256(pickle.dumps(model, protocol=5)).hexdigest()


def fast_path(model: Any) -> tuple[Fast | None, str]:
    """``f(values)`` (rows in ``FEATURES`` order -> P(class 1)) and what it is, or None and why."""
    form, what = fast_form(model)
    return (None if form is None else form.build()), what


def probe_rows(model: Any, rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows of ordinary values, and of every tree threshold and the float just above it on
    the feature it splits (as seen by the input column when the feature passes through)."""
    rng = np.random.default_rng(seed)
    pools = [list(_ORDINARY) for _ in FEATURES]
    estimator = getattr(model, "steps", [("m", model)])[-1][1]
    columns = _passthrough_columns(model)
    forests = [getattr(m, "_predictors", []) for m in tree_models(estimator)]
    for trees in (trees for forest in forests for trees in forest):
        for predictor in trees:
            for node in predictor.nodes[predictor.nodes["is_leaf"] == 0]:
                column = columns.get(int(node["feature_idx"])) if columns else None
                if column is not None:
                    t = float(node["num_threshold"])
                    pools[column] += [t, float(np.nextafter(t, np.inf))]
    columns = [rng.choice(np.array(pool, dtype=np.float64), size=rows) for pool in pools]
    return np.column_stack(columns)


def _passthrough_columns(model: Any) -> dict[int, int] | None:
    """Estimator input -> position in FEATURES, when the inputs are the features unchanged."""
    steps = getattr(model, "steps", None)
    if steps is None:
        index = columns_of(model)
        return dict(enumerate(index)) if index else None
    first = steps[0][1]
    if type(first).__name__ != "ColumnTransformer":
        return None
    kept = [t for t in first.transformers_ if not (isinstance(t[1], str) and t[1] == "drop")]
    if len(kept) != 1 or not identity(kept[0][1]):
        return None
    return {i: FEATURES.index(n) for i, n in enumerate(kept[0][2]) if n in FEATURES}


def _frame(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(values, columns=list(FEATURES))


@dataclass(frozen=True)
class RowScorer:
    """The registered model (``model``, the source of truth) and its checked fast form."""

    model: Any
    digest: str
    version: str | None
    fast: Fast | None
    fast_path: str  # what scores a few rows, or why scikit-learn does

    def scores(self, rows: np.ndarray | pd.DataFrame) -> np.ndarray:
        """P(class 1) of rows given as floats in ``FEATURES`` order (or a frame holding them)."""
        if isinstance(rows, pd.DataFrame):
            rows = rows[list(FEATURES)].to_numpy(dtype=np.float64)
        if self.fast is not None and len(rows) <= BATCH and not np.isnan(rows).any():
            return self.fast(rows)
        return np.asarray(self.model.predict_proba(_frame(rows))[:, 1], dtype=np.float64)

    def predict_proba(self, rows: np.ndarray | pd.DataFrame) -> np.ndarray:
        p = self.scores(rows)
        return np.column_stack([1.0 - p, p])


def checked(
    model: Any, version: str | None, fast: Fast | None, what: str
) -> tuple[Fast | None, str]:
    """``fast`` and what it is when it gives ``predict_proba`` to ``TOLERANCE`` on the probe
    rows; else None and why."""
    if fast is None:
        return None, what
    probe = probe_rows(model)
    try:
        expected = np.asarray(model.predict_proba(_frame(probe))[:, 1], dtype=np.float64)
        got = np.concatenate([fast(probe[i : i + BATCH]) for i in range(0, len(probe), BATCH)])
        worst = float(np.max(np.abs(got - expected)))
    except Exception as err:  # a fast form that cannot even run is not used
        worst, what = float("inf"), f"{what} raised {type(err).__name__}: {err}"
    if not worst <= TOLERANCE:
        log.warning("fast scorer of v%s differs from predict_proba (%s): %s", version, worst, what)
        return None, f"fast form differs from predict_proba by {worst:.3g}: scikit-learn"
    return fast, what


def row_scorer(
    model: Any,
    version: str | None = None,
    *,
    build: Callable[[Any], tuple[Fast | None, str]] = fast_path,
) -> RowScorer:
    """The scorer of ``model``; its fast form only when it matches ``predict_proba``."""
    if isinstance(model, RowScorer):
        return model
    fast, what = checked(model, version, *build(model))
    return RowScorer(model, digest(model), version, fast, what)


__all__ = [
    "BATCH",
    "TOLERANCE",
    "FastForm",
    "RowScorer",
    "checked",
    "digest",
    "fast_form",
    "fast_path",
    "probe_rows",
    "row_scorer",
]
