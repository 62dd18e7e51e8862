"""Candidate and champion are judged on the same rows, and the record says what was removed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd

from mlops.features.names import FEATURES
from mlops.gate import compare
from mlops.gate.compare import evaluate_against_champion
from mlops.gate.policy import GatePolicy


def scorer(weight: float) -> SimpleNamespace:
    def predict_proba(frame: pd.DataFrame) -> np.ndarray:
        p = np.clip(frame["TX_AMOUNT"].to_numpy() / 400 + weight * frame["signal"].to_numpy(), 0, 1)
        return np.column_stack([1 - p, p])

    return SimpleNamespace(predict_proba=predict_proba)


CARDS, DAYS = 300, 7
KNOWN = range(10)  # cards with a fraud in the history before the window: removed
POLICY = GatePolicy(min_frauds=1, n_resamples=50)


def window_and_history() -> tuple[pd.DataFrame, pd.DataFrame]:
    """7 days of 300 cards, one transaction a card a day; cards 290+ are frauds that stay
    unknown in the window, cards 0-9 were compromised before it."""
    rng = np.random.default_rng(1)
    cards, days = CARDS, DAYS
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
            "TX_DATETIME": [datetime(2018, 4, 20)] * len(KNOWN),
            "CUSTOMER_ID": KNOWN,  # compromised before the window: known, removed
            "TX_FRAUD": 1,
        }
    )
    return window, history


def test_cards_known_from_the_history_are_removed_for_both_models_and_counted():
    window, history = window_and_history()
    n, days = len(window), DAYS
    result = evaluate_against_champion(scorer(0.5), scorer(0.2), window, history, POLICY)

    removed = 10 * days
    assert result.rows == n - removed
    for metrics in (result.candidate, result.champion):
        assert metrics.n_removed_known == removed
        assert metrics.n_transactions == n - removed
    assert result.frauds == result.candidate.n_frauds == 10 * days


def test_without_a_champion_the_candidate_alone_meets_the_first_model_rule():
    window, history = window_and_history()
    # 10 fraud cards, detected on the first day: CP@100 can reach 0.014 (the oracle) at most
    policy = replace(POLICY, min_card_precision_at_k=0.01)
    alone = evaluate_against_champion(scorer(0.5), None, window, history, policy)
    paired = evaluate_against_champion(scorer(0.5), scorer(0.2), window, history, policy)

    assert alone.champion is None and alone.to_dict()["champion"] is None
    assert alone.candidate == paired.candidate  # a champion changes nothing in these numbers
    frauds = 10 * DAYS  # cards 290-299, every day
    assert (
        (alone.rows, alone.frauds)
        == (paired.rows, paired.frauds)
        == (len(window) - len(KNOWN) * DAYS, frauds)
    )
    evidence = alone.decision.evidence
    assert evidence["rule"] == "first_model" and paired.decision.evidence["rule"] != "first_model"
    assert evidence["champion"] is None and evidence["bootstrap"] is None
    assert evidence["n_frauds"] == frauds
    assert alone.decision.outcome == "approve"
    assert alone.decision.reasons[0].startswith("first model: no champion; floors, behaviour")


def recording(weight: float) -> tuple[SimpleNamespace, list[list[int]]]:
    """A scorer that remembers the transaction ids of every frame it was asked to score."""
    model, seen = scorer(weight), []

    def predict_proba(frame: pd.DataFrame) -> np.ndarray:
        seen.append(frame["TRANSACTION_ID"].tolist())
        return model.predict_proba(frame)

    return SimpleNamespace(predict_proba=predict_proba), seen


def test_both_models_are_scored_and_compared_on_exactly_the_same_rows(monkeypatch):
    window, history = window_and_history()
    candidate, candidate_saw = recording(0.3)
    champion, champion_saw = recording(0.3)  # the same scores: any difference is in the rows
    compared = []

    def paired_bootstrap(rows, candidate_scores, champion_scores, **kwargs):
        compared.append(
            (rows["TRANSACTION_ID"].tolist(), len(candidate_scores), len(champion_scores))
        )
        return real_bootstrap(rows, candidate_scores, champion_scores, **kwargs)

    real_bootstrap = compare.paired_bootstrap
    monkeypatch.setattr(compare, "paired_bootstrap", paired_bootstrap)
    result = evaluate_against_champion(candidate, champion, window, history, POLICY)

    everything = window["TRANSACTION_ID"].tolist()
    # both score the whole window (the candidate is then probed by the behaviour checks)
    assert champion_saw == [everything] and candidate_saw[0] == everything
    kept = window.loc[~window["CUSTOMER_ID"].isin(KNOWN), "TRANSACTION_ID"].tolist()
    assert compared == [(kept, len(kept), len(kept))]  # the same rows, the known cards removed
    assert result.rows == len(kept)
    assert result.candidate == result.champion  # same rows, same scores: the same metrics
    bootstrap = result.decision.evidence["bootstrap"]
    assert bootstrap["observed_diff"] == bootstrap["lo"] == bootstrap["hi"] == 0.0
