"""MLflow tracking and registry on SQLite: one run and one version per key, and the aliases.

The runs come from ``tests.support.logged_runs``, which the integration test against a real
MLflow server uses too, so both exercise the same flow.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.features.names import FEATURES, LABEL
from mlops.gate.decision import decide
from mlops.registry import aliases
from mlops.registry import versions as registry
from mlops.registry.tracking import (
    SKOPS_TRUSTED_TYPES,
    DatasetSpec,
    RunContext,
    attach_decision,
    runs_by_key,
)
from mlops.training.estimators import predict_scores, train
from mlops.training.families import FAMILIES
from mlops.training.job import gate_verdict
from tests.support.logged_runs import (
    BROKEN,
    DAG_ID,
    FAST,
    POLICY,
    synthetic_frame,
    train_and_log,
    versions_with_key,
)


@pytest.fixture
def client(uri: str) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_run_logs_params_metrics_tags_inputs_signature_and_model(uri: str, client) -> None:
    import mlflow

    champion = train_and_log(uri, "2018-08-01").metrics
    trained = train_and_log(uri, "2018-08-08", champion=champion)
    logged, run = trained.logged, client.get_run(trained.logged.run_id)
    assert logged.run_key == "model_training/2018-08-08" and logged.gate_outcome == "approve"
    expected = {"family": "hist_gradient_boosting", "hp.max_iter": "10", "seed": "0"}
    expected |= {"window_days": "4", "label_delay_days": "7"}
    expected |= {"train_start": "2018-07-24", "train_end": "2018-07-28", "eval_end": "2018-08-08"}
    assert expected.items() <= run.data.params.items()
    metrics = run.data.metrics
    assert metrics["roc_auc"] == pytest.approx(trained.metrics.roc_auc)
    assert metrics["champion/roc_auc"] == pytest.approx(champion.roc_auc)
    assert "slice/night/average_precision" in metrics and "card_precision_at_10" in metrics
    tags = run.data.tags
    assert tags["airflow.dag_id"] == DAG_ID and tags["airflow.logical_date"] == "2018-08-08"
    assert tags["airflow.run_id"] == "scheduled__2018-08-08T00:00:00+00:00"
    assert tags["mlops.feature_service"] == "fraud_model_v1"
    assert tags["mlops.gate_outcome"] == "approve" and tags["mlops.code_version"]
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    for name, dataset_input in inputs.items():
        assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == name
    assert sorted(inputs) == ["evaluation", "training"]
    assert len(inputs["training"].dataset.digest) == 32
    assert json.loads(inputs["evaluation"].dataset.profile)["num_rows"] == 400
    with registry.tracking_scope(uri):
        model_info = mlflow.models.get_model_info(logged.model_uri)
    assert model_info.signature.inputs.input_names() == list(FEATURES)
    assert model_info.flavors["sklearn"]["serialization_format"] == "skops"
    model_id = logged.model_uri.removeprefix("models:/")
    folder = Path(client.get_logged_model(model_id).artifact_location)
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert {r.split("==")[0] for r in requirements} >= {"mlflow", "scikit-learn", "skops"}
    assert (folder / "input_example.json").exists()


def test_rerun_with_the_same_key_replaces_run_and_version(uri: str, client) -> None:
    first = train_and_log(uri, "2018-08-08").logged
    v1 = registry.register_candidate(uri, first.run_id)
    aliases.set_challenger(uri, v1.version)  # a candidate, not yet serving: replaceable
    # a rerun with another hyperparameter: reusing the run would fail (params are immutable)
    second = train_and_log(uri, "2018-08-08", max_iter=25).logged
    v2 = registry.register_candidate(uri, second.run_id)
    experiment = client.get_experiment_by_name("fraud_model").experiment_id
    runs = runs_by_key(client, experiment, second.run_key)
    assert [r.info.run_id for r in runs] == [second.run_id]
    assert second.replaced_run_ids == (first.run_id,)
    assert client.get_run(first.run_id).info.lifecycle_stage == "deleted"
    assert client.get_run(second.run_id).data.params["hp.max_iter"] == "25"
    assert versions_with_key(client, second.run_key) == [v2.version] != [v1.version]
    assert v2.replaced_versions == (v1.version,) and not v2.reused
    assert aliases.alias_state(uri).challenger is None  # left with v1; the new gate decides
    models = client.search_logged_models([experiment])
    assert [f"models:/{m.model_id}" for m in models] == [second.model_uri]


def test_a_failed_rerun_keeps_the_old_run_and_the_next_one_cleans_up(
    uri: str, client, monkeypatch
) -> None:
    import mlops.registry.tracking

    old = train_and_log(uri, "2018-08-08").logged

    def broken(*args: Any) -> None:
        raise RuntimeError("artifact store down")

    with monkeypatch.context() as patch:
        patch.setattr(mlops.registry.tracking, "_log_model", broken)
        with pytest.raises(RuntimeError, match="artifact store down"):
            train_and_log(uri, "2018-08-08")
    experiment = client.get_experiment_by_name("fraud_model").experiment_id
    runs = runs_by_key(client, experiment, old.run_key)
    assert [r.info.status for r in runs] == ["FINISHED", "FAILED"]  # the old run is intact
    new = train_and_log(uri, "2018-08-08").logged
    assert [r.info.run_id for r in runs_by_key(client, experiment, old.run_key)] == [new.run_id]
    assert set(new.replaced_run_ids) == {r.info.run_id for r in runs}


def test_registering_the_same_run_again_reuses_its_version(uri: str, client) -> None:
    logged = train_and_log(uri, "2018-08-08").logged
    first = registry.register_candidate(uri, logged.run_id)
    again = registry.register_candidate(uri, logged.run_id)
    assert (again.version, again.reused, first.reused) == (first.version, True, False)
    assert versions_with_key(client, logged.run_key) == [first.version]


def test_registration_records_the_digest_of_the_version_s_files(uri: str, client) -> None:
    from mlops.registry import trust

    logged = train_and_log(uri, "2018-08-08").logged
    version = registry.register_candidate(uri, logged.run_id).version
    digest = trust.downloaded_digest(uri, registry.MODEL_NAME, version)
    tags = client.get_model_version(registry.MODEL_NAME, version).tags
    assert tags["mlops.artifact_sha256"] == digest
    # a reuse whose version lost its digest (registered before digests) records it again
    client.delete_model_version_tag(registry.MODEL_NAME, version, "mlops.artifact_sha256")
    assert registry.register_candidate(uri, logged.run_id).reused
    tags = client.get_model_version(registry.MODEL_NAME, version).tags
    assert tags["mlops.artifact_sha256"] == digest


def test_different_dates_give_different_runs_and_versions(uri: str, client) -> None:
    runs = [train_and_log(uri, day).logged for day in ("2018-08-01", "2018-08-08")]
    versions = [registry.register_candidate(uri, r.run_id) for r in runs]
    assert [v.version for v in versions] == ["1", "2"]
    assert [v.run_key for v in versions] == [r.run_key for r in runs]
    experiment = client.get_experiment_by_name("fraud_model").experiment_id
    assert len(client.search_runs([experiment])) == 2


@pytest.fixture(scope="module")
def three_versions_db(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1-3 registered, no alias; the alias tests start from copies of it (their
    artifacts stay in this fixture's folder, which the copied DB points to)."""
    path = tmp_path_factory.mktemp("three-versions") / "mlflow.db"
    shutil.copy(template_db, path)
    for day in ("2018-08-01", "2018-08-08", "2018-08-15"):
        registry.register_candidate(
            f"sqlite:///{path}", train_and_log(f"sqlite:///{path}", day).logged.run_id
        )
    return path


