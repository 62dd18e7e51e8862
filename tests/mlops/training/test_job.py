from __future__ import annotations

from datetime import date

import pytest

from mlops.gate.decision import GateDecision
from mlops.training.job import TrainingRequest, _with_request


def test_default_window_is_the_handbook_protocol():
    window = TrainingRequest(as_of=date(2018, 8, 22)).window
    assert (window.train_start, window.train_end) == (date(2018, 7, 25), date(2018, 8, 1))
    assert (window.eval_start, window.eval_end) == (date(2018, 8, 8), date(2018, 8, 15))


@pytest.mark.parametrize("window_days", [21, 30, 90])
def test_every_day_used_is_matured_at_the_logical_date(window_days):
    as_of = date(2018, 9, 3)
    window = TrainingRequest(as_of=as_of, window_days=window_days, delay_days=7).window
    assert window.eval_end == date(2018, 8, 27)  # labels of [.., D - 7) are known at D
    assert window.train_end < window.eval_start  # never trains on its evaluation days
    assert (window.eval_start - window.train_end).days == 7
    assert (window.eval_end - window.train_start).days == window_days


def test_a_window_without_training_days_is_refused():
    with pytest.raises(ValueError, match="leaves 0 training days"):
        TrainingRequest(as_of=date(2018, 9, 3), window_days=14, eval_days=7)


def test_hyperparameters_are_validated_for_the_family():
    with pytest.raises(ValueError, match=r"unknown random_forest hyperparameters \['nope'\]"):
        TrainingRequest(as_of=date(2018, 9, 3), family="random_forest", params={"nope": 1})


def test_force_review_turns_an_approval_into_a_question_and_nothing_else():
    request = TrainingRequest(as_of=date(2018, 9, 3), force_review=True, reason="audit")
    approved = _with_request(GateDecision("approve", ("fine",)), request, "3")
    rejected = _with_request(GateDecision("reject", ("bad",)), request, "3")
    assert approved.outcome == "needs_review" and "force_review" in approved.reasons[-1]
    assert rejected.outcome == "reject" and rejected.reasons == ("bad",)
    assert approved.evidence["request"]["reason"] == "audit"
    assert approved.evidence["champion_version"] == "3"
