"""The wider prequential selection: two feature definitions, only a served one can win."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from mlops.features.names import FEATURES
from mlops.training.families import validate_params
from mlops.training.selection import Candidate, select_model, wide_grid

START, DAYS, CARDS = datetime(2018, 5, 1), 35, 300
EVAL_START = date(2018, 6, 5)


def frame(signal: float, seed: int) -> pd.DataFrame:
    """Random features; the label follows the first feature more or less closely."""
    rng = np.random.default_rng(seed)
    n = DAYS * CARDS
    out = pd.DataFrame(rng.random((n, len(FEATURES))), columns=list(FEATURES))
    out["TX_DATETIME"] = [START + timedelta(days=int(i // CARDS), seconds=int(i % CARDS)) for i in range(n)]  # fmt: skip
    out["CUSTOMER_ID"] = np.arange(n)  # one card a row: none becomes known
    score = signal * out["TX_AMOUNT"] + rng.random(n)
    out["TX_FRAUD"] = (score > np.quantile(score, 0.97)).astype("int64")
    return out


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {"daily": frame(1.0, 0), "handbook": frame(4.0, 0)}


def test_only_a_served_definition_can_become_the_default(frames):
    candidates = (
        Candidate("logistic_regression", {}, "lr", "daily"),
        Candidate("logistic_regression", {}, "lr@handbook", "handbook"),
    )
    result = select_model(frames, EVAL_START, candidates=candidates, n_folds=2, threads=1)
    assert result.means["lr@handbook"] > result.means["lr"]  # the better one is not servable
    assert result.best.label == "lr" and result.best.definition == "daily"
    assert result.best_per_family() == {"logistic_regression": candidates[1]}
    summary = result.summary()
    assert set(summary["lr"]) == {"average_precision", "card_precision_at_k", "roc_auc", "fit_seconds"}  # fmt: skip
    assert summary["lr"]["average_precision"] == round(result.means["lr"], 4)
    assert result.to_dict()["best"]["definition"] == "daily"


def test_a_definition_without_a_frame_is_refused(frames):
    candidates = (Candidate("logistic_regression", {}, "lr@handbook", "handbook"),)
    with pytest.raises(
        ValueError, match=r"no frame for the feature definition\(s\) \['handbook'\]"
    ):
        select_model(frames["daily"], EVAL_START, candidates=candidates, n_folds=2)
    with pytest.raises(ValueError, match="no candidate uses a servable definition"):
        select_model(frames, EVAL_START, candidates=candidates, n_folds=2, threads=1)


def test_the_wide_grid_crosses_weighting_early_stopping_and_definitions():
    grid = wide_grid()
    assert len(grid) == 2 * len(wide_grid(("daily",)))
    assert {c.definition for c in grid} == {"daily", "handbook"}
    for candidate in grid:
        validate_params(candidate.family, candidate.params)  # every entry is a valid request
    chosen = [(c.family, validate_params(c.family, c.params)) for c in grid]
    weights = {(f, p["class_weight"]) for f, p in chosen if "class_weight" in p}
    assert {(f, None) for f, _ in weights} <= weights  # each family also unweighted
    hgb = [validate_params(c.family, c.params) for c in grid if c.family == "hist_gradient_boosting"]  # fmt: skip
    assert {p["early_stopping"] for p in hgb} == {True, False}
    assert "hgb_lr_stack" in {c.family for c in grid}  # the blend competes with its members
