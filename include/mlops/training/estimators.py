"""scikit-learn pipelines for the fraud model: four families, validated hyperparameters.

The families, their defaults and the checks of a request live in
``mlops.training.families`` (no scikit-learn there, so DAG files can read them cheaply).

Every pipeline starts with a ColumnTransformer that selects the 15 ``FEATURES`` by name and
drops everything else. The model therefore cannot see TRANSACTION_ID, the keys or the label
even when a caller passes them, which is what the gate's invariance check verifies, and a
serving frame may carry extra columns in any order.

The fourth family, ``hgb_lr_stack`` (the default), is a ``StackingClassifier`` of the HGB and
the scaled logistic regression, each with its own family's hyperparameters, blended in
log-odds by a final logistic regression (``_stack``). It stays plain scikit-learn, so MLflow's
sklearn flavour and skops store it (one more trusted type, ``mlops.registry.trust``), and the
row scorer scores it as its members' code (``mlops.scoring.row_scorer``). Its final
regression is fitted unweighted on out-of-fold scores, so its scores are close to calibrated
probabilities even though its HGB member is class-weighted.

Class imbalance (about 1 % fraud with the defaults) can be handled with class weights, the
same way in the three base families (the prequential selection keeps them for HGB only,
``mlops.training.families``): ``class_weight="balanced"`` weighs each class by
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

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mlops.features.names import FEATURES
from mlops.training.families import STACK_MEMBERS, validate_params


def _stack(params: dict[str, Any], seed: int) -> StackingClassifier:
    """HGB and the scaled logistic regression, blended in log-odds: the final logistic
    regression takes each member's ``decision_function`` (its log-odds up to a constant),
    fitted on out-of-fold scores of ``cv`` contiguous folds of the training rows, so
    ``P = expit(c + a * f_hgb(x) + b * f_lr(x))``. An average of probabilities would let the
    class-weighted HGB's inflated probabilities drown the linear model's."""
    members = []
    for family in STACK_MEMBERS:
        member = _estimator(family, validate_params(family, params[family]), seed)
        if family == "logistic_regression":
            member = Pipeline([("scale", StandardScaler()), ("model", member)])
        members.append((family, member))
    final = LogisticRegression(random_state=seed)
    # an int cv: StratifiedKFold without shuffling, deterministic (and no splitter object
    # for skops to trust)
    return StackingClassifier(
        members, final_estimator=final, cv=params["cv"], stack_method="decision_function"
    )


def _estimator(family: str, params: dict[str, Any], seed: int) -> Any:
    if family == "logistic_regression":
        return LogisticRegression(random_state=seed, **params)
    if family == "random_forest":
        return RandomForestClassifier(random_state=seed, **params)
    if family == "hgb_lr_stack":
        return _stack(params, seed)
    return HistGradientBoostingClassifier(random_state=seed, **params)


def build_pipeline(family: str, params: Mapping[str, Any] | None = None, seed: int = 0) -> Pipeline:
    """Unfitted pipeline: select the 15 features by name (scaled for the linear model), fit.
    The stack scales inside its linear member, so its trees see the features unchanged."""
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
