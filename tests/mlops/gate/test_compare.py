"""Candidate and champion are judged on the same rows, and the record says what was removed."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd

from mlops.features.names import FEATURES
from mlops.gate.compare import evaluate_against_champion
from mlops.gate.policy import GatePolicy


def scorer(weight: float) -> SimpleNamespace:
    def predict_proba(frame: pd.DataFrame) -> np.ndarray:
        p = np.clip(frame["TX_AMOUNT"].to_numpy() / 400 + weight * frame["signal"].to_numpy(), 0, 1)
        return np.column_stack([1 - p, p])

    return SimpleNamespace(predict_proba=predict_proba)


def test_cards_known_from_the_history_are_removed_for_both_models_and_counted():
    rng = np.random.default_rng(1)
    cards, days = 300, 7
    n = cards * days
    window = pd.DataFrame(rng.random((n, len(FEATURES))), columns=list(FEATURES)).assign(
        TRANSACTION_ID=np.arange(n),
        TX_DATETIME=[
            datetime(2018, 5, 7) + timedelta(days=int(d)) for d in np.repeat(range(days), cards)
        ],
        CUSTOMER_ID=np.tile(np.arange(cards), days),
        TX_AMOUNT=rng.uniform(1, 150, n),
        TX_FRAUD=0,
    )
    window.loc[window["CUSTOMER_ID"] >= 290, "TX_FRAUD"] = 1  # cards that stay unknown
    window["signal"] = window["TX_FRAUD"] * 0.5
    history = pd.DataFrame(
        {
            "TX_DATETIME": [datetime(2018, 4, 20)] * 10,
            "CUSTOMER_ID": range(10),  # compromised before the window: known, removed
            "TX_FRAUD": 1,
        }
    )
    policy = GatePolicy(min_frauds=1, n_resamples=50)
    result = evaluate_against_champion(scorer(0.5), scorer(0.2), window, history, policy)

    removed = 10 * days
    assert result.rows == n - removed
    for metrics in (result.candidate, result.champion):
        assert metrics.n_removed_known == removed
        assert metrics.n_transactions == n - removed
    assert result.frauds == result.candidate.n_frauds == 10 * days
