"""A fast scorer of a few rows, derived from a registered scikit-learn model and checked
against it: the model service's path for one transaction.

``predict_proba`` of the training pipeline on a one-row DataFrame costs about 3 ms, most of
it pandas and validation around two small computations. ``row_scorer`` reads the fitted
pipeline and rebuilds those computations on a float array in the order of ``FEATURES``:

- the ``ColumnTransformer`` (``mlops.training.estimators``: the 15 features by name,
  ``"passthrough"`` or a ``StandardScaler``, the rest dropped) as a column selection and
  ``(x - mean_) / scale_``;
- a binary ``HistGradientBoostingClassifier`` as compiled Python (``tree_code``), or a
  binary ``LogisticRegression`` as ``expit(x @ coef + intercept)``;
- a binary ``StackingClassifier`` of such members on their ``decision_function`` (the
  ``hgb_lr_stack`` family: the trees' raw sum and the scaled linear model's
  ``x @ coef + intercept``), blended by its final logistic regression as above.

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
from mlops.scoring.tree_code import compile_hgb, compile_hgb_raw

log = logging.getLogger(__name__)

TOLERANCE = 1e-9
PROBE_ROWS = 512
BATCH = 32  # above this many rows at once, scikit-learn's vectorised path is as quick
Fast = Callable[[np.ndarray], np.ndarray]
_ORDINARY = (0.0, 1.0, 2.0, 3.0, 7.5, 20.0, 55.5, 130.0, 1000.0, 0.25, 0.01)


def digest(model: Any) -> str:
    return hashlib.sha256(pickle.dumps(model, protocol=5)).hexdigest()


def _columns(fitted: Any) -> list[int] | None:
    """Positions in ``FEATURES`` of the columns ``fitted`` was given, in its order."""
    names = getattr(fitted, "feature_names_in_", None)
    if names is None:
        return list(range(len(FEATURES))) if fitted.n_features_in_ == len(FEATURES) else None
    return [FEATURES.index(n) for n in names] if set(names) <= set(FEATURES) else None


def _identity(step: Any) -> bool:
    """``"passthrough"``, which a fitted ColumnTransformer holds as a FunctionTransformer."""
    if isinstance(step, str):
        return step == "passthrough"
    return type(step).__name__ == "FunctionTransformer" and step.func is None


def _part(transformer: Any, step: Any, columns: Any) -> tuple | None:
    """(positions in FEATURES, mean or None, scale or None) of one transformer, or None."""
    integers = all(isinstance(c, (int, np.integer)) for c in columns)
    names = [transformer.feature_names_in_[c] for c in columns] if integers else list(columns)
    if not names or not set(names) <= set(FEATURES):
        return None
    index = np.array([FEATURES.index(n) for n in names])
    if _identity(step):
        return index, None, None
    if type(step).__name__ == "StandardScaler":
        return index, step.mean_ if step.with_mean else None, step.scale_ if step.with_std else None
    return None


def _selection(transformer: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """The ColumnTransformer of the training pipeline as array operations, or None."""
    if type(transformer).__name__ != "ColumnTransformer":
        return None
    parts = []
    for _, step, columns in transformer.transformers_:
        if not (isinstance(step, str) and step == "drop"):
            parts.append(_part(transformer, step, columns))
    if not parts or None in parts:
        return None

    def select(values: np.ndarray) -> np.ndarray:
        out = []
        for index, mean, scale in parts:
            x = values[:, index]
            if mean is not None:
                x = x - mean
            if scale is not None:
                x = x / scale
            out.append(x)
        return out[0] if len(out) == 1 else np.hstack(out)

    return select


def _raw_fast(member: Any) -> Fast | None:
    """A stack member's ``decision_function`` on rows of the stack's input: an HGB as code,
    or a logistic regression, after at most a ``StandardScaler``, as ``x @ coef + b``."""
    *before, estimator = [step for _, step in getattr(member, "steps", [("model", member)])]
    if len(before) > 1 or (before and type(before[0]).__name__ != "StandardScaler"):
        return None
    name = type(estimator).__name__
    if name == "HistGradientBoostingClassifier" and not before:
        raw = compile_hgb_raw(estimator)
        if raw is None:
            return None
        return lambda x: np.array([raw(row) for row in x.tolist()], dtype=np.float64)
    if name != "LogisticRegression" or len(estimator.classes_) != 2:
        return None
    coef, intercept = estimator.coef_[0].copy(), float(estimator.intercept_[0])
    scaler = before[0] if before else None
    mean = scaler.mean_ if scaler is not None and scaler.with_mean else None
    scale = scaler.scale_ if scaler is not None and scaler.with_std else None

    def linear(x: np.ndarray) -> np.ndarray:
        if mean is not None:
            x = x - mean
        if scale is not None:
            x = x / scale
        return x @ coef + intercept

    return linear


def _stack_fast(stack: Any) -> Fast | None:
    """``final(column_stack(member raw scores))`` of a binary stack on decision functions."""
    methods = set(getattr(stack, "stack_method_", ()))
    if stack.passthrough or len(stack.classes_) != 2 or methods != {"decision_function"}:
        return None
    parts = [_raw_fast(member) for member in stack.estimators_]
    final = _estimator_fast(stack.final_estimator_)
    if not parts or None in parts or final is None:
        return None
    return lambda x: final(np.column_stack([part(x) for part in parts]))


def _estimator_fast(estimator: Any) -> Fast | None:
    name = type(estimator).__name__
    if name == "StackingClassifier":
        return _stack_fast(estimator)
    if name == "HistGradientBoostingClassifier":
        tree = compile_hgb(estimator)
        if tree is None:
            return None
        return lambda x: np.array([tree(row) for row in x.tolist()], dtype=np.float64)
    if name == "LogisticRegression" and len(estimator.classes_) == 2:
        coef, intercept = estimator.coef_[0].copy(), float(estimator.intercept_[0])
        from scipy.special import expit  # what scikit-learn uses

        return lambda x: expit(x @ coef + intercept)
    return None


def fast_path(model: Any) -> tuple[Fast | None, str]:
    """``f(values)`` (rows in ``FEATURES`` order -> P(class 1)) and what it is, or None and why."""
    steps = list(getattr(model, "steps", [("model", model)]))
    *before, (_, estimator) = steps
    before = [s for _, s in before if not (s is None or s == "passthrough")]
    if len(before) > 1:
        return None, f"{len(before)} preprocessing steps: scored by scikit-learn"
    if before:
        prepare = _selection(before[0])
        if prepare is None:
            return None, f"preprocessing {type(before[0]).__name__}: scored by scikit-learn"
    else:
        index = _columns(estimator)
        if index is None:
            return None, "columns other than FEATURES: scored by scikit-learn"
        prepare = (lambda v: v) if index == list(range(len(FEATURES))) else (lambda v: v[:, index])
    score = _estimator_fast(estimator)
    if score is None:
        return None, f"{type(estimator).__name__}: scored by scikit-learn"
    return (lambda values: score(prepare(values))), f"{type(estimator).__name__} as code"


def probe_rows(model: Any, rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows of ordinary values, and of every tree threshold and the float just above it on
    the feature it splits (as seen by the input column when the feature passes through)."""
    rng = np.random.default_rng(seed)
    pools = [list(_ORDINARY) for _ in FEATURES]
    estimator = getattr(model, "steps", [("m", model)])[-1][1]
    columns = _passthrough_columns(model)
    # the estimator's trees, or those of a stack's members that take its input unchanged
    forests = [getattr(m, "_predictors", []) for m in [estimator, *_members(estimator)]]
    for trees in (trees for forest in forests for trees in forest):
        for predictor in trees:
            for node in predictor.nodes[predictor.nodes["is_leaf"] == 0]:
                column = columns.get(int(node["feature_idx"])) if columns else None
                if column is not None:
                    t = float(node["num_threshold"])
                    pools[column] += [t, float(np.nextafter(t, np.inf))]
    columns = [rng.choice(np.array(pool, dtype=np.float64), size=rows) for pool in pools]
    return np.column_stack(columns)


