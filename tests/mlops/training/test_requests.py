"""A training run's request, from its Params and the retrain requests that woke it: the day
it trains as of, why, and the candidate event it announces."""

from __future__ import annotations

from datetime import date

from mlops.training.requests import (
    candidate_event,
    requested_breach_since,
    requested_day,
    requested_reason,
    retrain_request,
    training_request,
)

PARAMS = {
    "window_days": 21,
    "eval_days": 7,
    "family": "logistic_regression",
    "hyperparameters": {},
    "seed": 3,
    "force_review": False,
    "allow_unsettled_features": False,
    "reason": None,
}


def test_a_retrain_decision_becomes_the_request_the_training_reads_back():
    decision = {"day": "2018-08-05", "action": "retrain", "reasons": ("drift", "quality")}
    extras = [{"day": "2018-08-03", "reasons": ["model age"]}, retrain_request(decision)]
    assert requested_day(extras) == date(2018, 8, 5)
    assert requested_reason(extras) == (
        "retrain request of 2018-08-03: model age | retrain request of 2018-08-05: drift; quality"
    )
    assert requested_day([{"rows": 3}]) is None and requested_reason([{"rows": 3}]) == ""


def test_the_params_win_over_the_requests_reason():
    woken = training_request(PARAMS, date(2018, 8, 5), 7, "retrain request of 2018-08-05")
    assert (woken.as_of, woken.seed, woken.reason) == (
        date(2018, 8, 5),
        3,
        "retrain request of 2018-08-05",
    )
    asked = training_request({**PARAMS, "reason": "by hand"}, date(2018, 8, 5), 7, "ignored")
    assert asked.reason == "by hand"


def test_an_approved_candidate_is_announced_with_the_day_its_deployment_starts_at():
    outcome = {"outcome": "approve", "model_version": "4", "run_id": "r1", "reasons": []}
    assert candidate_event(outcome, date(2018, 8, 5)) == {
        "model_version": "4",
        "run_id": "r1",
        "day": "2018-08-05",
    }


def test_a_request_after_a_breach_carries_its_first_day_to_the_run():
    decision = {
        "day": "2018-07-12",
        "action": "retrain",
        "reasons": ["quality"],
        "breach_since": "2018-06-25",
    }
    extras = [retrain_request(decision)]
    since = requested_breach_since(extras)
    assert since == date(2018, 6, 25)
    request = training_request(PARAMS, requested_day(extras), 7, "", since)
    assert request.breach_since == since and request.window.train_end == date(2018, 6, 28)
    assert request.to_dict()["breach_since"] == "2018-06-25"


def test_only_the_newest_request_places_the_windows():
    after = {"day": "2018-07-12", "reasons": ["quality"], "breach_since": "2018-06-25"}
    stale = {"day": "2018-07-13", "reasons": ["model age"]}
    assert requested_breach_since([after, stale]) is None
    assert requested_breach_since([stale, after | {"day": "2018-07-14"}]) == date(2018, 6, 25)
    assert "breach_since" not in retrain_request({"day": "2018-07-13", "reasons": ["age"]})


def test_a_breach_since_param_wins_over_the_requests():
    params = PARAMS | {"breach_since": "2018-06-20"}
    request = training_request(params, date(2018, 7, 12), 7, "", date(2018, 6, 25))
    assert request.breach_since == date(2018, 6, 20)
