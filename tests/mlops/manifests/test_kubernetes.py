"""The model service's manifests: rendered from the settings, valid for the Kubernetes API
(offline, the schemas bundled with kubernetes-validate), and true to how the service runs."""

from __future__ import annotations

import copy
from dataclasses import fields
from datetime import date
from pathlib import Path

import pytest
import yaml

from mlops.manifests.kubernetes import (
    ClusterTarget,
    ManifestError,
    Resources,
    container_env,
    credentialed,
    manifests_yaml,
    secret_keys,
    service_manifests,
    serving_env,
    settings_env,
    validate_manifests,
    workload_env,
)
from mlops.serving.config import ServingConfig, load_serving_config
from mlops.settings import Settings, ValidationRules, load_settings

PROD = {
    "MLOPS_PROFILE": "production",
    "MLOPS_DATA_ROOT": "s3://mlops/data",
    "MLOPS_S3_ENDPOINT_URL": "http://minio:9000",
    "MLOPS_MLFLOW_TRACKING_URI": "http://mlflow:5000",
    "MLOPS_REDIS_URL": "redis://redis:6379/0",
}
TARGET = ClusterTarget("registry.example/mlops-fraud:1.2.3", namespace="fraud")


def rendered(**kwargs):
    return service_manifests(load_settings(PROD), ServingConfig(port=8100), TARGET, **kwargs)


def by_kind(docs):
    return {doc["kind"]: doc for doc in docs}