def _members(estimator: Any) -> list[Any]:
    """A stack's fitted members (none for any other estimator)."""
    if type(estimator).__name__ != "StackingClassifier":
        return []
    return list(getattr(estimator, "estimators_", []))


def _passthrough_columns(model: Any) -> dict[int, int] | None:
    """Estimator input -> position in FEATURES, when the inputs are the features unchanged."""
    steps = getattr(model, "steps", None)
    if steps is None:
        index = _columns(model)
        return dict(enumerate(index)) if index else None
    first = steps[0][1]
    if type(first).__name__ != "ColumnTransformer":
        return None
    kept = [t for t in first.transformers_ if not (isinstance(t[1], str) and t[1] == "drop")]
    if len(kept) != 1 or not _identity(kept[0][1]):
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


def row_scorer(
    model: Any,
    version: str | None = None,
    *,
    build: Callable[[Any], tuple[Fast | None, str]] = fast_path,
) -> RowScorer:
    """The scorer of ``model``; its fast form only when it matches ``predict_proba``."""
    if isinstance(model, RowScorer):
        return model
    fast, what = build(model)
    if fast is not None:
        probe = probe_rows(model)
        try:
            expected = np.asarray(model.predict_proba(_frame(probe))[:, 1], dtype=np.float64)
            got = np.concatenate([fast(probe[i : i + BATCH]) for i in range(0, len(probe), BATCH)])
            worst = float(np.max(np.abs(got - expected)))
        except Exception as err:  # a fast form that cannot even run is not used
            worst, what = float("inf"), f"{what} raised {type(err).__name__}: {err}"
        if not worst <= TOLERANCE:
            log.warning(
                "fast scorer of v%s differs from predict_proba (%s): %s", version, worst, what
            )
            fast, what = None, f"fast form differs from predict_proba by {worst:.3g}: scikit-learn"
    return RowScorer(model, digest(model), version, fast, what)


__all__ = ["BATCH", "TOLERANCE", "RowScorer", "digest", "fast_path", "probe_rows", "row_scorer"]
