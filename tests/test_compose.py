"""docker-compose.yaml is valid Compose and agrees with the Dockerfile, the README and Settings.

No Docker engine is needed: the file is checked against the Compose specification schema that
check-jsonschema vendors (offline), and its wiring is read as data.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from mlops.manifests.environment import _VARIABLE, _block, interpolate

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yaml"
AIRFLOW_IMAGE = "apache/airflow:3.3.2-python3.11"
# What the stack is for: losing any of these must fail, even if README and compose agree.
REQUIRED = {
    "postgres",
    "redis",
    "minio",
    "mlflow",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
PROJECT_MOUNTS = {"dags", "plugins", "include", "feature_repo"}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]


def check_compose_schema(path: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("check-jsonschema")
    argv = [str(exe), "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_compose_file_follows_the_compose_specification() -> None:
    done = check_compose_schema(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_check_rejects_a_misspelt_key(tmp_path: Path) -> None:
    broken = COMPOSE.read_text(encoding="utf-8").replace("healthcheck:", "helthcheck:", 1)
    (tmp_path / "docker-compose.yaml").write_text(broken, encoding="utf-8")
    done = check_compose_schema(tmp_path / "docker-compose.yaml")
    assert done.returncode == 1
    assert "$.services.postgres" in done.stdout and "'helthcheck' was unexpected" in done.stdout


def readme_services() -> set[str]:
    """Service names in the table of README's "Starting the production-like stack" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Starting the production-like stack", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE))


def mismatch(declared: Mapping, listed: set[str]) -> tuple[set[str], set[str]]:
    """(in compose but not in README, in README but not in compose)."""
    return set(declared) - listed, listed - set(declared)


def test_readme_lists_exactly_the_compose_services(services: dict) -> None:
    unlisted, phantom = mismatch(services, readme_services())
    assert not unlisted, f"add to the README's service table: {sorted(unlisted)}"
    assert not phantom, f"README lists services compose lacks: {sorted(phantom)}"


def test_the_stack_has_every_required_service(services: dict) -> None:
    assert REQUIRED <= set(services), sorted(REQUIRED - set(services))


def test_airflow_and_mlflow_run_the_image_built_from_dockerfile(services: dict) -> None:
    names = [n for n in services if n.startswith("airflow-")] + ["mlflow"]
    for name in names:
        build = services[name].get("build")
        assert build, f"{name} has no build section"
        assert (REPO / build["context"]).resolve() == REPO, name
        assert build["dockerfile"] == "Dockerfile", name
    assert len({services[n]["image"] for n in names}) == 1, "one image for all of them"


