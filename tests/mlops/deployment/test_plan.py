"""The deployment plan: which path, which strategy, which data days; decided before anything
moves, from the aliases as they are."""

from __future__ import annotations

from datetime import date

import pytest

from mlops.deployment.plan import (
    REPLAY_LIMIT_DAYS,
    DeploymentPlan,
    DeploymentRequest,
    DeploymentRequestError,
    deployment_request,
    extended,
    plan_deployment,
)
from mlops.registry.aliases import AliasState

D = date(2018, 6, 1)
SERVING = AliasState(champion="3", previous="2")


def request(**kwargs) -> DeploymentRequest:
    return DeploymentRequest(**{"day": D, "version": "4", **kwargs})


def test_a_first_model_goes_direct_whatever_was_asked():
    plan = plan_deployment(request(strategy="canary"), AliasState(), 7)
    assert (plan.path, plan.strategy, plan.observed_days) == ("start", "direct", ())
    assert "first model" in plan.why
    assert not plan.observes


def test_a_canary_is_observed_on_the_next_days_and_judged_when_their_labels_are_known():
    plan = plan_deployment(request(observation_days=3), SERVING, 7)
    assert plan.observed_days == ("2018-06-02", "2018-06-03", "2018-06-04")
    assert plan.judge_day == "2018-06-11"
    assert plan.label_days == plan.observed_days
    assert plan.observes


def test_without_labels_the_rollout_is_judged_on_its_last_observed_day():
    plan = plan_deployment(request(observation_days=3, wait_for_labels=False), SERVING, 7)
    assert plan.judge_day == "2018-06-04"
    assert plan.label_days == ()


def test_a_long_observation_judges_on_labels_only_of_days_known_at_the_judgement():
    plan = plan_deployment(request(observation_days=10, wait_for_labels=False), SERVING, 7)
    assert plan.judge_day == "2018-06-11"
    assert plan.label_days == ("2018-06-02", "2018-06-03", "2018-06-04")


def test_deploying_the_champion_does_nothing():
    plan = plan_deployment(request(version="3"), SERVING, 7)
    assert plan.path == "nothing"


def test_direct_keeps_the_old_champion_warm_as_previous():
    plan = plan_deployment(request(strategy="direct"), SERVING, 7)
    assert (plan.path, plan.strategy) == ("start", "direct")
    assert "kept warm" in plan.why


@pytest.mark.parametrize(
    ("version", "path"), [(None, "rollback"), ("3", "rollback"), ("2", "nothing")]
)
def test_a_rollback_acts_only_on_the_champion_it_names(version, path):
    plan = plan_deployment(request(action="rollback", version=version), SERVING, 7)
    assert plan.path == path
    if path == "rollback":
        assert plan.request.version == "3"


def test_a_rollback_without_previous_does_nothing():
    plan = plan_deployment(request(action="rollback"), AliasState(champion="3"), 7)
    assert (plan.path, plan.why) == ("nothing", "no previous version to roll back to")


def test_the_days_a_candidate_never_saw_are_replayed_and_mature_before_its_own():
    """Its data ended on 05-20: 05-20 .. D were served by the champion and seen by nothing of
    the candidate's; judged at D+3 (no waiting for labels), those up to D-4 are matured."""
    plan = plan_deployment(
        request(observation_days=3, wait_for_labels=False), SERVING, 7, date(2018, 5, 20)
    )
    assert plan.replayed_days == tuple(f"2018-05-{d}" for d in range(20, 32)) + ("2018-06-01",)
    assert plan.judge_day == "2018-06-04"
    assert plan.label_days == tuple(f"2018-05-{d}" for d in range(20, 29))
    later = extended(plan, 8, 7)  # judged at D+11: the observed days mature after D
    assert later.replayed_days == plan.replayed_days
    assert later.label_days[-5:] == tuple(f"2018-06-0{d}" for d in range(1, 6))


@pytest.mark.parametrize(
    ("data_end", "kwargs", "first"),
    [
        (date(2018, 1, 1), {}, f"2018-05-{32 - REPLAY_LIMIT_DAYS + 1}"),  # the newest only
        (None, {}, None),  # its data unknown: nothing to replay
        (date(2018, 5, 20), {"judge_quality": False}, None),  # quality not judged
        (date(2018, 5, 20), {"strategy": "direct"}, None),  # nothing observed
    ],
)
def test_what_is_replayed_is_bounded(data_end, kwargs, first):
    plan = plan_deployment(request(**kwargs), SERVING, 7, data_end)
    assert (plan.replayed_days[0] if plan.replayed_days else None) == first
    assert len(plan.replayed_days) <= REPLAY_LIMIT_DAYS
    assert set(plan.replayed_days) <= set(plan.label_days) or not plan.replayed_days


def test_the_plan_survives_xcom():
    plan = plan_deployment(request(observation_days=2), SERVING, 7, date(2018, 5, 25))
    assert plan.replayed_days
    assert DeploymentPlan.from_xcom(plan.to_xcom()) == plan


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "v4"}, "version must be a version number"),
        ({"strategy": "blue"}, "strategy must be one of"),
        ({"canary_share": 0.0}, "canary_share must be in"),
        ({"canary_share": float("nan")}, "canary_share must be in"),
        ({"observation_days": 0}, "observation_days must be in"),
        ({"action": "undo"}, "action must be one of"),
    ],
)
def test_impossible_requests_name_the_field(kwargs, message):
    with pytest.raises(DeploymentRequestError, match=message):
        request(**kwargs)


PARAMS = {
    "action": "deploy",
    "version": None,
    "strategy": "canary",
    "canary_share": 0.1,
    "observation_days": 3,
    "wait_for_labels": False,
    "require_approval": False,
    "day": None,
    "reason": None,
}


def test_a_run_deploys_the_candidate_of_its_event_at_the_event_day_unless_params_say():
    candidate = {"model_version": 4, "run_id": "r", "day": "2018-06-03"}
    woken = deployment_request(PARAMS, candidate, fallback_day=D, actor="a/asset_triggered")
    assert (woken.version, woken.day, woken.observation_days) == ("4", date(2018, 6, 3), 3)
    asked = {**PARAMS, "version": "5", "day": "2018-06-02", "reason": "by hand"}
    manual = deployment_request(asked, candidate, fallback_day=D, actor="a/manual", run_id="m")
    assert (manual.version, manual.day, manual.reason, manual.run_id) == (
        "5",
        date(2018, 6, 2),
        "by hand",
        "m",
    )
    rollback = {**PARAMS, "action": "rollback"}
    assert deployment_request(rollback, {}, fallback_day=D, actor="a").day == D
