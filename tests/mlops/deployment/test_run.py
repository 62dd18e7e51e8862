"""Rollouts against a real MLflow registry, scored by daily scoring as transactions_daily
would: a good challenger is promoted, a broken one is rolled back without ever answering,
a champion is rolled back by hand; the history tells who served each day."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlops.deployment.plan import DeploymentRequest
from mlops.deployment.run import Approval, finish, judge_rollout, plan, roll_back, start
from mlops.features.names import FEATURES, LABEL
from mlops.registry.aliases import alias_state
from mlops.registry.history import read_history, served_on
from mlops.registry.versions import MODEL_NAME
from mlops.rollout.live import registry_client
from mlops.rollout.state import read_rollout
from mlops.scoring.log import prediction_sink
from tests.support.deployment_world import (
    START,
    observed,
    register_with_data_end,
    reset_registry,
    score_days,
)
from tests.support.feature_data import offline_rows


@pytest.fixture
def world(deployment_world):
    reset_registry(deployment_world.settings, champion=deployment_world.versions.good)
    return deployment_world


def rollout(world, version: str, scored: int = 3, **kwargs):
    """A canary of ``version`` started on START, its first ``scored`` days scored; judged."""
    request = DeploymentRequest(
        day=START,
        version=version,
        observation_days=3,
        wait_for_labels=False,
        run_id=f"test-{version}-{kwargs.get('strategy', 'canary')}",
        **kwargs,
    )
    planned = plan(world.settings, request)
    started = start(world.settings, planned, approval=Approval(by="alice", at="t"))
    score_days(world.settings, observed(START, scored))
    return planned, started, judge_rollout(world.settings, planned)


def labels_of(world, days):
    frame = offline_rows(world.root, days[0], days[-1] + timedelta(days=1))
    return frame[["TRANSACTION_ID", LABEL]].rename(columns={"TRANSACTION_ID": "transaction_id"})


def logged(world, days):
    sink = prediction_sink(world.settings.data_root)
    import pandas as pd

    return pd.concat([sink.read_day("batch", d) for d in days], ignore_index=True)


def test_a_canary_is_observed_until_its_matured_rows_hold_enough_frauds(world):
    """Its 3 days are scored, but no label of theirs has matured: it is still observed, on
    one more day at a time (mlops.deployment.maturity)."""
    with pytest.raises(RuntimeError, match=r"still observed: .*date=\S+/_SUCCESS"):
        rollout(world, world.versions.better, scored=5)


def test_a_good_canary_is_promoted_on_matured_quality_and_the_history_tells_who_served_when(
    world,
):
    good, better = world.versions.good, world.versions.better
    # judged once the labels of D+1 are known (D+8): they hold enough frauds
    planned, started, judgement = rollout(world, better, scored=8, canary_share=0.3)
    assert started.action == "rollout_started"
    rows = logged(world, observed(START, 8))
    share = (rows["variant"] == "challenger").mean()
    assert 0.15 < share < 0.45 and rows["challenger_score"].notna().all()
    assert judgement.verdict == "promote", judgement.reasons
    seen, quality = judgement.checks["observation"], judgement.checks["quality"]
    assert (seen["status"], seen["extra_days"], seen["judge_day"]) == (
        "enough_frauds",
        5,
        str(START + timedelta(days=8)),
    )
    assert seen["label_days"] == [str(START + timedelta(days=1))]
    assert quality["judged"] and quality["frauds"] == seen["frauds"] >= 30
    assert {"candidate", "champion", "lo", "hi"} <= set(quality["bootstrap"])
    assert judgement.reasons[-1].startswith("matured AP non-inferior: challenger ")
    step = finish(world.settings, planned, judgement)
    assert step.action == "promoted"
    state = alias_state(world.settings.mlflow_tracking_uri)
    assert (state.champion, state.previous, state.challenger) == (better, good, None)
    assert not read_rollout(registry_client(world.settings.mlflow_tracking_uri), MODEL_NAME).active
    history = [e for e in read_history(world.settings) if e.run_id == planned.request.run_id]
    assert [e.action for e in history] == ["rollout_started", "promoted"]
    assert history[0].approved_by == "alice"
    assert history[1].evidence.endswith(f"v{better}-{START}.json")
    assert history[1].day == str(START + timedelta(days=8))  # judged there
    assert history[1].reason.endswith(judgement.reasons[-1])
    last_observed = START + timedelta(days=8)
    assert served_on(world.settings, last_observed).version == good
    assert served_on(world.settings, last_observed + timedelta(days=1)).version == better


def test_the_days_a_candidate_never_saw_are_replayed_and_judge_it_on_its_planned_days(world):
    """Its data ended on START-7: the champion served START-7 .. START, the challenger scores
    those days when its rollout starts; judged at START+3, the labels of START-7 .. START-4
    are known and hold enough frauds, so it is judged without waiting for its own."""
    from mlops.deployment.replay import replay_uri, replayed_scores
    from mlops.rollout.live import load_version

    unseen = [START - timedelta(days=i) for i in range(7, -1, -1)]
    version = register_with_data_end(world, unseen[0])
    score_days(world.settings, unseen)  # served by the champion
    planned, _, judgement = rollout(world, version)
    assert planned.replayed_days == tuple(str(d) for d in unseen)
    seen, quality = judgement.checks["observation"], judgement.checks["quality"]
    assert (seen["status"], seen["extra_days"]) == ("enough_frauds", 0)
    assert seen["label_days"] == [str(d) for d in unseen[:4]]
    served = logged(world, unseen[:4])
    assert quality["judged"] and quality["rows"] == len(served) and quality["frauds"] >= 30
    assert quality["replayed_rows"] == quality["rows"]  # no label of its own days yet
    assert quality["frauds"] == int(served.merge(labels_of(world, unseen[:4]))[LABEL].sum())
    assert judgement.verdict == "promote", judgement.reasons
    scores = replayed_scores(world.settings, planned)
    assert replay_uri(world.settings, planned).endswith(f"v{version}-{START}.parquet")
    first = offline_rows(world.root, unseen[0], unseen[1])
    model = load_version(world.settings.mlflow_tracking_uri, MODEL_NAME, version)
    expected = model.predict_proba(first[list(FEATURES)])[:, 1]
    replayed = scores.loc[scores["day"] == str(unseen[0])].sort_values("transaction_id")
    assert replayed["transaction_id"].tolist() == sorted(first["TRANSACTION_ID"].tolist())
    by_id = dict(zip(first["TRANSACTION_ID"], expected, strict=True))
    assert replayed["challenger_score"].tolist() == [by_id[t] for t in replayed["transaction_id"]]


@pytest.mark.parametrize("kind", ["broken", "garbage"])
def test_a_bad_challenger_is_rolled_back_and_the_champion_untouched(world, kind):
    good, bad = world.versions.good, getattr(world.versions, kind)
    # judged on its 3 days: failing there, it is not kept in traffic for its labels
    planned, _, judgement = rollout(world, bad, canary_share=0.5)
    assert judgement.verdict == "rollback"
    assert judgement.checks["observation"]["status"] == "failing"
    rows = logged(world, observed(START, 3))
    if kind == "broken":  # it raised on every row: no client was ever answered by it
        assert (rows["variant"] == "champion").all()
        assert "challenger raised" in judgement.reasons[0]
    step = finish(world.settings, planned, judgement)
    assert step.action == "rollout_aborted"
    state = alias_state(world.settings.mlflow_tracking_uri)
    assert (state.champion, state.challenger) == (good, None)
    client = registry_client(world.settings.mlflow_tracking_uri)
    assert not read_rollout(client, MODEL_NAME).active
    assert client.get_model_version(MODEL_NAME, bad).tags["mlops.rolled_back"] == "true"


def test_a_direct_deployment_then_a_manual_rollback(world):
    good, better = world.versions.good, world.versions.better
    request = DeploymentRequest(day=START, version=better, strategy="direct", run_id="direct")
    step = start(world.settings, plan(world.settings, request))
    assert (step.action, step.aliases["champion"], step.aliases["previous"]) == (
        "deployed",
        better,
        good,
    )
    back = DeploymentRequest(
        day=START + timedelta(days=2), action="rollback", reason="probation", run_id="back"
    )
    planned = plan(world.settings, back)
    undone = roll_back(world.settings, planned)
    assert (undone.action, undone.aliases["champion"]) == ("rolled_back", good)
    assert served_on(world.settings, START + timedelta(days=2)).version == better
    again = served_on(world.settings, START + timedelta(days=3))
    assert (again.version, again.since.reason) == (good, "probation")


@pytest.fixture
def under_review(world):
    """A version the gate sent for review (registered as the gate's ``needs_review``)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlops.registry.trust import TAG_GATE_OUTCOME
    from tests.support.serving_world import TRAIN, register_fitted

    frame = offline_rows(world.root, *TRAIN)
    model = HistGradientBoostingClassifier(max_iter=3, random_state=5)
    version = register_fitted(
        world.settings.mlflow_tracking_uri,
        world.root,
        model.fit(frame[list(FEATURES)], frame[LABEL]),
    )
    client = registry_client(world.settings.mlflow_tracking_uri)
    client.set_model_version_tag(MODEL_NAME, version, TAG_GATE_OUTCOME, "needs_review")
    return version


def test_a_version_under_review_serves_only_once_a_person_approved_its_rollout(world, under_review):
    from mlops.deployment.plan import DeploymentRequestError
    from mlops.registry.trust import UntrustedModel
    from mlops.rollout.live import load_version

    uri, version = world.settings.mlflow_tracking_uri, under_review
    with pytest.raises(UntrustedModel, match="review"):
        load_version(uri, MODEL_NAME, version)
    request = DeploymentRequest(day=START, version=version, strategy="direct", run_id="review")
    with pytest.raises(DeploymentRequestError, match="require_approval"):
        plan(world.settings, request)
    asked = DeploymentRequest(
        day=START, version=version, strategy="direct", run_id="review", require_approval=True
    )
    start(world.settings, plan(world.settings, asked), approval=Approval(by="carol", at="t1"))
    tags = registry_client(uri).get_model_version(MODEL_NAME, version).tags
    assert tags["mlops.human_approval"] == "approved by carol at t1"
    assert load_version(uri, MODEL_NAME, version).predict_proba is not None


def test_a_version_the_gate_rejected_is_not_rolled_out(world):
    from mlops.deployment.plan import DeploymentRequestError
    from mlops.registry.trust import TAG_GATE_OUTCOME

    client = registry_client(world.settings.mlflow_tracking_uri)
    version = world.versions.garbage
    client.set_model_version_tag(MODEL_NAME, version, TAG_GATE_OUTCOME, "reject")
    try:
        asked = DeploymentRequest(day=START, version=version, require_approval=True)
        with pytest.raises(DeploymentRequestError, match="gate outcome reject"):
            plan(world.settings, asked)
    finally:
        client.set_model_version_tag(MODEL_NAME, version, TAG_GATE_OUTCOME, "approve")