@pytest.fixture
def versions_uri(three_versions_db: Path, tmp_path: Path) -> str:
    shutil.copy(three_versions_db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_alias_flow_promote_rollback_and_no_ops(versions_uri: str) -> None:
    import mlflow

    uri, (v1, v2, v3) = versions_uri, ("1", "2", "3")
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    state = aliases.alias_state
    assert aliases.champion_version(uri) is None
    assert aliases.set_challenger(uri, v1).changed
    assert not aliases.set_challenger(uri, v1).changed  # already challenger
    first = aliases.promote_challenger(uri)
    assert first.changed and state(uri) == aliases.AliasState(champion=v1)
    assert not aliases.promote_challenger(uri).changed  # nothing to promote
    assert not aliases.set_challenger(uri, v1).changed  # already champion
    aliases.set_challenger(uri, v2)
    second = aliases.promote_challenger(uri, expected_version=v2)
    assert second.after == aliases.AliasState(champion=v2, previous=v1)
    assert second.to_dict()["before"] == {"champion": v1, "challenger": v2, "previous": None}
    assert not aliases.promote_challenger(uri, expected_version=v2).changed  # a retry
    aliases.set_challenger(uri, v3)
    # v1 was never the challenger we watched
    with pytest.raises(aliases.AliasConflict, match="challenger is 3, expected v1"):
        aliases.promote_challenger(uri, expected_version=v1)
    back = aliases.rollback(uri, expected_champion=v2)
    assert back.after == aliases.AliasState(champion=v1, challenger=v3)
    assert client.get_model_version(registry.MODEL_NAME, v2).tags["mlops.rolled_back"] == "true"
    assert not aliases.rollback(uri).changed  # no previous any more
    assert not aliases.rollback(uri, expected_champion=v2).changed


def test_interrupted_moves_are_finished_by_a_retry(versions_uri: str) -> None:
    import mlflow

    uri, (v1, v2) = versions_uri, ("1", "2")
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = registry.MODEL_NAME
    # promote crashed after moving champion: challenger == champion, previous already set
    for alias, version in (("previous", v1), ("champion", v2), ("challenger", v2)):
        client.set_registered_model_alias(name, alias, version)
    done = aliases.promote_challenger(uri, expected_version=v2)
    assert done.after == aliases.AliasState(champion=v2, previous=v1)
    # rollback crashed after moving champion: champion == previous
    client.set_registered_model_alias(name, "champion", v1)
    assert aliases.rollback(uri, expected_champion=v2).after == aliases.AliasState(champion=v1)


@pytest.mark.parametrize("outcome", ["reject", "needs_review"])
def test_reject_and_review_never_touch_aliases(
    versions_uri: str, outcome: str, monkeypatch
) -> None:
    import mlflow

    uri, (v1, v2, v3) = versions_uri, ("1", "2", "3")
    aliases.set_challenger(uri, v1)
    aliases.promote_challenger(uri)
    aliases.set_challenger(uri, v2)
    before = aliases.alias_state(uri)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an alias was written")

    for method in ("set_registered_model_alias", "delete_registered_model_alias"):
        monkeypatch.setattr(mlflow.MlflowClient, method, forbidden)
    rejected = train_and_log(uri, "2018-08-22", behaviour=BROKEN)
    assert rejected.logged.gate_outcome == "reject"
    decision = rejected.logged.gate_outcome if outcome == "reject" else "needs_review"
    update = aliases.apply_decision(uri, decision, v3)
    assert not update.changed and update.before == update.after == before
    with pytest.raises(ValueError, match="unknown gate outcome"):
        aliases.apply_decision(uri, "approved", v3)


def test_model_loads_back_by_alias_and_scores_identically(uri: str) -> None:
    trained = train_and_log(uri, "2018-08-08")
    version = registry.register_candidate(uri, trained.logged.run_id).version
    assert aliases.apply_decision(uri, "approve", version).after.challenger == version
    aliases.promote_challenger(uri)
    expected = predict_scores(trained.model, trained.evaluation)
    for ref in ("champion", version):
        loaded = registry.load_model(uri, ref)
        np.testing.assert_array_equal(predict_scores(loaded, trained.evaluation), expected)


def test_decision_record_model_card_and_version_tags(uri: str, client) -> None:
    import mlflow

    logged = train_and_log(uri, "2018-08-08").logged
    files = {f.path for f in client.list_artifacts(logged.run_id, "gate")}
    assert files == {"gate/decision_record.json", "gate/model_card.md"}
    with registry.tracking_scope(uri):
        record = mlflow.artifacts.load_dict(f"runs:/{logged.run_id}/gate/decision_record.json")
        card = mlflow.artifacts.load_text(f"runs:/{logged.run_id}/gate/model_card.md")
    assert record["outcome"] == "approve" and record["reasons"][0].startswith("first model")
    assert record["metadata"]["mlops.run_key"] == logged.run_key
    assert card.startswith("# Model card: candidate model_training/2018-08-08\n")
    assert "hist_gradient_boosting" in card
    run_tags = client.get_run(logged.run_id).data.tags
    lineage = {k: v for k, v in run_tags.items() if k.startswith("mlops.")}
    version = registry.register_candidate(uri, logged.run_id)
    tags = client.get_model_version(registry.MODEL_NAME, version.version).tags
    assert lineage.items() <= tags.items() and tags["airflow.dag_id"] == DAG_ID
    assert tags["mlops.logical_date"] == "2018-08-08" and tags["mlops.gate_outcome"] == "approve"
    assert tags["mlops.decision_record"] == f"runs:/{logged.run_id}/gate/decision_record.json"


def test_gate_after_logging_then_register(uri: str, client) -> None:
    trained = train_and_log(uri, "2018-08-08", behaviour=None)
    assert trained.logged.gate_outcome == "pending"
    decision = decide(trained.metrics, None, None, BROKEN, FAST, POLICY)
    attach_decision(uri, trained.logged.run_id, gate_verdict(decision))
    version = registry.register_candidate(uri, trained.logged.run_id)
    assert version.gate_outcome == "reject"
    assert client.get_run(trained.logged.run_id).data.tags["mlops.gate_outcome"] == "reject"


def test_rerun_never_deletes_a_serving_version(uri: str, client) -> None:
    serving = train_and_log(uri, "2018-08-08")
    old = serving.logged
    v1 = registry.register_candidate(uri, old.run_id).version
    aliases.set_challenger(uri, v1)
    aliases.promote_challenger(uri)
    rerun = train_and_log(uri, "2018-08-08", max_iter=25)
    new = rerun.logged
    v2 = registry.register_candidate(uri, new.run_id)
    assert new.superseded_run_ids == (old.run_id,) and v2.superseded_versions == (v1,)
    assert aliases.champion_version(uri) == v1  # production did not move
    kept = client.get_model_version(registry.MODEL_NAME, v1).tags
    assert kept["mlops.superseded_run_key"] == old.run_key and "mlops.run_key" not in kept
    assert client.get_run(old.run_id).info.lifecycle_stage == "active"
    experiment = client.get_experiment_by_name("fraud_model").experiment_id
    assert [r.info.run_id for r in runs_by_key(client, experiment, old.run_key)] == [new.run_id]
    assert versions_with_key(client, old.run_key) == [v2.version]
    rows = serving.evaluation
    expected = predict_scores(serving.model, rows)
    assert not np.array_equal(predict_scores(rerun.model, rows), expected)
    np.testing.assert_array_equal(predict_scores(registry.load_model(uri), rows), expected)


def test_tracking_scope_restores_the_previous_uris(tmp_path: Path, monkeypatch) -> None:
    import mlflow

    outer = f"sqlite:///{tmp_path / 'outer.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", outer)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    inner = "http://127.0.0.1:9"  # never contacted: the scope only points MLflow at it
    with registry.tracking_scope(inner) as client:
        assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == inner
        assert client.tracking_uri == inner
    assert mlflow.get_tracking_uri() == outer == os.environ["MLFLOW_TRACKING_URI"]
    assert "MLFLOW_REGISTRY_URI" not in os.environ


