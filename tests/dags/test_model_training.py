"""model_training run by ``dag.test()`` on simulated data: a first model is approved; a
deliberately worse candidate (trained on shuffled labels) is rejected and moves nothing; the
known compromised cards include the frauds of the delay gap; unsettled features are refused
unless asked for, and then flagged; a candidate that needs review waits for a person, who
answers through Airflow's REST API (an approval announces it, with the reviewer recorded;
the requester's own approval and no answer in time move nothing)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pendulum
import pytest

from tests.support.hitl import REQUESTER, answer_hitl, time_out_hitl
from tests.support.published import published
from tests.support.threads import helper_thread
from tests.support.training_data import UNSETTLED_MONDAY, build_data_root, environment, monday

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return build_data_root(tmp_path_factory.mktemp("training"))


@pytest.fixture
def env(data_root, monkeypatch):
    for name, value in environment(data_root).items():
        monkeypatch.setenv(name, value)
    return environment(data_root)


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    return bag.dags["model_training"]


def run_as_of(day, **conf):
    run = load_dag().test(
        logical_date=pendulum.datetime(day.year, day.month, day.day, 3, tz="UTC"),
        run_conf=conf or None,
    )
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    outcome = next(ti for ti in run.get_task_instances() if ti.task_id == "train_and_gate")
    return run, states, outcome.xcom_pull(task_ids="train_and_gate")


def test_the_family_param_offers_the_families_the_training_code_knows():
    from mlops.training.families import DEFAULT_FAMILY, FAMILIES

    family = load_dag().params.get_param("family")
    assert family.value == DEFAULT_FAMILY
    assert family.schema["enum"] == list(FAMILIES)


def removed_known_rows(data_root: Path, as_of: date, first: str, end: str) -> int:
    """Evaluation rows of cards known compromised when the history is the frauds of the
    validated days ``[first, end)`` (computed here from the zone, not by the job)."""
    from mlops.evaluation.metrics import eligible_mask, first_fraud_days

    sets = published(data_root / "training_sets" / f"date={as_of}")
    evaluation = pd.read_parquet(sets / "evaluation.parquet")
    start, stop = date.fromisoformat(first), date.fromisoformat(end)
    days = [start + timedelta(days=i) for i in range((stop - start).days)]
    files = [
        f for d in days for f in published(data_root / "validated" / f"date={d}").glob("*.parquet")
    ]
    history = pd.concat(pd.read_parquet(file) for file in files)
    return int((~eligible_mask(evaluation, first_fraud_days(history), 7)).sum())


def test_first_model_is_approved_then_a_worse_candidate_is_rejected(
    airflow_db, env, data_root, monkeypatch
):
    from mlops.registry import aliases
    from mlops.registry import versions as registry

    tracking_uri = env["MLOPS_MLFLOW_TRACKING_URI"]
    run, states, outcome = run_as_of(monday(0))
    assert str(run.state) == "success", states
    assert outcome["outcome"] == "approve", outcome["reasons"]
    assert states["announce_candidate"] == "success"
    assert states["describe_review"] == states["review_candidate"] == "skipped"
    assert aliases.alias_state(tracking_uri).challenger == outcome["model_version"]

    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    mlflow_run = client.get_run(outcome["run_id"])
    assert mlflow_run.data.tags["mlops.gate_outcome"] == "approve"
    assert mlflow_run.data.tags["airflow.dag_id"] == "model_training"
    assert mlflow_run.data.params["eval_end"] <= str(monday(0))
    record = json.loads(
        Path(client.download_artifacts(outcome["run_id"], registry.DECISION_RECORD)).read_text()
    )
    assert record["outcome"] == "approve"
    assert record["evidence"]["features"]["settled"] is True
    assert record["metadata"]["mlops.features_settled"] == "true"

    # known cards: the frauds of the training days and of the 7-day gap after them
    params = mlflow_run.data.params
    removed = outcome["metrics"]["candidate"]["n_removed_known"]
    start, gap, end = params["train_start"], params["train_end"], params["eval_start"]
    assert removed == removed_known_rows(data_root, monday(0), start, end)
    assert removed > removed_known_rows(data_root, monday(0), start, gap)  # training set only

    aliases.promote_challenger(tracking_uri)  # what the deployment DAG does after rollout
    champion = aliases.alias_state(tracking_uri).champion

    import mlops.training.job as job

    real_train = job.train

    def train_on_shuffled_labels(family, frame, labels, params=None, seed=0):
        shuffled = np.random.default_rng(0).permutation(labels.to_numpy())
        return real_train(family, frame, shuffled, params, seed)

    monkeypatch.setattr(job, "train", train_on_shuffled_labels)
    run, states, outcome = run_as_of(monday(1), reason="shuffled labels on purpose")
    assert outcome["outcome"] == "reject", outcome["reasons"]
    assert states["announce_candidate"] == states["review_candidate"] == "skipped"
    state = aliases.alias_state(tracking_uri)
    assert (state.champion, state.challenger) == (champion, None)


def test_a_rerun_of_the_same_date_replaces_its_run_and_version(
    airflow_db, env, tmp_path, monkeypatch
):
    import mlflow

    tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"  # no champion: the first-model rule
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", tracking_uri)
    with helper_thread(time_out_hitl("review_candidate")):  # nobody reviews: nothing moves
        _, _, first = run_as_of(monday(2), force_review=True)
    with helper_thread(time_out_hitl("review_candidate")):
        _, _, second = run_as_of(monday(2), force_review=True)
    assert first["outcome"] == second["outcome"] == "needs_review", first["reasons"]
    assert first["metrics"]["candidate"] == second["metrics"]["candidate"]  # same inputs, seed
    client = mlflow.MlflowClient(tracking_uri)
    key = f"model_training/{monday(2)}"
    versions = client.search_model_versions(
        f"name = 'fraud_model' and tags.`mlops.run_key` = '{key}'"
    )
    assert [v.run_id for v in versions] == [second["run_id"]]


def test_after_a_breach_the_run_trains_up_to_its_held_out_week_and_registers_a_refit(
    airflow_db, env, tmp_path, monkeypatch
):
    import mlflow

    import mlops.training.job as job
    from mlops.registry import versions as registry

    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    fitted: list[int] = []
    real_train = job.train

    def counting_train(family, frame, labels, params=None, seed=0):
        fitted.append(len(frame))
        return real_train(family, frame, labels, params, seed)

    monkeypatch.setattr(job, "train", counting_train)
    run, states, outcome = run_as_of(monday(2), breach_since="2018-06-01")
    assert str(run.state) == "success", states
    assert outcome["outcome"] == "approve", outcome["reasons"]  # first model: no champion
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    logged = client.get_run(outcome["run_id"])
    params, tags = logged.data.params, logged.data.tags
    assert params["gap_days"] == "0" and params["train_end"] == params["eval_start"]
    assert params["eval_end"] == str(monday(2) - timedelta(days=7))
    assert len(fitted) == 2 and fitted[1] > fitted[0]  # the gated model, then the refit
    assert tags["mlops.window_placement"] == "after_breach"
    assert tags["mlops.breach_since"] == "2018-06-01" and tags["mlops.refit"] == "true"
    assert tags["mlops.gated_on"].startswith(f"trained on {params['train_start']}..")
    assert "refit after approval" in tags["mlops.registered_model"]
    card = Path(client.download_artifacts(outcome["run_id"], registry.MODEL_CARD)).read_text()
    assert "mlops.gated_on" in card and "mlops.registered_model" in card


def test_unsettled_features_are_refused_unless_allowed_then_flagged(
    airflow_db, env, tmp_path, monkeypatch
):
    import mlflow

    from mlops.registry import versions as registry

    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    run, states, _ = run_as_of(UNSETTLED_MONDAY)
    assert states["build_training_sets"] == "failed", states
    assert states["train_and_gate"] == "upstream_failed"

    with helper_thread(time_out_hitl("review_candidate")):  # nobody reviews it
        run, states, outcome = run_as_of(UNSETTLED_MONDAY, allow_unsettled_features=True)
    assert str(run.state) == "success", states
    assert outcome["outcome"] == "needs_review"
    assert outcome["reasons"][-1].startswith("unsettled features: ")
    assert "training 2018-04-09..2018-04-15" in outcome["reasons"][-1]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    record = json.loads(
        Path(client.download_artifacts(outcome["run_id"], registry.DECISION_RECORD)).read_text()
    )
    assert record["metadata"]["mlops.features_settled"] == "false"
    assert record["metadata"]["mlops.first_settled_day"] == "2018-05-08"
    card = Path(client.download_artifacts(outcome["run_id"], registry.MODEL_CARD)).read_text()
    assert "**UNSETTLED**: " in card and "training 2018-04-09 to 2018-04-15" in card


@pytest.mark.integration
def test_a_data_root_on_s3_through_the_airflow_aws_connection(
    airflow_db, data_root, s3_server, bucket, redis_db, aws_connection, tmp_path, monkeypatch
):
    """The production shape: partitions, Feast registry and training sets on S3."""
    import mlflow

    from mlops.features.store import apply_definitions
    from mlops.io import storage
    from mlops.settings import load_settings
    from tests.support.training_data import FIRST

    options = aws_connection
    fs, _ = storage.filesystem(f"s3://{bucket}", options)
    for zone in ("validated", "features"):
        fs.put(str(data_root / zone), f"{bucket}/data/{zone}", recursive=True)
    root = f"s3://{bucket}/data"
    environment = {
        "MLOPS_DATA_ROOT": root,
        "MLOPS_HISTORY_START": FIRST.isoformat(),
        "MLOPS_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MLOPS_S3_ENDPOINT_URL": s3_server,
        "FEAST_S3_ENDPOINT_URL": s3_server,
        "MLOPS_ONLINE_STORE": "redis",
        "MLOPS_REDIS_URL": redis_db,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    apply_definitions(load_settings())

    run, states, outcome = run_as_of(monday(0))
    assert str(run.state) == "success", states
    assert outcome["outcome"] == "approve", outcome["reasons"]
    sets = f"{root}/training_sets/date={monday(0)}"
    training = storage.read_parquet(f"{published(sets, options)}/training.parquet", options)
    assert len(training) > 1000 and storage.exists(f"{sets}/_SUCCESS", options)
    client = mlflow.MlflowClient(environment["MLOPS_MLFLOW_TRACKING_URI"])
    inputs = client.get_run(outcome["run_id"]).inputs.dataset_inputs
    assert any(sets in d.dataset.source for d in inputs), [d.dataset.source for d in inputs]


def test_an_empty_training_cron_leaves_only_the_retrain_request_asset(monkeypatch):
    assert type(load_dag().timetable).__name__ == "AssetOrTimeSchedule"
    monkeypatch.setenv("MLOPS_TRAINING_CRON", "")
    timetable = load_dag().timetable
    assert type(timetable).__name__ == "AssetTriggeredTimetable"
    assert "retrain_request" in repr(timetable.asset_condition)


def test_the_review_follows_only_a_needs_review_and_joins_the_announcement(monkeypatch):
    from mlops_airflow.approval import CandidateReviewOperator

    monkeypatch.setenv("MLOPS_ROLLOUT_APPROVERS", "carol,role:Approver")
    monkeypatch.setenv("MLOPS_REVIEW_TIMEOUT_H", "0.5")
    dag = load_dag()
    review = dag.task_dict["review_candidate"]
    assert isinstance(review, CandidateReviewOperator)
    assert review.upstream_task_ids == {"describe_review"}
    assert dag.task_dict["describe_review"].upstream_task_ids == {
        "route_decision",
        "train_and_gate",
    }
    assert dag.task_dict["gate_approved"].upstream_task_ids == {"route_decision"}
    announce = dag.task_dict["announce_candidate"]
    assert announce.upstream_task_ids == {"gate_approved", "review_candidate"}
    assert announce.trigger_rule == "none_failed_min_one_success"
    assert [user["id"] for user in review.assigned_users] == ["carol", "role:Approver"]
    assert (review.defaults, review.response_timeout) == (["Reject"], timedelta(minutes=30))
    assert dag.dagrun_timeout > review.response_timeout


@pytest.fixture
def reviewers(airflow_db, env, tmp_path, monkeypatch):
    """A registry with no champion (the first model is approved, and force_review turns that
    into needs_review) and real users: only the listed approvers may answer."""
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch.setenv("MLOPS_ROLLOUT_APPROVERS", f"carol,{REQUESTER}")
    from mlops.settings import load_settings

    return load_settings()


def reviewed_run(answer) -> tuple[object, dict[str, str], dict, list]:
    """A needs_review run whose review ``answer`` settles; its history events."""
    from mlops.registry.history import read_history
    from mlops.settings import load_settings

    with helper_thread(answer):
        run, states, outcome = run_as_of(monday(2), force_review=True, reason="review me")
    assert str(run.state) == "success", states
    assert outcome["outcome"] == "needs_review", outcome["reasons"]
    assert states["gate_approved"] == "skipped"
    assert states["review_candidate"] == "success"
    events = [e for e in read_history(load_settings()) if e.run_id == run.run_id]
    return run, states, outcome, events


def version_tags(settings, version: str) -> dict[str, str]:
    from mlops.registry.versions import MODEL_NAME
    from mlops.rollout.live import registry_client

    return registry_client(settings.mlflow_tracking_uri).get_model_version(MODEL_NAME, version).tags


def test_an_approved_review_announces_the_candidate_with_its_reviewer(reviewers):
    from mlops.deployment.plan import DeploymentRequest
    from mlops.deployment.run import plan
    from mlops.registry.aliases import alias_state

    answer = answer_hitl("model_training", "review_candidate", "carol", "Approve", "mallory")
    run, states, outcome, events = reviewed_run(answer)
    version = outcome["model_version"]
    assert states["announce_candidate"] == "success"
    (event,) = events
    assert (event.action, event.version, event.day) == ("approved", version, str(monday(2)))
    assert (event.responded_by, event.approved_by) == ("carol", "carol")
    assert event.details["stage"] == "review"
    assert event.details["requester"] == REQUESTER
    assert event.details["comment"] == "checked the model card"
    assert "force_review: the run asked for a person to confirm" in event.details["gate_reasons"]
    tags = version_tags(reviewers, version)
    assert tags["mlops.gate_outcome"] == "needs_review"
    assert tags["mlops.human_approval"].startswith("approved by carol at ")
    assert alias_state(reviewers.mlflow_tracking_uri).challenger == version
    extra = announced(run)
    assert (extra["model_version"], extra["day"]) == (version, str(monday(2)))
    # what model_deployment does with the event: plans it, asking nobody again
    request = DeploymentRequest(day=monday(2), version=version, run_id="asset_triggered__1")
    assert plan(reviewers, request).path == "start"


def announced(run) -> dict:
    """The extra of the candidate_model event the run emitted."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).where(
                AssetEvent.source_dag_id == "model_training",
                AssetEvent.source_run_id == run.run_id,
            )
        ).all()
        assert len(events) == 1, events
        return dict(events[0].extra)


@pytest.mark.parametrize(
    ("responder", "action"), [(REQUESTER, "approval_refused"), (None, "approval_timed_out")]
)
def test_a_review_that_does_not_approve_moves_nothing(reviewers, responder, action):
    """The requester's own Approve is refused; nobody answering in time is a timeout."""
    from mlops.registry.aliases import alias_state

    if responder:
        answer = answer_hitl("model_training", "review_candidate", responder, "Approve")
    else:
        answer = time_out_hitl("review_candidate")
    run, states, outcome, events = reviewed_run(answer)
    assert states["announce_candidate"] == "skipped"
    (event,) = events
    assert (event.action, event.responded_by, event.approved_by) == (action, responder, None)
    assert "mlops.human_approval" not in version_tags(reviewers, outcome["model_version"])
    state = alias_state(reviewers.mlflow_tracking_uri)
    assert (state.champion, state.challenger) == (None, None)