def test_dockerfile_extends_the_pinned_airflow_image() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE) == [AIRFLOW_IMAGE]
    pinned = re.search(r'"apache-airflow==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned and AIRFLOW_IMAGE.split(":")[1].startswith(pinned[1] + "-")
    assert f"apache-airflow=={pinned[1]}" in dockerfile, "the install step must pin Airflow"


def test_the_image_runs_as_a_non_root_user() -> None:
    """The last USER wins: every container of the image (and a pod's runAsNonRoot) runs as it."""
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users


@pytest.mark.parametrize("name", ["postgres", "redis", "airflow-apiserver", "mlflow", "minio"])
def test_service_has_a_healthcheck(services: dict, name: str) -> None:
    kind, *command = services[name]["healthcheck"]["test"]
    assert kind in ("CMD", "CMD-SHELL") and command, "['NONE'] or an empty test checks nothing"


def test_depends_on_conditions_can_be_met(services: dict) -> None:
    for name, svc in services.items():
        for dep, spec in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"
            elif condition == "service_completed_successfully":
                assert services[dep].get("restart", "no") == "no", f"{dep} must be one-shot"


def test_airflow_services_mount_the_project(services: dict) -> None:
    for name in (n for n in services if n.startswith("airflow-")):
        mounted = {
            v.split(":")[0].removeprefix("./") for v in services[name]["volumes"] if v[0] == "."
        }
        assert mounted == PROJECT_MOUNTS, name


def dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def test_env_example_defines_what_compose_requires_and_nothing_else() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    example = dotenv(REPO / ".env.example")
    required = {m[0] for m in _VARIABLE.findall(text) if m[1] == "?"}
    assert required and all(example.get(name) for name in required), required
    unused = set(example) - {m[0] for m in _VARIABLE.findall(text)}
    assert not unused, f".env.example sets variables compose never reads: {sorted(unused)}"


@pytest.fixture(scope="module")
def worker_env(services: dict) -> dict[str, str]:
    """The Airflow worker's environment as compose would hand it over with .env.example."""
    example = dotenv(REPO / ".env.example")
    env = services["airflow-worker"]["environment"]
    return {k: interpolate(str(v), example) for k, v in env.items()}


def test_tasks_in_the_stack_get_production_settings(worker_env: dict[str, str]) -> None:
    from mlops.settings import load_settings

    settings = load_settings(worker_env)
    assert settings.profile == "production"
    assert settings.data_root == "s3://mlops/data"
    assert urlsplit(settings.mlflow_tracking_uri).hostname == "mlflow"
    assert urlsplit(settings.s3_endpoint_url).hostname == "minio"


def test_the_broker_is_not_the_feast_redis(worker_env: dict) -> None:
    """Celery on RabbitMQ: the online store keeps Redis db 0 to itself (a Redis Cluster has
    no other database)."""
    broker = urlsplit(worker_env["AIRFLOW__CELERY__BROKER_URL"])
    online = urlsplit(worker_env["MLOPS_REDIS_URL"])
    assert (broker.scheme, broker.hostname) == ("amqp", "rabbitmq")
    assert (online.hostname, online.path) == ("redis", "/0")


def test_one_prediction_log_for_the_service_and_every_task(services: dict) -> None:
    example = dotenv(REPO / ".env.example")
    urls = {
        name: interpolate(str(svc["environment"].get("MLOPS_PREDICTION_LOG_URL", "")), example)
        for name, svc in services.items()
        if name.startswith("airflow-") or name == "model-service"
    }
    assert len(set(urls.values())) == 1 and all(urls.values()), urls


def test_workers_reach_the_execution_api_and_minio(services: dict, worker_env: dict) -> None:
    assert worker_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    api = urlsplit(worker_env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert api.hostname in services and api.path == "/execution/"
    connection = json.loads(worker_env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert connection["conn_type"] == "aws"
    assert urlsplit(connection["extra"]["endpoint_url"]).hostname in services


def test_no_process_that_loads_a_model_may_unpickle_one():
    """MLflow's loaders unpickle unless told not to: the Airflow services, the model service
    (compose, and so the harness and the manifests), the image and the Makefile say no."""
    refuse = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    for service in ("airflow-worker", "airflow-scheduler", "model-service"):
        env = _block(service, COMPOSE)
        assert env.get(refuse) == "false", service
    assert f"{refuse}=false" in (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert f"export {refuse} ?= false" in (REPO / "Makefile").read_text(encoding="utf-8")
    manifest = (REPO / "deploy" / "k8s" / "model-service.yaml").read_text(encoding="utf-8")
    assert f"- name: {refuse}\n          value: 'false'" in manifest


def test_alerts_go_to_the_webhook_of_dot_env_from_every_airflow_process(services: dict) -> None:
    """The worker (task failures, deadline callbacks) and the dag-processor (failed runs)
    both alert; the model service does not, and never sees the webhook's URL."""
    from mlops.settings import load_settings

    example = {**dotenv(REPO / ".env.example"), "MLOPS_ALERT_WEBHOOK_URL": "https://relay/hook"}
    for name, service in services.items():
        env = {k: interpolate(str(v), example) for k, v in service.get("environment", {}).items()}
        if name.startswith("airflow-"):
            assert load_settings(env).alert_webhook_url == "https://relay/hook", name
        else:
            assert "MLOPS_ALERT_WEBHOOK_URL" not in env, name
    assert dotenv(REPO / ".env.example")["MLOPS_ALERT_WEBHOOK_URL"] == ""  # unset by default
