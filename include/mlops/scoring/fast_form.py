"""What a fast scorer of a fitted pipeline is built from, as plain data (``FastForm``).

The data pickles, so the model service's loader process can check a form against the
model's ``predict_proba`` and hand it to the server, which only builds it
(``mlops.scoring.portable``). A form is the column selection and scalings of the
pipeline's ``ColumnTransformer`` (``parts``), then a head that gives the log-odds of a row:

- ``Linear``: a binary ``LogisticRegression``, ``((x - mean) / scale) @ coef + intercept``
  (a ``StandardScaler`` in front folded in);
- ``Trees``: a binary ``HistGradientBoostingClassifier``, its baseline plus one leaf value per
  tree, the trees compiled to Python (``mlops.scoring.tree_code``) and kept marshalled;
- ``Stack``: a binary ``StackingClassifier`` on its members' ``decision_function`` (no
  passthrough), its final logistic regression over the members' log-odds.

P(class 1) is ``expit`` of the head, as scikit-learn computes it for all three. Anything else
has no form (``fast_form`` says why) and is scored by scikit-learn.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.features.names import FEATURES
from mlops.scoring.tree_code import hgb_raw, tree_code

Part = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]  # columns, mean, scale
Raw = Callable[[np.ndarray], np.ndarray]


def identity(step: Any) -> bool:
    """``"passthrough"``, which a fitted ColumnTransformer holds as a FunctionTransformer."""
    if isinstance(step, str):
        return step == "passthrough"
    return type(step).__name__ == "FunctionTransformer" and step.func is None


def columns_of(fitted: Any) -> list[int] | None:
    """Positions in ``FEATURES`` of the columns ``fitted`` was given, in its order."""
    names = getattr(fitted, "feature_names_in_", None)
    if names is None:
        return list(range(len(FEATURES))) if fitted.n_features_in_ == len(FEATURES) else None
    return [FEATURES.index(n) for n in names] if set(names) <= set(FEATURES) else None


def _part(transformer: Any, step: Any, columns: Any) -> Part | None:
    """(positions in FEATURES, mean or None, scale or None) of one transformer, or None."""
    integers = all(isinstance(c, (int, np.integer)) for c in columns)
    names = [transformer.feature_names_in_[c] for c in columns] if integers else list(columns)
    if not names or not set(names) <= set(FEATURES):
        return None
    index = np.array([FEATURES.index(n) for n in names])
    if identity(step):
        return index, None, None
    if type(step).__name__ == "StandardScaler":
        return index, *_scaling(step)
    return None


def _scaling(scaler: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    return (scaler.mean_ if scaler.with_mean else None), (
        scaler.scale_ if scaler.with_std else None
    )


def _selection(transformer: Any) -> list[Part] | None:
    """The ColumnTransformer of the training pipeline as column selections and scalings."""
    if type(transformer).__name__ != "ColumnTransformer":
        return None
    parts = []
    for _, step, columns in transformer.transformers_:
        if not (isinstance(step, str) and step == "drop"):
            parts.append(_part(transformer, step, columns))
    return None if not parts or None in parts else parts


def _prepare(parts: tuple[Part, ...]) -> Callable[[np.ndarray], np.ndarray]:
    if len(parts) == 1 and parts[0][1] is None and parts[0][2] is None:
        index = parts[0][0]
        if list(index) == list(range(len(FEATURES))):
            return lambda values: values
        return lambda values: values[:, index]

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


@dataclass(frozen=True)
class Linear:
    coef: np.ndarray
    intercept: float
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def raw(self) -> Raw:
        coef, intercept, mean, scale = self.coef, self.intercept, self.mean, self.scale

        def linear(x: np.ndarray) -> np.ndarray:
            if mean is not None:
                x = x - mean
            if scale is not None:
                x = x / scale
            return x @ coef + intercept

        return linear


@dataclass(frozen=True)
class Trees:
    baseline: float
    code: tuple[bytes, ...]  # each tree's compiled module, marshalled

    def raw(self) -> Raw:
        one = hgb_raw(self.baseline, [marshal.loads(code) for code in self.code])
        return lambda x: np.array([one(row) for row in x.tolist()], dtype=np.float64)


@dataclass(frozen=True)
class Stack:
    members: tuple[Linear | Trees, ...]
    final: Linear

    def raw(self) -> Raw:
        members, final = [m.raw() for m in self.members], self.final.raw()
        return lambda x: final(np.column_stack([member(x) for member in members]))


@dataclass(frozen=True)
class FastForm:
    parts: tuple[Part, ...]
    head: Linear | Trees | Stack
    what: str

    def build(self) -> Callable[[np.ndarray], np.ndarray]:
        """``f(values)``: rows in ``FEATURES`` order -> P(class 1)."""
        from scipy.special import expit  # what scikit-learn uses

        prepare, raw = _prepare(self.parts), self.head.raw()
        return lambda values: expit(raw(prepare(values)))


def _head(estimator: Any) -> Linear | Trees | Stack | None:
    name = type(estimator).__name__
    if name == "HistGradientBoostingClassifier":
        found = tree_code(estimator)
        if found is None:
            return None
        return Trees(found[0], tuple(marshal.dumps(code) for code in found[1]))
    if name == "LogisticRegression" and len(estimator.classes_) == 2:
        return Linear(estimator.coef_[0].copy(), float(estimator.intercept_[0]))
    if name == "StackingClassifier":
        return _stack(estimator)
    return None


def _member(member: Any) -> Linear | Trees | None:
    """A stack member's log-odds: an HGB, or a logistic regression after at most a scaler."""
    *before, estimator = [step for _, step in getattr(member, "steps", [("model", member)])]
    head = _head(estimator)
    if not before:
        return head if isinstance(head, (Linear, Trees)) else None
    if len(before) > 1 or type(before[0]).__name__ != "StandardScaler":
        return None
    if not isinstance(head, Linear):
        return None
    mean, scale = _scaling(before[0])
    return Linear(head.coef, head.intercept, mean, scale)


