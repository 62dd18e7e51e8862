"""A training request that ``train_and_gate`` can run in seconds: synthetic training and
evaluation sets (``tests.support.logged_runs.synthetic_frame``) published where
``build_training_sets`` would have put them, and a gate policy with floors low enough for them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from mlops.evaluation.history import KNOWN_FRAUD_COLUMNS
from mlops.features.names import LABEL
from mlops.registry.tracking import RunContext
from mlops.settings import Settings
from mlops.training.job import (
    TrainingOutcome,
    TrainingRequest,
    publish_training_sets,
    train_and_gate,
    training_sets_uri,
)
from tests.support.logged_runs import POLICY, synthetic_frame


def publish_sets(settings: Settings, as_of: date, seed: int = 0) -> str:
    """Synthetic sets of ``as_of`` (400 rows each); returns their URI."""
    training = synthetic_frame(seed, as_of - timedelta(days=28))
    evaluation = synthetic_frame(seed + 100, as_of - timedelta(days=14))
    known = training.loc[training[LABEL] == 1, list(KNOWN_FRAUD_COLUMNS)]
    inputs = {"training": {"date=x": f"{seed:064x}"}, "evaluation": {"date=y": f"{seed:064x}"}}
    uri = training_sets_uri(settings, as_of)
    publish_training_sets(uri, training, evaluation, inputs, known_frauds=known)
    return uri


def run_request(settings: Settings, as_of: date, airflow_run_id: str, **kw: Any) -> TrainingOutcome:
    """``train_and_gate`` as model_training's task calls it, for the run ``airflow_run_id``."""
    request = TrainingRequest(
        as_of=as_of,
        family="hist_gradient_boosting",
        params={"max_iter": 10},
        reason="a retrain request",
    )
    return train_and_gate(
        settings,
        request,
        context=RunContext("model_training", as_of, airflow_run_id),
        sets_uri=training_sets_uri(settings, as_of),
        policy=POLICY,
        reuse_decided=True,  # as for a run woken by a retrain request
        **kw,
    )
