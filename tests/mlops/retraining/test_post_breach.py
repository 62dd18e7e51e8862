"""A breach asks for a retraining once a run could learn from it: the breach's first data
day, the wait for its labelled days, and the storm guards that still bound the requests."""

from __future__ import annotations

from datetime import date, timedelta

from mlops.retraining.onset import breach_start, post_breach_hold
from mlops.retraining.policy import NONE, RETRAIN, RetrainPolicy, decide
from mlops.training.requests import requested_breach_since, retrain_request
from mlops.training.windows import data_window, days_since

DRIFT = date(2018, 6, 25)
POLICY = RetrainPolicy()
EXPECTED_AP = 0.6  # the champion's evaluated AP: the limit is 0.51 with the 15 % margin


def monitored(day: date, *, window_ap: float, newest_ap: float, age: int = 10) -> dict:
    """A summary with the served AP of the 7-day window and of its newest matured day."""
    newest = day - timedelta(days=7)
    return {
        "day": day.isoformat(),
        "status": "monitored",
        "champion": {
            "version": "1",
            "evaluation": {"average_precision": EXPECTED_AP, "card_precision_at_100": 0.3},
            "age_days": age,
            "data_end": "2018-06-01",
        },
        "drift": {"drifted": [], "weighted_share": 0.0},
        "prediction_drift": {"psi": 0.01, "drifted": False},
        "quality": {
            "window": {
                "start": (newest - timedelta(days=6)).isoformat(),
                "end": newest.isoformat(),
            },
            "served": {"average_precision": window_ap, "n_frauds": 300},
            "newest_day": {
                "day": newest.isoformat(),
                "n_transactions": 4000,
                "average_precision": newest_ap,
                "card_precision_at_100": 0.3,
                "n_frauds": 45,
            },
        },
    }


def new_pattern(day: date) -> dict:
    """The demo's drift: matured days from DRIFT on are served at 0.3, the window follows."""
    newest = day - timedelta(days=7)
    drifted = max(0, min(7, (newest - DRIFT).days + 1))
    window_ap = (0.62 * (7 - drifted) + 0.3 * drifted) / 7
    return monitored(day, window_ap=window_ap, newest_ap=0.3 if newest >= DRIFT else 0.62)


def run(first: date, last: date, make=new_pattern, policy=POLICY) -> list[dict]:
    history: list[dict] = []
    for offset in range((last - first).days + 1):
        history.append(decide(make(first + timedelta(days=offset)), history, policy=policy))
        history[-1] = history[-1].to_dict()
    return history


def test_the_first_day_of_a_quality_breach_is_the_first_of_its_breaching_matured_days():
    history = run(date(2018, 6, 20), date(2018, 7, 20))
    breaches = [r for r in history if r["breach"]]
    assert breaches[0]["day"] == "2018-07-04"  # window AP 0.483 < 0.51: three drifted days
    assert {r["breach_since"] for r in breaches} == {DRIFT.isoformat()}  # found, then carried
    assert all(r["breach_since"] is None for r in history if not r["breach"])


def test_a_breach_waits_until_a_run_trains_on_its_days_and_says_when_it_will_ask():
    history = run(date(2018, 6, 20), date(2018, 7, 20))
    held = [r for r in history if r["held_by"] == "post_breach_data"]
    assert held[0]["day"] == "2018-07-06"  # three breaching days: wanted, not yet useful
    assert (
        "would train on 0 day(s) from the breach's first data day 2018-06-25"
        in (held[0]["reasons"][-1])
    )
    assert held[0]["reasons"][-1].endswith("asks on 2018-07-12")
    assert held[-1]["day"] == "2018-07-11" and "train on 2 day(s)" in held[-1]["reasons"][-1]
    requests = [r for r in history if r["action"] == RETRAIN]
    assert [r["day"] for r in requests] == ["2018-07-12"]  # then the cooldown holds
    assert requests[0]["breach_since"] == "2018-06-25"
    since = requested_breach_since([retrain_request(requests[0])])
    window = data_window(date(2018, 7, 12), 21, 7, 7, gap=False)
    assert days_since((window.train_start, window.train_end), since) == 3


def test_an_isolated_dip_before_the_change_is_not_taken_for_its_start():
    def dipped(day: date) -> dict:
        made = new_pattern(day)
        if day - timedelta(days=7) == DRIFT - timedelta(days=2):  # 06-23 low, 06-24 fine
            made["quality"]["newest_day"]["average_precision"] = 0.45
        return made

    history = run(date(2018, 6, 20), date(2018, 7, 8), make=dipped)
    assert {r["breach_since"] for r in history if r["breach"]} == {"2018-06-25"}


