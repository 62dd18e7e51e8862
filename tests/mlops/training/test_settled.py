"""A training window whose rows have truncated feature windows is refused unless asked for,
and then flagged in the decision record and the model card."""

from __future__ import annotations

import json
from datetime import date

import pytest

from mlops.gate.decision import GateDecision
from mlops.gate.report import decision_record, render_model_card
from mlops.settings import load_settings
from mlops.training.job import TrainingRequest, _with_features, build_training_sets
from mlops.training.settled import UnsettledFeaturesError, first_settled_day, settlement

START = date(2018, 4, 1)


def test_the_first_settled_day_is_the_lookback_after_the_history_start():
    assert first_settled_day(START, 7) == date(2018, 5, 8)  # 30-day terminal risk + 7 delay
    assert first_settled_day(START, 0) == date(2018, 5, 1)


def test_a_window_reaching_before_the_first_settled_day_is_refused_with_the_day_named():
    windows = {"training": (date(2018, 5, 1), date(2018, 5, 8))}
    with pytest.raises(UnsettledFeaturesError, match=r"first settled day is 2018-05-08") as err:
        settlement(windows, START, 7, as_of=date(2018, 5, 22))
    assert "as of 2018-05-29 or later" in str(err.value)
    assert "training 2018-05-01..2018-05-07" in str(err.value)


def test_allowed_unsettled_windows_say_which_days():
    windows = {
        "training": (date(2018, 4, 20), date(2018, 4, 27)),
        "evaluation": (date(2018, 5, 4), date(2018, 5, 11)),
    }
    result = settlement(windows, START, 7, allow=True)
    assert not result.settled
    assert result.to_dict()["unsettled"] == {
        "training": ["2018-04-20", "2018-04-26"],
        "evaluation": ["2018-05-04", "2018-05-07"],
    }


def test_settled_windows_pass():
    result = settlement({"training": (date(2018, 5, 8), date(2018, 5, 15))}, START, 7)
    assert result.settled and result.to_dict()["unsettled"] == {}


def test_model_training_refuses_unsettled_rows_before_reading_any_data(tmp_path):
    """The default demo date (2018-05-07) trains on 2018-04-09..15: windows truncated."""
    settings = load_settings({"MLOPS_DATA_ROOT": str(tmp_path / "nothing-here")})
    request = TrainingRequest(as_of=date(2018, 5, 7))
    with pytest.raises(UnsettledFeaturesError, match="first settled day is 2018-05-08"):
        build_training_sets(settings, request)


def decision(outcome: str = "approve") -> GateDecision:
    return GateDecision(outcome, ("floors and evidence hold",), EVIDENCE)


EVIDENCE = {
    "candidate": {"n_transactions": 10, "n_frauds": 2, "days": ["2018-04-23"], "k": 100},
    "rule": "first_model",
    "n_frauds": 2,
    "floors": {},
    "behaviour": {"checks": []},
    "latency": {"median_ms": 1.0, "p95_ms": 2.0, "n_calls": 5, "budget_ms": 50.0},
    "policy": {"margin": 0.02},
}


def test_an_allowed_unsettled_run_needs_review_and_says_so_in_record_and_card():
    windows = {"training": (date(2018, 4, 9), date(2018, 4, 16))}
    features = settlement(windows, START, 7, allow=True).to_dict()
    flagged = _with_features(decision(), features)
    assert flagged.outcome == "needs_review"
    assert "unsettled features: training 2018-04-09..2018-04-15" in flagged.reasons[-1]
    record = json.loads(decision_record(flagged))
    assert record["evidence"]["features"]["settled"] is False
    assert record["evidence"]["features"]["first_settled_day"] == "2018-05-08"
    card = render_model_card(flagged)
    assert "**UNSETTLED**: training 2018-04-09 to 2018-04-15" in card


def test_a_settled_run_keeps_its_outcome_and_the_card_says_settled():
    features = settlement({"training": (date(2018, 6, 1), date(2018, 6, 8))}, START, 7).to_dict()
    kept = _with_features(decision(), features)
    assert kept.outcome == "approve" and kept.reasons == ("floors and evidence hold",)
    assert "Settled: every row is on or after 2018-05-08" in render_model_card(kept)
