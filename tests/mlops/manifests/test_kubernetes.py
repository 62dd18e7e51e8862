"""The model service's manifests: rendered from its environment (the compose block), valid for
the Kubernetes API (offline, the schemas bundled with kubernetes-validate), and true to how the
service runs; the training pods' environment, rendered from the settings."""

from __future__ import annotations

import copy
from dataclasses import fields
from datetime import date
from pathlib import Path

import pytest
import yaml

from mlops.manifests.environment import MODEL_SERVICE, service_environment
from mlops.manifests.kubernetes import (
    SECRET_KEYS_ANNOTATION,
    ClusterTarget,
    ManifestError,
    Resources,
    container_env,
    credentialed,
    listening_env,
    manifests_yaml,
    secret_keys,
    service_manifests,
    service_secret_keys,
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


SERVICE_ENV = {**PROD, "MLOPS_SERVE_PORT": "8100", "OMP_NUM_THREADS": "1"}


def rendered(env=SERVICE_ENV, **kwargs):
    return service_manifests(env, TARGET, **kwargs)


def container_vars(docs):
    return {e["name"]: e["value"] for e in container(docs)["env"]}


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
            "redis_timeout_s",
            "label_delay_days",
            "validation",
            "history_start",
            "online_store",
            "feast_registry",
            "feature_repo",
            "prediction_log_url",
            "alert_webhook_url",
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
        alert_webhook_url="https://hooks.example.com/services/T0/B0/secret",
    )
    assert load_settings(settings_env(settings)) == settings
    assert load_settings(settings_env(load_settings(PROD))) == load_settings(PROD)


def test_the_service_listens_on_every_interface_on_its_port():
    env = listening_env(ServingConfig(port=9000))
    assert load_serving_config(env) == ServingConfig(host="0.0.0.0", port=9000)


def test_the_container_gets_the_service_environment_and_nothing_else():
    env = {**SERVICE_ENV, "MLOPS_SERVE_HOST": "127.0.0.1", "MLOPS_SERVE_MODEL_NAME": "m"}
    assert container_vars(rendered(env)) == {**env, "MLOPS_SERVE_HOST": "0.0.0.0"}


def test_the_package_feature_repo_is_left_to_the_image():
    assert "MLOPS_FEATURE_REPO" not in settings_env(load_settings(PROD))


def test_the_container_runs_the_service_as_the_compose_file_does():
    c = container(rendered())
    assert c["image"] == TARGET.image
    assert c["args"] == ["python", "-m", "mlops.serving.app"]  # the image's entrypoint stays
    assert c["ports"] == [{"name": "http", "containerPort": 8100, "protocol": "TCP"}]
    env = container_vars(rendered())
    assert env["MLOPS_SERVE_HOST"] == "0.0.0.0" and env["MLOPS_SERVE_PORT"] == "8100"
    annotations = by_kind(rendered())["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8100"
    assert "envFrom" not in c


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
        **SERVICE_ENV,
        "MLOPS_PREDICTION_LOG_URL": "postgresql+psycopg2://mlops:s3cret@postgres/mlops",
        "MLOPS_REDIS_URL": "redis://:hunter2@redis:6379/0",
        "MLOPS_SERVE_MODEL_NAME": "from-dot-env",
    }
    docs = rendered(env, secret=["MLOPS_SERVE_MODEL_NAME", "NOT_IN_THE_ENV"])
    text = manifests_yaml(docs)
    assert "s3cret" not in text and "hunter2" not in text and "from-dot-env" not in text
    keys = ["MLOPS_PREDICTION_LOG_URL", "MLOPS_REDIS_URL", "MLOPS_SERVE_MODEL_NAME"]
    annotations = by_kind(docs)["Deployment"]["metadata"]["annotations"]
    assert annotations == {SECRET_KEYS_ANNOTATION: ",".join(keys)}
    assert service_secret_keys(env, ["MLOPS_SERVE_MODEL_NAME", "NOT_IN_THE_ENV"]) == keys
    assert credentialed(env) == ["MLOPS_PREDICTION_LOG_URL", "MLOPS_REDIS_URL"]
    names = [e["name"] for e in container_env({"A": "x", "B": "https://u:p@h/", "C": "y"}, ["C"])]
    assert names == ["A"]


def test_the_training_pods_secret_holds_the_object_store_keys_too():
    env = {**PROD, "MLOPS_PREDICTION_LOG_URL": "postgresql+psycopg2://mlops:s3cret@postgres/mlops"}
    assert secret_keys(workload_env(load_settings(env))) == [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "MLOPS_PREDICTION_LOG_URL",
    ]


def test_the_pods_never_get_the_alert_webhook():
    """Its URL is the webhook's secret, and alerts are sent by Airflow's callbacks."""
    env = {**PROD, "MLOPS_ALERT_WEBHOOK_URL": "https://hooks.example.com/services/secret"}
    assert "MLOPS_ALERT_WEBHOOK_URL" not in workload_env(load_settings(env))


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
        (lambda: ClusterTarget("img:1", namespace="Fraud_NS"), "namespace must be a DNS label"),
        (lambda: Resources("half", "1Gi", "1", "2Gi"), "cpu_request must be a quantity"),
        (lambda: rendered(replicas=-1), r"replicas must be in \[0, 100\]"),
        (lambda: rendered({**PROD, "MLOPS_SERVE_PORT": "0"}), "MLOPS_SERVE_PORT must be a TCP"),
        (lambda: rendered({**PROD, "MLOPS_DATA_ROOT": "/d"}), "MLOPS_DATA_ROOT must be an s3"),
    ],
)
def test_impossible_parameters_are_refused_before_rendering(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_the_pod_starts_the_service_as_the_compose_file_does():
    compose = yaml.safe_load((Path(__file__).parents[3] / "docker-compose.yaml").read_text())
    service = compose["services"][MODEL_SERVICE]
    docs = service_manifests(service_environment(MODEL_SERVICE, {}), TARGET)
    c = container(docs)
    assert c["args"] == service["command"]
    assert c["ports"][0]["containerPort"] == int(service["environment"]["MLOPS_SERVE_PORT"])
    assert service["healthcheck"]["test"][-1].endswith("/health")  # readiness there too