def test_a_drift_signal_starts_its_breach_on_the_monitored_day():
    summary = monitored(date(2018, 7, 1), window_ap=0.6, newest_ap=0.6)
    assert breach_start(summary, [], date(2018, 7, 1), ["data drift: x"], 0.6, 0.15) == date(
        2018, 7, 1
    )
    assert breach_start(summary, [], date(2018, 7, 1), [], 0.6, 0.15) is None


def test_the_wait_is_off_without_a_breach_start_or_a_number_of_days():
    assert post_breach_hold(date(2018, 7, 7), None, 3, 7, 7) is None
    assert post_breach_hold(date(2018, 7, 7), DRIFT, None, 7, 7) is None
    assert post_breach_hold(date(2018, 7, 12), DRIFT, 3, 7, 7) is None
    assert "asks on 2018-07-12" in post_breach_hold(date(2018, 7, 11), DRIFT, 3, 7, 7)


def test_staleness_asks_at_once_with_the_routine_windows():
    decision = decide(monitored(date(2018, 7, 1), window_ap=0.6, newest_ap=0.6, age=95), [])
    assert decision.action == RETRAIN and decision.breach_since is None
    assert "breach_since" not in retrain_request(decision.to_dict())


def test_a_breach_that_lasts_is_bounded_by_the_cooldown():
    history = run(date(2018, 6, 20), date(2018, 9, 30))
    requests = [date.fromisoformat(r["day"]) for r in history if r["action"] == RETRAIN]
    assert requests[0] == date(2018, 7, 12)
    gaps = [(b - a).days for a, b in zip(requests, requests[1:], strict=False)]
    assert gaps and min(gaps) > RetrainPolicy().cooldown_days
    wanted = [r for r in history if r["signals"]["consecutive_breaches"] >= 3]
    assert {r["held_by"] for r in wanted if r["action"] == NONE} == {
        "post_breach_data",
        "cooldown",
    }


def test_a_breach_that_lasts_is_bounded_by_the_budget():
    policy = RetrainPolicy(cooldown_days=0, budget=2, budget_days=30)
    history = run(date(2018, 6, 20), date(2018, 9, 30), policy=policy)
    requests = [date.fromisoformat(r["day"]) for r in history if r["action"] == RETRAIN]
    assert requests[:2] == [date(2018, 7, 12), date(2018, 7, 13)]
    for day in requests:
        assert len([d for d in requests if 0 <= (day - d).days < policy.budget_days]) <= 2
    assert history[[r["day"] for r in history].index("2018-07-14")]["held_by"] == "budget"


def stale_on(stale_day: date):
    """The demo's drift, and on ``stale_day`` a champion past its age limit."""

    def summary(day: date) -> dict:
        found = new_pattern(day)
        if day == stale_day:
            found["champion"]["age_days"] = POLICY.max_age_days + 5
        return found

    return summary


def test_a_request_that_learnt_nothing_of_the_breach_does_not_hold_its_request_back():
    """Staleness asked on 07-01, before the drift's labels: that run trained up to 06-10 and
    learnt nothing of it. The breach's request is asked on 07-12 anyway, not held by that
    cooldown until 07-16; the next cooldown runs from the request that learnt the drift."""
    history = run(date(2018, 6, 20), date(2018, 8, 10), make=stale_on(date(2018, 7, 1)))
    requests = [date.fromisoformat(r["day"]) for r in history if r["action"] == RETRAIN]
    assert requests[:2] == [date(2018, 7, 1), date(2018, 7, 12)]
    by_day = {r["day"]: r for r in history}
    assert by_day["2018-07-01"]["breach_since"] is None  # staleness: the routine windows
    assert by_day["2018-07-12"]["breach_since"] == DRIFT.isoformat()
    later = zip(requests[1:], requests[2:], strict=False)
    assert requests[2:] and all((b - a).days > POLICY.cooldown_days for a, b in later)


def test_a_request_that_learnt_nothing_of_the_breach_still_counts_in_the_budget():
    policy = RetrainPolicy(budget=1, budget_days=30)
    history = run(
        date(2018, 6, 20), date(2018, 8, 10), make=stale_on(date(2018, 7, 1)), policy=policy
    )
    requests = [date.fromisoformat(r["day"]) for r in history if r["action"] == RETRAIN]
    assert requests[:2] == [date(2018, 7, 1), date(2018, 7, 31)]
    held = {r["day"]: r["held_by"] for r in history}
    assert held["2018-07-12"] == held["2018-07-30"] == "budget"
