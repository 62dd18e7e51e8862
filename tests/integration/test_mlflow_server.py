"""The production profile for real: an ``mlflow server`` on PostgreSQL with S3 artifacts.

The server runs as docker-compose runs it (``--artifacts-destination s3://...``, proxied, so
the client needs no storage credentials), on a fresh PostgreSQL database and a bucket of
the session's S3-compatible server; the test then drives the same log / register / alias
flow as the SQLite unit tests, over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mlops.registry import aliases
from mlops.registry import versions as registry
from mlops.registry.tracking import runs_by_key
from mlops.training.estimators import predict_scores
from tests.support.logged_runs import BROKEN, train_and_log, versions_with_key
from tests.support.mlflow_server import ServerDidNotStart, scratch_database

pytestmark = pytest.mark.integration


@pytest.fixture
def mlflow_server(postgres_url: str, s3_server: str, bucket: str, tmp_path: Path) -> Iterator[str]:
    from tests.support.mlflow_server import mlflow_server as server

    env = {"MLFLOW_S3_ENDPOINT_URL": s3_server}
    with scratch_database(postgres_url) as database:
        try:
            with server(
                database, f"s3://{bucket}/mlflow", tmp_path / "mlflow-server.log", env
            ) as uri:
                yield uri
        except ServerDidNotStart as err:
            pytest.fail(str(err))


def test_log_register_and_alias_flow_against_a_real_server(mlflow_server: str) -> None:
    import mlflow

    uri = mlflow_server
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    started = time.perf_counter()
    first = train_and_log(uri, "2018-08-08")
    v1 = registry.register_candidate(uri, first.logged.run_id)
    # a rerun of the same date replaces run and version, over HTTP too
    rerun = train_and_log(uri, "2018-08-08", max_iter=25)
    v2 = registry.register_candidate(uri, rerun.logged.run_id)
    experiment = client.get_experiment_by_name("fraud_model").experiment_id
    runs = runs_by_key(client, experiment, rerun.logged.run_key)
    assert [r.info.run_id for r in runs] == [rerun.logged.run_id]
    assert versions_with_key(client, rerun.logged.run_key) == [v2.version] != [v1.version]
    assert client.get_run(rerun.logged.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    files = {f.path for f in client.list_artifacts(rerun.logged.run_id, "gate")}
    assert files == {"gate/decision_record.json", "gate/model_card.md"}
    # approve -> challenger -> champion, and the champion loads back through the proxy
    assert aliases.apply_decision(uri, "approve", v2.version).changed
    assert aliases.promote_challenger(uri, expected_version=v2.version).changed
    assert aliases.champion_version(uri) == v2.version
    loaded = registry.load_model(uri, "champion")
    expected = predict_scores(rerun.model, rerun.evaluation)
    np.testing.assert_array_equal(predict_scores(loaded, rerun.evaluation), expected)
    # a rejected candidate for the next date gets a version but never an alias
    before = aliases.alias_state(uri)
    rejected = train_and_log(uri, "2018-08-15", behaviour=BROKEN)
    v3 = registry.register_candidate(uri, rejected.logged.run_id)
    assert v3.gate_outcome == "reject"
    assert not aliases.apply_decision(uri, v3.gate_outcome, v3.version).changed
    assert aliases.alias_state(uri) == before
    print(f"flow against the server: {time.perf_counter() - started:.1f} s")


def test_the_service_loads_a_version_through_the_server_without_storage_keys(
    mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model service gets no object-store key (compose, the manifests, e2e-prod): its
    loader fetches the artifacts through the server (``mlflow-artifacts:/``), which has them."""
    import os

    from mlops.registry.versions import MODEL_NAME
    from mlops.serving.holder import load_warm

    trained = train_and_log(mlflow_server, "2018-08-08")
    version = registry.register_candidate(mlflow_server, trained.logged.run_id)
    for name in [n for n in os.environ if n.startswith(("AWS_", "MLFLOW_S3_"))]:
        monkeypatch.delenv(name)
    loaded = load_warm(mlflow_server, MODEL_NAME, version.version)
    expected = predict_scores(trained.model, trained.evaluation)
    np.testing.assert_array_equal(predict_scores(loaded, trained.evaluation), expected)
