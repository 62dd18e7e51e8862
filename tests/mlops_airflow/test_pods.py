"""Training in a pod: the KubernetesPodOperator's pod spec, built offline (no cluster, no
kubeconfig), runs the training entry with the settings' environment in the project image."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest
import yaml

from mlops.manifests.kubernetes import ClusterTarget, Resources, validate_manifests
from mlops.settings import load_settings
from mlops.training.cli import parser
from mlops_airflow.pods import AS_OF_DAY, training_arguments, training_pod

SETTINGS = load_settings(
    {
        "MLOPS_PROFILE": "production",
        "MLOPS_DATA_ROOT": "s3://mlops/data",
        "MLOPS_S3_ENDPOINT_URL": "http://minio:9000",
        "MLOPS_MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "MLOPS_REDIS_URL": "redis://redis:6379/0",
        "MLOPS_PREDICTION_LOG_URL": "postgresql+psycopg2://u:pw@postgres/mlops",
    }
)
TARGET = ClusterTarget("registry.example/mlops-fraud:1.2.3", namespace="fraud")


@pytest.fixture
def operator(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    return training_pod(
        SETTINGS,
        TARGET,
        as_of="2018-08-01",
        resources=Resources("1", "3Gi", "2", "5Gi"),
        training={"family": "random_forest", "hyperparameters": {"max_depth": 8}, "seed": 3},
    )


def test_dry_run_prints_the_pod_without_a_cluster(operator, capsys):
    operator.dry_run()
    out = capsys.readouterr().out
    pod = yaml.safe_load(out[out.index("api_version:") :])  # after Airflow's log line
    (container,) = pod["spec"]["containers"]
    assert pod["metadata"]["namespace"] == "fraud"
    assert container["image"] == "registry.example/mlops-fraud:1.2.3"
    assert container["args"][:5] == ["python", "-m", "mlops.training", "--as-of", "2018-08-01"]
    assert pod["spec"]["restart_policy"] == "Never"


def test_the_pod_runs_the_training_entry_with_the_dags_request(operator):
    pod = operator.build_pod_request_obj(dry_run=True)
    args = pod.spec.containers[0].args
    assert pod.spec.containers[0].command in (None, [])  # the image's entrypoint stays
    parsed = parser().parse_args(args[3:])
    assert parsed.as_of.isoformat() == "2018-08-01"
    assert (parsed.family, parsed.hyperparameters, parsed.seed) == (
        "random_forest",
        {"max_depth": 8},
        3,
    )


def test_the_pod_gets_the_settings_env_the_secret_and_its_resources(operator):
    pod = operator.build_pod_request_obj(dry_run=True)
    container = pod.spec.containers[0]
    env = {e.name: e.value for e in container.env if e.value_from is None}
    assert env["MLOPS_PROFILE"] == "production"
    assert env["MLOPS_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["MLOPS_DATA_ROOT"] == "s3://mlops/data"
    assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    assert "MLOPS_PREDICTION_LOG_URL" not in env  # its password comes from the Secret
    assert not container.env_from  # one key of the Secret at a time, not the whole of it
    refs = {e.name: e.value_from.secret_key_ref for e in container.env if e.value_from}
    assert {name: (ref.name, ref.key) for name, ref in refs.items()} == {
        name: ("mlops-fraud", name)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLOPS_PREDICTION_LOG_URL")
    }
    assert container.resources.requests == {"cpu": "1", "memory": "3Gi"}
    assert container.resources.limits == {"cpu": "2", "memory": "5Gi"}
    assert operator.on_finish_action.value == "delete_pod"


def test_the_pod_passes_the_same_offline_schema_check_as_the_service():
    from kubernetes.client import ApiClient

    pod = training_pod(SETTINGS, TARGET).build_pod_request_obj(dry_run=True)
    validate_manifests([ApiClient().sanitize_for_serialization(pod)])


def test_the_default_as_of_day_renders_from_the_run(operator):
    run = SimpleNamespace(run_after=datetime(2018, 8, 9, 3))
    context = {"logical_date": None, "dag_run": run, "dag": SimpleNamespace(dag_id="d")}
    rendered = operator.render_template(training_arguments(AS_OF_DAY), {**context, "run_id": "r"})
    assert rendered[3:5] == ["--as-of", "2018-08-09"]
    assert rendered[rendered.index("--dag-id") + 1] == "d"
    with_date = {**context, "logical_date": datetime(2018, 8, 6), "run_id": "r"}
    assert operator.render_template(AS_OF_DAY, with_date) == "2018-08-06"
