"""The row scorer gives the registered model's own ``predict_proba``, row by row, on a whole
simulated test week, for every model family training fits; a fast form that differs is
never used."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from mlops.features.names import FEATURES, LABEL
from mlops.scoring.row_scorer import BATCH, probe_rows, row_scorer
from mlops.scoring.tree_code import tree_code
from mlops.training.estimators import train
from mlops.training.families import FAMILIES
from tests.support.feature_data import day, transactions
from tests.support.reference_features import daily_features

SMALL = {"random_forest": {"n_estimators": 10, "n_jobs": 1}}
EXPECTED_FAST = {
    "hist_gradient_boosting": "HistGradientBoostingClassifier as code",
    "logistic_regression": "LogisticRegression as code",
    "random_forest": "RandomForestClassifier: scored by scikit-learn",
    "hgb_lr_stack": "StackingClassifier as code",
}


@pytest.fixture(scope="module")
def weeks() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three weeks of daily features to train on, and the following week to test on."""
    features = daily_features(transactions())
    when = features["TX_DATETIME"].dt.date
    train_rows = features[(when >= day(20)) & (when < day(41))]
    test_rows = features[(when >= day(41)) & (when < day(41) + timedelta(days=7))]
    return train_rows, test_rows.reset_index(drop=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_scores_equal_predict_proba_on_a_test_week(family, weeks):
    train_rows, test_rows = weeks
    model = train(family, train_rows, train_rows[LABEL], SMALL.get(family), seed=3, threads=1)
    scorer = row_scorer(model, "7")
    assert scorer.fast_path == EXPECTED_FAST[family]
    assert scorer.version == "7" and len(scorer.digest) == 64
    values = test_rows[list(FEATURES)].to_numpy(dtype=np.float64)
    one_by_one = np.concatenate([scorer.scores(values[i : i + 1]) for i in range(len(values))])
    expected = model.predict_proba(test_rows)[:, 1]
    assert len(test_rows) > 3000
    np.testing.assert_allclose(one_by_one, expected, rtol=0, atol=1e-6)
    # a frame with extra columns in another order, and batches of the cut-over size
    np.testing.assert_allclose(scorer.scores(test_rows.iloc[::-1]), expected[::-1], atol=1e-6)
    batch = scorer.predict_proba(values[:BATCH])
    np.testing.assert_allclose(batch[:, 1], expected[:BATCH], rtol=0, atol=1e-6)


def test_a_bare_hgb_is_compiled_and_a_missing_value_goes_to_scikit_learn(weeks):
    from sklearn.ensemble import HistGradientBoostingClassifier

    train_rows, test_rows = weeks
    model = HistGradientBoostingClassifier(max_iter=20, random_state=1)
    model.fit(train_rows[list(FEATURES)], train_rows[LABEL])
    scorer = row_scorer(model, "1")
    assert scorer.fast is not None and tree_code(model) is not None
    row = test_rows[list(FEATURES)].to_numpy(dtype=np.float64)[:1].copy()
    row[0, 0] = np.nan
    frame = pd.DataFrame(row, columns=list(FEATURES))
    assert scorer.scores(row)[0] == pytest.approx(model.predict_proba(frame)[0, 1], abs=1e-12)


def test_a_fast_form_that_differs_is_not_used(weeks):
    train_rows, test_rows = weeks
    model = train("hist_gradient_boosting", train_rows, train_rows[LABEL], seed=3, threads=1)

    def off_by_a_little(model):
        return (lambda values: np.full(len(values), 0.5)), "wrong on purpose"

    scorer = row_scorer(model, "2", build=off_by_a_little)
    assert scorer.fast is None
    assert scorer.fast_path.startswith("fast form differs from predict_proba")
    values = test_rows[list(FEATURES)].to_numpy(dtype=np.float64)[:5]
    expected = model.predict_proba(test_rows.iloc[:5])[:, 1]
    np.testing.assert_allclose(scorer.scores(values), expected, rtol=0, atol=1e-12)


def test_a_fast_form_that_raises_is_not_used(weeks):
    train_rows, _ = weeks
    model = train("logistic_regression", train_rows, train_rows[LABEL], seed=3)

    def broken(model):
        return (lambda values: values[:, 99]), "broken on purpose"

    scorer = row_scorer(model, "3", build=broken)
    assert scorer.fast is None and "differs" in scorer.fast_path
    assert row_scorer(scorer) is scorer  # wrapping twice keeps the checked scorer


@pytest.mark.parametrize("family", FAMILIES)
def test_a_scorer_packed_for_another_process_scores_the_same(family, weeks):
    """What the service's loader process hands over (a pickle) rebuilds the same scorer."""
    import pickle

    from mlops.scoring.portable import portable_scorer

    train_rows, test_rows = weeks
    model = train(family, train_rows, train_rows[LABEL], SMALL.get(family), seed=3, threads=1)
    packed = pickle.loads(pickle.dumps(portable_scorer(model, "7")))
    scorer = packed.scorer()
    assert scorer.fast_path == EXPECTED_FAST[family] == row_scorer(model).fast_path
    assert scorer.digest == row_scorer(model).digest and scorer.version == "7"
    values = test_rows[list(FEATURES)].to_numpy(dtype=np.float64)[:500]
    one_by_one = np.concatenate([scorer.scores(values[i : i + 1]) for i in range(len(values))])
    expected = model.predict_proba(test_rows.iloc[:500])[:, 1]
    np.testing.assert_allclose(one_by_one, expected, rtol=0, atol=1e-9)


def test_a_packed_scorer_changed_on_the_way_is_refused(weeks):
    from dataclasses import replace

    from mlops.scoring.portable import ScorerMismatch, portable_scorer

    train_rows, _ = weeks
    model = train("hist_gradient_boosting", train_rows, train_rows[LABEL], seed=3, threads=1)
    packed = portable_scorer(model, "4")
    with pytest.raises(ScorerMismatch, match="digest"):
        replace(packed, digest="0" * 64).scorer()
    with pytest.raises(ScorerMismatch, match="fast form"):
        replace(packed, check_scores=packed.check_scores + 1e-12).scorer()


def test_a_stack_is_scored_as_its_members_code_and_probed_at_their_thresholds(weeks):
    train_rows, test_rows = weeks
    params = {"hist_gradient_boosting": {"max_iter": 20}}
    model = train("hgb_lr_stack", train_rows, train_rows[LABEL], params, seed=3, threads=1)
    stack = model.named_steps["model"]
    trees = stack.named_estimators_["hist_gradient_boosting"]._predictors
    node = next(n for n in trees[0][0].nodes if not n["is_leaf"])
    probe = probe_rows(model)
    assert (probe[:, int(node["feature_idx"])] == float(node["num_threshold"])).any()
    scorer = row_scorer(model, "4")
    assert scorer.fast_path == "StackingClassifier as code"
    values = test_rows[list(FEATURES)].to_numpy(dtype=np.float64)[:BATCH]
    expected = model.predict_proba(test_rows.iloc[:BATCH])[:, 1]
    np.testing.assert_allclose(scorer.fast(values), expected, rtol=0, atol=1e-12)


def test_a_stack_on_probabilities_goes_to_scikit_learn(weeks):
    train_rows, _ = weeks
    model = train("hgb_lr_stack", train_rows, train_rows[LABEL], seed=3, threads=1)
    model.named_steps["model"].stack_method_ = ["predict_proba", "predict_proba"]
    scorer = row_scorer(model, "5")
    assert scorer.fast is None
    assert scorer.fast_path == "StackingClassifier: scored by scikit-learn"