@pytest.mark.parametrize("family", FAMILIES)
def test_skops_trusted_types_cover_every_family(family: str) -> None:
    import skops.io

    frame = synthetic_frame(0, date(2018, 8, 1), n=200)
    small = {"random_forest": {"n_estimators": 3}, "hist_gradient_boosting": {"max_iter": 3}}
    small["hgb_lr_stack"] = {"hist_gradient_boosting": {"max_iter": 3}}
    model = train(family, frame, frame[LABEL], small.get(family, {}))
    assert set(skops.io.get_untrusted_types(data=skops.io.dumps(model))) <= set(SKOPS_TRUSTED_TYPES)


def test_dataset_digest_and_run_context() -> None:
    parts = {"date=2018-08-01": "a" * 64, "date=2018-08-02": "b" * 64}
    frame = pd.DataFrame()
    digest = DatasetSpec("t", frame, parts).digest
    assert digest == DatasetSpec("t", frame, dict(reversed(parts.items()))).digest
    assert len(digest) == 32
    assert DatasetSpec("t", frame, parts | {"date=2018-08-02": "c" * 64}).digest != digest
    assert DatasetSpec("t", frame).digest is None  # MLflow hashes the frame instead
    context = RunContext(DAG_ID, datetime(2018, 8, 8, 0, 0))
    assert context.logical_date == date(2018, 8, 8)
    assert context.run_key == "model_training/2018-08-08"
    with pytest.raises(ValueError, match="invalid dag_id"):
        RunContext("x' or '1'='1", "2018-08-08")
