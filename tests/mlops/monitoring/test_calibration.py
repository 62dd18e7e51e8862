"""Drift thresholds calibrated on simulated data: no stable day flagged, the drift flagged.

2,000 cards and 4,000 terminals over 100 days (about 3,800 transactions a day); the reference
is 7 days of features (days 40-46, as a champion's training week), and every later day is
compared with it. ``none`` must flag nothing; ``amount_shift`` starting on day 70 must be
flagged on day 70 (a column) and on no day before; the data set from day 71.
"""

from __future__ import annotations

import pandas as pd
import pytest

from mlops.features.names import FEATURES
from mlops.features.offline import compute_features_all
from mlops.monitoring.daily import DEFAULT_THRESHOLDS, JUDGED_FEATURES
from mlops.monitoring.drift import bin_reference, feature_drift, psi
from mlops.simulator import SimulationConfig, simulate
from mlops.training.estimators import predict_scores, train
from tests.support.reference_features import publish_validated

DRIFT_START = 70
REFERENCE_DAYS = range(40, 47)


def daily_drift(tmp_path, drift: str) -> pd.DataFrame:
    config = SimulationConfig(
        n_customers=2000,
        n_terminals=4000,
        n_days=100,
        seed=3,
        drift=drift,
        drift_start_day=DRIFT_START,
    )
    root = tmp_path / drift
    publish_validated(root, simulate(config), config.start_date, config.day(config.n_days - 1))
    features = compute_features_all(str(root), history_start=config.start_date).to_pandas()
    index = (
        pd.to_datetime(features["TX_DATETIME"]).dt.floor("D") - pd.Timestamp(config.start_date)
    ).dt.days
    reference = features.loc[index.isin(REFERENCE_DAYS)]
    profile = {name: bin_reference(reference[name]) for name in FEATURES}
    # a model of the reference week, as the champion would be, for prediction drift
    model = train("hist_gradient_boosting", reference, reference["TX_FRAUD"], {"max_iter": 30})
    scores = bin_reference(predict_scores(model, reference))
    rows = []
    for day in range(REFERENCE_DAYS.stop, config.n_days):
        current = features.loc[index == day]
        out = feature_drift(profile, current, JUDGED_FEATURES, DEFAULT_THRESHOLDS)
        rows.append(
            {
                "day": day,
                "max_psi": out["max_psi"],
                "flagged": out["drifted"],
                "share": out["share"],
                "score_psi": psi(scores, predict_scores(model, current)),
            }
        )
    return pd.DataFrame(rows).set_index("day")


@pytest.fixture(scope="module")
def stable(tmp_path_factory):
    return daily_drift(tmp_path_factory.mktemp("calibration"), "none")


def test_no_stable_day_is_flagged(stable):
    assert stable["flagged"].map(len).sum() == 0
    # the margin the thresholds leave: the largest stable PSI was 0.020 when calibrated
    assert stable["max_psi"].max() < DEFAULT_THRESHOLDS.feature_psi / 3
    assert stable["score_psi"].max() < DEFAULT_THRESHOLDS.score_psi / 2
    print(
        f"stable days: max feature PSI {stable['max_psi'].max():.4f} vs "
        f"{DEFAULT_THRESHOLDS.feature_psi}, max score PSI {stable['score_psi'].max():.4f} vs "
        f"{DEFAULT_THRESHOLDS.score_psi}"
    )


def test_an_amount_shift_is_flagged_on_its_first_day_and_never_before(tmp_path):
    shifted = daily_drift(tmp_path, "amount_shift")
    flagged = shifted.index[shifted["flagged"].map(len) > 0]
    assert flagged.min() == DRIFT_START
    assert set(range(DRIFT_START, 100)) <= set(flagged)
    assert "TX_AMOUNT" in shifted.loc[DRIFT_START, "flagged"]
    # the data set as a whole (two judged features of 14) from the next day on, when the
    # 1-day average amount has only post-drift days in its window
    dataset = shifted.index[shifted["share"] >= DEFAULT_THRESHOLDS.drift_share]
    assert dataset.min() == DRIFT_START + 1
    scored = shifted.index[shifted["score_psi"] > DEFAULT_THRESHOLDS.score_psi]
    print(
        f"amount_shift: first flag day {flagged.min()}, PSI "
        f"{shifted.loc[DRIFT_START, 'max_psi']:.3f}; score PSI on day {DRIFT_START} "
        f"{shifted.loc[DRIFT_START, 'score_psi']:.3f}, first score flag "
        f"{scored.min() if len(scored) else None}"
    )
