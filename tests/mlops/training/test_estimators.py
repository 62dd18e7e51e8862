"""Training pipelines and prequential selection on small simulated data (1000 cards, 60 days)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

import mlops.training.selection as selection
from mlops.evaluation.metrics import eligible_mask, evaluate_scores, first_fraud_days
from mlops.features.names import FEATURES, LABEL
from mlops.gate.decision import decide
from mlops.gate.evidence import check_behaviour, measure_latency
from mlops.gate.policy import GatePolicy
from mlops.simulator import SimulationConfig, simulate
from mlops.training.estimators import predict_scores, train
from mlops.training.families import DEFAULT_PARAMS, FAMILIES, validate_params
from mlops.training.selection import Candidate, prequential_folds, select_model

CONFIG = SimulationConfig(n_customers=1000, n_terminals=2000, n_days=60, seed=0)
DELAY = 7
# light settings: the tests check behaviour, not the best model
FAST = {
    "logistic_regression": {},
    "random_forest": {"n_estimators": 30, "max_depth": 8},
    "hist_gradient_boosting": {"max_iter": 40},
    "hgb_lr_stack": {"hist_gradient_boosting": {"max_iter": 40}},
}


def _window_sum(keys, days, values, n_keys: int, n_days: int, lo: int, hi: int) -> np.ndarray:
    """Per row: the sum of ``values`` of the same key over the days [day - hi, day - lo]."""
    grid = np.zeros((n_keys, n_days + 1))
    np.add.at(grid, (keys, days + 1), values)
    before = grid.cumsum(axis=1)  # before[:, j] = sum over the days < j
    upper = np.clip(days - lo + 1, 0, n_days)
    return before[keys, upper] - before[keys, np.clip(days - hi, 0, n_days)]


def daily_features(tx: pd.DataFrame, delay: int = DELAY) -> pd.DataFrame:
    """The 15 features, ``daily`` definition (mlops.features.sql), in a few numpy lines."""
    df = tx.copy()
    when = df["TX_DATETIME"]
    days = (when.dt.floor("D") - when.dt.floor("D").min()).dt.days.to_numpy()
    n_days = int(days.max()) + 1
    df["TX_DURING_WEEKEND"] = (when.dt.weekday >= 5).astype("int64")
    df["TX_DURING_NIGHT"] = (when.dt.hour <= 6).astype("int64")
    card, n_cards = pd.factorize(df["CUSTOMER_ID"])[0], df["CUSTOMER_ID"].nunique()
    term, n_terms = pd.factorize(df["TERMINAL_ID"])[0], df["TERMINAL_ID"].nunique()
    amount, fraud, one = df["TX_AMOUNT"].to_numpy(), df[LABEL].to_numpy(), np.ones(len(df))
    for n in (1, 7, 30):
        count = _window_sum(card, days, one, n_cards, n_days, 1, n) + 1
        spent = _window_sum(card, days, amount, n_cards, n_days, 1, n) + amount
        df[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count
        df[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = spent / count
        seen = _window_sum(term, days, one, n_terms, n_days, delay + 1, delay + n)
        frauds = _window_sum(term, days, fraud, n_terms, n_days, delay + 1, delay + n)
        df[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = seen
        risk = np.divide(frauds, seen, out=np.zeros(len(df)), where=seen > 0)
        df[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = risk
    return df


def days_between(frame: pd.DataFrame, first: int, end: int) -> pd.DataFrame:
    offset = (frame["TX_DATETIME"].dt.floor("D") - pd.Timestamp(CONFIG.start_date)).dt.days
    return frame.loc[(offset >= first) & (offset < end)]


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    """Train on days 30-43, skip 7, evaluate days 51-57 (known compromised cards removed)."""
    features = daily_features(simulate(CONFIG))
    test = days_between(features, 51, 58)
    known = first_fraud_days(days_between(features, 30, 51))
    return {
        "all": features,
        "train": days_between(features, 30, 44),
        "test": test.loc[eligible_mask(test, known, DELAY)],
    }


@pytest.fixture(scope="module")
def models(data) -> dict:
    train_rows = data["train"]
    return {f: train(f, train_rows, train_rows[LABEL], FAST[f], 0, threads=1) for f in FAMILIES}


def test_feature_names_match_the_feature_pipeline() -> None:
    from mlops.features.sql import FEATURE_COLUMNS

    assert FEATURES == FEATURE_COLUMNS and len(FEATURES) == 15


@pytest.mark.parametrize("family", FAMILIES)
def test_a_fitted_model_beats_random(data, models, family: str) -> None:
    test = data["test"]
    scores = predict_scores(models[family], test)
    base_rate = test[LABEL].mean()
    assert average_precision_score(test[LABEL], scores) > 8 * base_rate  # measured: ~20x
    assert roc_auc_score(test[LABEL], scores) > 0.7
    assert list(models[family].feature_names_in_) == list(FEATURES)


@pytest.mark.parametrize("family", FAMILIES)
def test_extra_columns_order_and_transaction_id_change_nothing(data, models, family: str) -> None:
    test = data["test"].head(500)
    model = models[family]
    expected = predict_scores(model, test[list(FEATURES)])
    noisy = test.assign(TRANSACTION_ID=-test["TRANSACTION_ID"], JUNK=1.0)
    shuffled = noisy[list(reversed(noisy.columns))]
    assert np.allclose(predict_scores(model, shuffled), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("family", ["random_forest", "hist_gradient_boosting", "hgb_lr_stack"])
def test_same_seed_same_model(data, models, family: str) -> None:
    rows = data["train"]
    again = train(family, rows, rows[LABEL], FAST[family], 0, threads=1)
    test = data["test"]
    assert np.array_equal(predict_scores(again, test), predict_scores(models[family], test))
    if family == "random_forest":  # the seed does matter
        other = train(family, rows, rows[LABEL], FAST[family], 1, threads=1)
        assert not np.array_equal(predict_scores(other, test), predict_scores(again, test))


def test_shuffled_labels_give_a_worthless_model_that_the_gate_rejects(data, models) -> None:
    rows, test = data["train"], data["test"]
    shuffled = np.random.default_rng(0).permutation(rows[LABEL].to_numpy())
    worse = train(
        "hist_gradient_boosting", rows, shuffled, FAST["hist_gradient_boosting"], threads=1
    )
    scores = predict_scores(worse, test)
    base_rate = test[LABEL].mean()
    assert average_precision_score(test[LABEL], scores) < 2 * base_rate
    m = evaluate_scores(test, scores)
    decision = decide(
        m,
        None,
        None,
        check_behaviour(worse.predict_proba, test, GatePolicy()),
        measure_latency(worse.predict_proba, test, n_calls=5),
        GatePolicy(),
    )
    assert decision.outcome == "reject" and any(r.startswith("floor:") for r in decision.reasons)


def test_a_trained_first_model_passes_the_gate(data, models) -> None:
    model, test = models["hist_gradient_boosting"], data["test"]
    # a generous budget: this is about the rules, and CI machines are slow and shared
    policy = GatePolicy(latency_budget_ms=1000)
    m = evaluate_scores(test, predict_scores(model, test))
    behaviour = check_behaviour(model.predict_proba, test, policy)
    latency = measure_latency(model.predict_proba, test, n_calls=10, budget_ms=1000)
    decision = decide(m, None, None, behaviour, latency, policy)
    assert behaviour.passed and decision.outcome == "approve", decision.reasons


def test_hyperparameters_are_validated() -> None:
    assert validate_params("random_forest", {"max_depth": 5})["max_depth"] == 5
    assert validate_params("logistic_regression") == DEFAULT_PARAMS["logistic_regression"]
    with pytest.raises(ValueError, match="unknown hist_gradient_boosting hyperparameters"):
        validate_params("hist_gradient_boosting", {"learning_rat": 0.1})
    with pytest.raises(ValueError, match="unknown"):
        validate_params("random_forest", {"random_state": 3})  # the seed argument owns it
    for family, params in [
        ("logistic_regression", {"C": -1.0}),
        ("random_forest", {"n_estimators": 0}),
        ("random_forest", {"class_weight": "balancd"}),
        ("hist_gradient_boosting", {"max_iter": 10.5}),
        ("hist_gradient_boosting", {"early_stopping": "auto"}),
        ("hgb_lr_stack", {"cv": 1}),
        ("hgb_lr_stack", {"logistic_regression": "C=1"}),
    ]:
        with pytest.raises(ValueError, match="invalid"):
            validate_params(family, params)
    # a stack member's hyperparameters are checked as its family's, naming the bad one
    with pytest.raises(ValueError, match="invalid hist_gradient_boosting hyperparameters: max"):
        validate_params("hgb_lr_stack", {"hist_gradient_boosting": {"max_iter": 0}})
    with pytest.raises(ValueError, match="unknown logistic_regression hyperparameters"):
        validate_params("hgb_lr_stack", {"logistic_regression": {"max_depth": 3}})
    with pytest.raises(ValueError, match="unknown model family"):
        validate_params("xgboost")


def test_training_rejects_bad_inputs(data) -> None:
    rows = data["train"].head(200)
    with pytest.raises(ValueError, match="lacks feature columns"):
        train("logistic_regression", rows.drop(columns="TX_AMOUNT"), rows[LABEL])
    with pytest.raises(ValueError, match="both classes"):
        train("logistic_regression", rows, np.zeros(len(rows), dtype=int))
    with pytest.raises(ValueError, match="labels for"):
        train("logistic_regression", rows, rows[LABEL].to_numpy()[:-1])


def test_prequential_folds_roll_back_and_keep_the_delay_gap() -> None:
    folds = prequential_folds("2018-05-20", n_folds=3, train_days=7, delay_days=7, valid_days=5)
    assert folds[0].valid_end == date(2018, 5, 20)
    for fold in folds:
        assert fold.train_end - fold.train_start == timedelta(days=7)
        assert fold.valid_start - fold.train_end == timedelta(days=7)  # labels not yet known
        assert fold.valid_end - fold.valid_start == timedelta(days=5)
        assert fold.valid_end <= date(2018, 5, 20)
    assert [f.valid_end for f in folds] == [date(2018, 5, d) for d in (20, 15, 10)]


def test_selection_never_touches_the_evaluation_window(data, monkeypatch) -> None:
    eval_start = CONFIG.day(51)
    seen: list[pd.Timestamp] = []
    real_train, real_predict = selection.train, selection.predict_scores

    def spy_train(family, frame, labels, params, seed, **options):
        seen.append(frame["TX_DATETIME"].max())
        return real_train(family, frame, labels, params, seed, **options)

    def spy_predict(model, frame):
        seen.append(frame["TX_DATETIME"].max())
        return real_predict(model, frame)

    monkeypatch.setattr(selection, "train", spy_train)
    monkeypatch.setattr(selection, "predict_scores", spy_predict)
    candidates = (
        Candidate("logistic_regression", {}, "lr"),
        Candidate("hist_gradient_boosting", {"max_iter": 20}, "hgb"),
    )
    before = days_between(data["all"], 0, 51)
    result = select_model(before, eval_start, candidates=candidates, n_folds=2, threads=1)
    assert result.best.label in {"lr", "hgb"} and len(result.scores) == 4
    assert result.means[result.best.label] == max(result.means.values())
    assert all(t < pd.Timestamp(eval_start) for t in seen) and len(seen) == 8
    assert result.to_dict()["folds"][0]["valid_end"] == str(eval_start)
    with pytest.raises(ValueError, match="on or after the evaluation window"):
        select_model(days_between(data["all"], 0, 52), eval_start, candidates=candidates)
    with pytest.raises(ValueError, match="the folds need data from"):
        select_model(before, eval_start, candidates=candidates, n_folds=6, train_days=14)
    with pytest.raises(ValueError, match="distinct names"):
        select_model(before, eval_start, candidates=candidates[:1] * 2)
