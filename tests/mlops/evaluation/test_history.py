"""The known compromised cards come from every labelled day before the window, the delay gap
included: a card whose fraud fell between training and evaluation is removed once known."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlops.evaluation.history import history_days, read_known_frauds
from mlops.features.inputs import MissingPartitionError
from mlops.features.names import FEATURES
from mlops.gate.compare import evaluate_against_champion
from mlops.gate.policy import GatePolicy
from tests.support.reference_features import publish_validated

TRAIN_START, TRAIN_END = date(2018, 5, 1), date(2018, 5, 8)  # then the gap 05-08..05-14
EVAL_START, EVAL_END = date(2018, 5, 15), date(2018, 5, 22)
CARDS = 200
TRAINING_FRAUD_CARD, GAP_FRAUD_CARD, EARLY_FRAUD_CARD = 1, 2, 3
GAP_FRAUD_DAY = date(2018, 5, 9)  # known from 05-17 on (day + delay + 1)


def transactions() -> pd.DataFrame:
    """One transaction a day per card from 04-24 to the end of the evaluation window."""
    days = [
        date(2018, 4, 24) + timedelta(days=i) for i in range((EVAL_END - date(2018, 4, 24)).days)
    ]
    rows = [
        (datetime.combine(day, datetime.min.time()) + timedelta(hours=12, seconds=card), card)
        for day in days
        for card in range(CARDS)
    ]
    frame = pd.DataFrame(rows, columns=["TX_DATETIME", "CUSTOMER_ID"])
    frame["TRANSACTION_ID"] = np.arange(len(frame))
    frame["TERMINAL_ID"] = frame["CUSTOMER_ID"] % 17
    frame["TX_AMOUNT"] = 10.0 + frame["CUSTOMER_ID"] % 50
    frame["TX_FRAUD"] = 0
    frame["TX_FRAUD_SCENARIO"] = 0
    day = frame["TX_DATETIME"].dt.date
    card = frame["CUSTOMER_ID"]
    frame.loc[(card == TRAINING_FRAUD_CARD) & (day == date(2018, 5, 3)), "TX_FRAUD"] = 1
    frame.loc[(card == GAP_FRAUD_CARD) & (day == GAP_FRAUD_DAY), "TX_FRAUD"] = 1
    frame.loc[(card == EARLY_FRAUD_CARD) & (day == date(2018, 4, 25)), "TX_FRAUD"] = 1
    frame.loc[(card >= CARDS - 10) & (day >= EVAL_START), "TX_FRAUD"] = 1  # still unknown
    return frame


@pytest.fixture(scope="module")
def validated(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("history") / "validated"
    publish_validated(root, transactions(), date(2018, 4, 24), EVAL_END - timedelta(days=1))
    return str(root)


def window_with_features() -> pd.DataFrame:
    frame = transactions()
    frame = frame.loc[frame["TX_DATETIME"].dt.date >= EVAL_START].reset_index(drop=True)
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.random((len(frame), len(FEATURES))), columns=list(FEATURES))
    return features.drop(columns="TX_AMOUNT").join(frame)


def scorer(frame: pd.DataFrame) -> np.ndarray:
    p = 0.2 + 0.6 * frame["TX_FRAUD"].to_numpy()
    return np.column_stack([1 - p, p])


MODEL = SimpleNamespace(predict_proba=scorer)
POLICY = GatePolicy(min_frauds=1, n_resamples=20)


def test_the_history_spans_the_training_days_and_the_gap():
    assert history_days(TRAIN_START, EVAL_START) == (TRAIN_START, EVAL_START)
    with pytest.raises(ValueError, match="starts before training"):
        history_days(EVAL_START, TRAIN_START)


def test_a_fraud_in_the_gap_removes_its_card_once_known(validated):
    known = read_known_frauds(validated, *history_days(TRAIN_START, EVAL_START))
    assert sorted(known.frame["CUSTOMER_ID"]) == [TRAINING_FRAUD_CARD, GAP_FRAUD_CARD]
    assert known.to_dict() == {"start": "2018-05-01", "end": "2018-05-15", "frauds": 2, "cards": 2}

    result = evaluate_against_champion(MODEL, MODEL, window_with_features(), known.frame, POLICY)
    # the training card on all 7 days; the gap card from 05-17 (05-09 + 7 + 1) to 05-21: 5 days
    assert result.candidate.n_removed_known == result.champion.n_removed_known == 7 + 5
    assert result.rows == 7 * CARDS - 12


def test_the_training_set_alone_misses_the_gap_card(validated):
    """What the job did before: the gap card stayed in, scored as an unknown card."""
    frame = transactions()
    days = frame["TX_DATETIME"].dt.date
    training_only = frame.loc[(days >= TRAIN_START) & (days < TRAIN_END)]
    result = evaluate_against_champion(MODEL, None, window_with_features(), training_only, POLICY)
    assert result.candidate.n_removed_known == 7


def test_a_missing_day_of_history_is_an_error_not_a_smaller_history(validated, tmp_path):
    with pytest.raises(MissingPartitionError, match="2018-05-22"):
        read_known_frauds(validated, TRAIN_START, date(2018, 5, 23))


def test_days_before_the_history_start_are_skipped(validated):
    known = read_known_frauds(
        validated, date(2018, 4, 20), EVAL_START, history_start=date(2018, 4, 24)
    )
    assert sorted(known.frame["CUSTOMER_ID"]) == [
        TRAINING_FRAUD_CARD,
        GAP_FRAUD_CARD,
        EARLY_FRAUD_CARD,
    ]