def _stack(stack: Any) -> Stack | None:
    methods = set(getattr(stack, "stack_method_", ()))
    if stack.passthrough or len(stack.classes_) != 2 or methods != {"decision_function"}:
        return None
    members = [_member(m) for m in stack.estimators_]
    final = _head(stack.final_estimator_)
    if not members or None in members or not isinstance(final, Linear):
        return None
    return Stack(tuple(members), final)


def fast_form(model: Any) -> tuple[FastForm | None, str]:
    """The fast form of ``model`` and what it is, or None and why."""
    steps = list(getattr(model, "steps", [("model", model)]))
    *before, (_, estimator) = steps
    before = [s for _, s in before if not (s is None or s == "passthrough")]
    if len(before) > 1:
        return None, f"{len(before)} preprocessing steps: scored by scikit-learn"
    if before:
        parts = _selection(before[0])
        if parts is None:
            return None, f"preprocessing {type(before[0]).__name__}: scored by scikit-learn"
    else:
        index = columns_of(estimator)
        if index is None:
            return None, "columns other than FEATURES: scored by scikit-learn"
        parts = [(np.array(index), None, None)]
    head = _head(estimator)
    if head is None:
        return None, f"{type(estimator).__name__}: scored by scikit-learn"
    what = f"{type(estimator).__name__} as code"
    return FastForm(tuple(parts), head, what), what


def tree_models(estimator: Any) -> list[Any]:
    """The HGB models whose thresholds a probe should hit: the estimator, or a stack's members
    that take its input unchanged."""
    if type(estimator).__name__ == "StackingClassifier":
        return [m for m in getattr(estimator, "estimators_", []) if hasattr(m, "_predictors")]
    return [estimator] if hasattr(estimator, "_predictors") else []


__all__ = ["FastForm", "Linear", "Stack", "Trees", "columns_of", "fast_form", "identity"]