def container(docs):
    return by_kind(docs)["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_every_settings_field_is_rendered():
    """A new field of Settings must be mapped in settings_env, else pods silently miss it."""
    assert sorted(f.name for f in fields(Settings)) == sorted(
        [
            "profile",
            "data_root",
            "landing_uri",
            "aws_conn_id",
            "s3_endpoint_url",
            "mlflow_tracking_uri",
            "redis_url",
            "label_delay_days",
            "validation",
            "history_start",
            "online_store",
            "feast_registry",
            "feature_repo",
            "prediction_log_url",
        ]
    ), (
        "map the new Settings field in mlops.manifests.kubernetes.settings_env, then update this list"
    )


def test_the_rendered_environment_reads_back_as_the_same_settings():
    settings = Settings(
        profile="production",
        data_root="s3://lake/data",
        landing_uri="s3://inbox/landing",
        aws_conn_id="aws_lake",
        s3_endpoint_url="http://minio:9000",
        mlflow_tracking_uri="http://mlflow:5000",
        redis_url="redis://redis:6379/3",
        label_delay_days=5,
        validation=ValidationRules(
            max_amount=2500.5, min_rows=10, max_rows=999, bad_row_tolerance=0.125
        ),
        history_start=date(2018, 5, 1),
        online_store="redis",
        feast_registry="postgresql+psycopg2://feast@postgres/mlops",
        feature_repo="/srv/feature_repo",
        prediction_log_url="postgresql+psycopg2://mlops@postgres/mlops",
    )
    assert load_settings(settings_env(settings)) == settings
    assert load_settings(settings_env(load_settings(PROD))) == load_settings(PROD)


def test_the_rendered_serving_environment_reads_back_listening_on_every_interface():
    config = ServingConfig(port=9000, model_name="m", poll_s=2.5, max_batch=7, threads=2)
    env = serving_env(config)
    assert load_serving_config(env) == ServingConfig(**{**vars(config), "host": "0.0.0.0"})
    assert env["OMP_NUM_THREADS"] == "2"


def test_the_package_feature_repo_is_left_to_the_image():
    assert "MLOPS_FEATURE_REPO" not in settings_env(load_settings(PROD))


def test_the_container_runs_the_service_as_the_compose_file_does():
    c = container(rendered())
    assert c["image"] == TARGET.image
    assert c["args"] == ["python", "-m", "mlops.serving.app"]  # the image's entrypoint stays
    assert c["ports"] == [{"name": "http", "containerPort": 8100, "protocol": "TCP"}]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["MLOPS_SERVE_HOST"] == "0.0.0.0" and env["MLOPS_SERVE_PORT"] == "8100"
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["MLOPS_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["MLOPS_REDIS_URL"] == "redis://redis:6379/0"
    assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    assert env["CONNECTION_CHECK_MAX_COUNT"] == "0"
    assert c["envFrom"] == [{"secretRef": {"name": "mlops-fraud"}}]


def test_probes_ready_on_health_alive_on_live_with_room_to_start():
    c = container(rendered())
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/live", "port": "http"}
    startup = c["startupProbe"]
    assert startup["httpGet"]["path"] == "/live"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180  # tens of s measured


def test_resources_replicas_namespace_and_the_service_in_front():
    docs = rendered(replicas=3, resources=Resources("250m", "512Mi", "2", "3Gi"))
    deployment, service = by_kind(docs)["Deployment"], by_kind(docs)["Service"]
    assert deployment["spec"]["replicas"] == 3
    assert container(docs)["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "3Gi"},
    }
    assert deployment["metadata"]["namespace"] == service["metadata"]["namespace"] == "fraud"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]


def test_credentialed_urls_stay_out_of_the_manifests_and_go_to_the_secret():
    env = {
        **PROD,
        "MLOPS_PREDICTION_LOG_URL": "postgresql+psycopg2://mlops:s3cret@postgres/mlops",
        "MLOPS_REDIS_URL": "redis://:hunter2@redis:6379/0",
    }
    docs = service_manifests(load_settings(env), ServingConfig(), TARGET)
    text = manifests_yaml(docs)
    assert "s3cret" not in text and "hunter2" not in text
    assert credentialed(workload_env(load_settings(env))) == [
        "MLOPS_PREDICTION_LOG_URL",
        "MLOPS_REDIS_URL",
    ]
    assert secret_keys(workload_env(load_settings(env)))[:2] == [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]
    names = [e["name"] for e in container_env({"A": "x", "B": "https://u:p@h/"})]
    assert names == ["A"]


def test_rendered_manifests_validate_offline_and_round_trip_through_yaml():
    docs = rendered()
    validate_manifests(docs)
    assert list(yaml.safe_load_all(manifests_yaml(docs))) == docs


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            lambda d: d["spec"].__setitem__("replicas", "two"),
            r"Deployment/model-service: spec\.replicas: 'two' is not of type 'integer'",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("image"),
            r"spec\.template\.spec\.containers\[0\]\.image: a container needs an image",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"),
            r"spec\.template\.spec\.containers\[0\]: 'name' is a required property",
        ),
        (
            lambda d: d["spec"].__setitem__("replica", 2),  # a typo: strict schemas refuse it
            r"Deployment/model-service: spec: Additional properties are not allowed",
        ),
    ],
)
def test_a_broken_manifest_is_refused_naming_the_object_and_the_field(breakage, message):
    docs = copy.deepcopy(rendered())
    breakage(by_kind(docs)["Deployment"])
    with pytest.raises(ManifestError, match=message):
        validate_manifests(docs)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ClusterTarget(""), "image must be a container image reference"),
        (lambda: ClusterTarget("img", namespace="Fraud_NS"), "namespace must be a DNS label"),
        (lambda: Resources("half", "1Gi", "1", "2Gi"), "cpu_request must be a quantity"),
        (lambda: rendered(replicas=-1), r"replicas must be in \[0, 100\]"),
    ],
)
def test_impossible_parameters_are_refused_before_rendering(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_the_pod_starts_the_service_as_the_compose_file_does():
    compose = yaml.safe_load((Path(__file__).parents[3] / "docker-compose.yaml").read_text())
    service = compose["services"]["model-service"]
    env = service["environment"]
    docs = service_manifests(load_settings(PROD), load_serving_config(env), TARGET)
    c = container(docs)
    assert c["args"] == service["command"]
    rendered_env = {e["name"]: e["value"] for e in c["env"]}
    for name in ("MLOPS_SERVE_HOST", "MLOPS_SERVE_PORT", "OMP_NUM_THREADS", "MLOPS_PROFILE"):
        assert rendered_env[name] == str(env[name]), name
    assert c["ports"][0]["containerPort"] == int(env["MLOPS_SERVE_PORT"])
    assert service["healthcheck"]["test"][-1].endswith("/health")  # readiness there too
