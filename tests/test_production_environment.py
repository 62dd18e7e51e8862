"""One production environment: docker-compose.yaml's ``environment:`` blocks are the definition,
and ``make e2e-prod`` (``demo.production_stack``) and the Kubernetes manifests
(``deploy/k8s/model-service.yaml``) hand each component the same variables with the same values.

Offline: the harness only picks free ports when it is built, and the manifests are read as
files. Every comparison goes through ``mlops.manifests.environment.differences``, and the last
tests show it failing on a compose file that one side does not follow.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from demo.e2e_prod import arguments, world_of
from demo.production_stack import HOST_ONLY, PROCESS_BASICS, ProductionStack
from mlops.manifests.cli import SERVICE_SECRET
from mlops.manifests.environment import (
    AIRFLOW_SERVICE,
    COMPOSE_FILE,
    MLFLOW_SERVICE,
    MODEL_SERVICE,
    compose_services,
    differences,
    relocated_environment,
    service_environment,
)
from mlops.manifests.kubernetes import (
    SECRET_KEYS_ANNOTATION,
    ClusterTarget,
    credentialed,
    secret_keys,
    workload_env,
)
from mlops.secrets import AIRFLOW_REQUIRED, refused
from mlops.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "deploy" / "k8s" / "model-service.yaml"
LOG, REGISTRY = "MLOPS_PREDICTION_LOG_URL", "MLOPS_FEAST_REGISTRY"
# The simulated world's settings, as the e2e driver hands them to the Airflow components.
WORLD = world_of(arguments([]))[1]
# The model service's listening address is the manifest's own: every interface of the pod
# (its loopback is unreachable from the Service), on the container's port.
LISTENING = {"MLOPS_SERVE_HOST", "MLOPS_SERVE_PORT"}
# Every .env variable of the compose file, each with a value of its own: two variables that
# happen to share a default cannot pass for one.
SENTINELS = {
    name: f"sentinel-{name.lower()}"
    for name in re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text(encoding="utf-8"))
}
# What each compose service is in the harness: the Airflow components share one block.
PROCESSES = [
    *((AIRFLOW_SERVICE, component) for component in ProductionStack.components),
    (MLFLOW_SERVICE, None),
    (MODEL_SERVICE, None),
]
PROCESS_IDS = [component or service for service, component in PROCESSES]
AIRFLOW_SERVICES = sorted(name for name in compose_services() if name.startswith("airflow-"))
BUCKET_SCHEMES = ("s3", "s3a", "gs", "file")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> ProductionStack:
    return ProductionStack(tmp_path_factory.mktemp("stack"), world=WORLD)


def process_env(stack: ProductionStack, service: str, component: str | None) -> dict[str, str]:
    """The environment the harness starts the process with."""
    return stack.component_env(component) if component else stack.service_env(service)


def harness_differences(
    stack: ProductionStack, service: str, component: str | None, compose: Path = COMPOSE_FILE
) -> list[str]:
    """The process's environment against its compose block, relocated to this host: equal but
    for what ``HOST_ONLY`` lists and the process basics; the world's settings on top of the
    Airflow block (never instead of a compose value)."""
    block = relocated_environment(service, stack.variables, stack.endpoints(), compose)
    world = stack.world if service == AIRFLOW_SERVICE else {}
    allowed = {*HOST_ONLY[service], *PROCESS_BASICS}
    return differences({**world, **block}, process_env(stack, service, component), allowed)


def manifest() -> tuple[dict[str, str], list[str], dict]:
    """The checked-in model-service manifest: its container's env, the Secret's keys, the
    container."""
    deployment = next(
        d for d in yaml.safe_load_all(MANIFEST.read_text()) if d["kind"] == "Deployment"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    secret = deployment["metadata"]["annotations"][SECRET_KEYS_ANNOTATION].split(",")
    return env, secret, container


def secret_refs(container: dict) -> dict[str, dict]:
    """The container's variables taken from a Secret, one key each."""
    return {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in container["env"]
        if "valueFrom" in item
    }


def manifest_differences(compose: Path = COMPOSE_FILE) -> list[str]:
    """The manifest against the compose block (variables unset, as the renderer reads it): the
    Secret's keys stand for their values; the listening address is the manifest's."""
    env, secret, _ = manifest()
    block = service_environment(MODEL_SERVICE, {}, compose)
    from_secret = {name: block[name] for name in secret if name in block}
    return differences(block, {**env, **from_secret}, LISTENING) + [
        f"{name}: in the Secret, not in compose" for name in secret if name not in block
    ]


# ---------------------------------------------------------------- a. compose and the harness
@pytest.mark.parametrize(("service", "component"), PROCESSES, ids=PROCESS_IDS)
def test_every_process_gets_its_compose_block_and_only_what_the_host_lists(
    stack, service, component
):
    assert harness_differences(stack, service, component) == []


@pytest.mark.parametrize(("service", "component"), PROCESSES, ids=PROCESS_IDS)
def test_what_the_host_adds_has_the_hosts_value(stack, service, component):
    host = stack.host_settings(service)
    assert set(host) <= set(HOST_ONLY[service]), "list the new host setting in HOST_ONLY"
    env = process_env(stack, service, component)
    assert {name: env.get(name) for name in host} == host


@pytest.mark.parametrize(("service", "component"), PROCESSES, ids=PROCESS_IDS)
def test_no_process_is_left_pointing_at_a_compose_host_name(stack, service, component):
    """A service name the harness forgot to relocate would resolve nowhere on this host."""
    names = set(compose_services())
    stale = {
        name: value
        for name, value in process_env(stack, service, component).items()
        for url in re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"',]+", value)
        if urlsplit(url).scheme not in BUCKET_SCHEMES and urlsplit(url).hostname in names
    }
    assert stale == {}


def test_every_host_only_variable_has_a_reason_and_is_set(stack):
    for service, reasons in HOST_ONLY.items():
        assert {name: reason for name, reason in reasons.items() if not reason.strip()} == {}
        ids = [(s, c) for s, c in PROCESSES if s == service]
        set_here = set().union(*(process_env(stack, s, c) for s, c in ids))
        assert sorted(set(reasons) - set_here) == [], f"stale HOST_ONLY[{service!r}] entries"


# ---------------------------------------------------------------- b. compose and the manifest
def test_the_manifest_carries_exactly_the_compose_model_service_block():
    assert manifest_differences() == []
    env, secret, container = manifest()
    assert set(env).isdisjoint(secret), "a Secret key in env would hide the Secret's value"
    assert sorted(env.keys() | set(secret)) == sorted(service_environment(MODEL_SERVICE, {}))
    assert env["MLOPS_SERVE_HOST"] == "0.0.0.0"
    assert env["MLOPS_SERVE_PORT"] == str(container["ports"][0]["containerPort"])


def test_every_value_with_a_password_is_the_secrets():
    _, secret, container = manifest()
    with_passwords = service_environment(MODEL_SERVICE, SENTINELS)
    assert set(credentialed(with_passwords)) <= set(secret)
    assert "envFrom" not in container  # only the keys it uses, not the whole Secret
    assert secret_refs(container) == {k: {"name": SERVICE_SECRET, "key": k} for k in secret}
    defaults = service_environment(MODEL_SERVICE, {})  # compose's default passwords
    text = MANIFEST.read_text()
    assert [name for name in credentialed(defaults) if defaults[name] in text] == []


# ---------------------------------------------------------------- c. one log, one registry
@pytest.mark.parametrize("name", [LOG, REGISTRY])
def test_one_url_for_the_service_and_every_airflow_component_in_compose(name):
    values = {
        service: service_environment(service, SENTINELS).get(name)
        for service in [*AIRFLOW_SERVICES, MODEL_SERVICE]
    }
    assert len(AIRFLOW_SERVICES) >= 6 and None not in values.values(), values
    assert len(set(values.values())) == 1, values


@pytest.mark.parametrize("name", [LOG, REGISTRY])
def test_one_url_for_the_service_and_every_airflow_component_in_the_harness(stack, name):
    values = {
        component or service: process_env(stack, service, component).get(name)
        for service, component in PROCESSES
        if service != MLFLOW_SERVICE
    }
    assert None not in values.values(), values
    assert len(set(values.values())) == 1, values


@pytest.mark.parametrize("name", [LOG, REGISTRY])
def test_one_secret_key_for_the_service_and_the_training_pods_in_the_manifests(name):
    env, secret, _ = manifest()
    assert name in secret and name not in env
    airflow = service_environment(AIRFLOW_SERVICE, SENTINELS)
    assert name in secret_keys(workload_env(load_settings(airflow)))


# ---------------------------------------------------------------- d. the service's share
def airflow_secrets(variables: dict[str, str]) -> dict[str, str]:
    names = ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY")
    return {name: variables[name] for name in (*names, "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")}


def not_the_services(env: dict[str, str], secrets: dict[str, str]) -> list[str]:
    """AWS and Airflow variables, and any Airflow or object-store secret inside a value."""
    found = [name for name in env if name.startswith(("AWS_", "AIRFLOW"))]
    return found + [
        f"{name} holds {secret}"
        for name, value in env.items()
        for secret, text in secrets.items()
        if text in value
    ]


def test_the_service_gets_no_aws_or_airflow_variable_nor_their_secrets_in_compose():
    block = service_environment(MODEL_SERVICE, SENTINELS)
    assert not_the_services(block, airflow_secrets(SENTINELS)) == []


def test_the_service_gets_no_aws_or_airflow_variable_nor_their_secrets_in_the_harness(stack):
    env = stack.service_env(MODEL_SERVICE)
    assert not_the_services(env, airflow_secrets(stack.variables)) == []


def test_the_service_gets_no_aws_or_airflow_variable_nor_their_secrets_in_the_manifest():
    env, secret, _ = manifest()
    assert not_the_services({**env, **dict.fromkeys(secret, "")}, {}) == []
    text = MANIFEST.read_text()
    assert [word for word in ("AWS_", "AIRFLOW", "FERNET", "JWT") if word in text] == []
    # the training pods' Secret holds the object-store keys: the service reads another one
    assert SERVICE_SECRET != ClusterTarget("any-image:1").secret_name


@pytest.mark.parametrize(("service", "component"), PROCESSES, ids=PROCESS_IDS)
def test_every_process_passes_the_secrets_check_that_it_runs_at_start(stack, service, component):
    """``make e2e-prod`` makes fresh secrets: the production profile's start-up check
    (``mlops.secrets``; Airflow runs it from the plugins folder) lets each process start."""
    env = process_env(stack, service, component)
    required = AIRFLOW_REQUIRED if service == AIRFLOW_SERVICE else ()
    assert refused(env, required) == []
    if service == AIRFLOW_SERVICE:
        assert env["MLOPS_PROFILE"] == "production"
        plugins = Path(env["AIRFLOW__CORE__PLUGINS_FOLDER"])
        assert (plugins / "airflow_local_settings.py").is_file()


# ---------------------------------------------------------------- e. the checks can fail
def compose_with(tmp_path: Path, after: str, line: str) -> Path:
    """A copy of the compose file with ``line`` inserted after the one line ``after``."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert text.count(after) == 1, after
    path = tmp_path / "docker-compose.yaml"
    path.write_text(text.replace(after, after + line), encoding="utf-8")
    return path


AIRFLOW_LINE = '\n    GX_ANALYTICS_ENABLED: "false"\n'  # in x-airflow-common only
SERVICE_LINE = '\n      OMP_NUM_THREADS: "1"\n'  # in the model-service block only


def test_a_variable_the_harness_forgets_is_reported(stack, tmp_path):
    compose = compose_with(tmp_path, AIRFLOW_LINE, '    MLOPS_ONLY_IN_COMPOSE: "on"\n')
    for component in ProductionStack.components:
        problems = harness_differences(stack, AIRFLOW_SERVICE, component, compose)
        assert problems == ["MLOPS_ONLY_IN_COMPOSE: missing (expected 'on')"], component
    assert harness_differences(stack, MODEL_SERVICE, None, compose) == []


def test_a_compose_value_the_harness_changes_or_a_setting_it_adds_is_reported(stack, tmp_path):
    compose = compose_with(tmp_path, AIRFLOW_LINE, '    MLOPS_SENSOR_POKE_S: "30"\n')
    problems = harness_differences(stack, AIRFLOW_SERVICE, "scheduler", compose)
    assert problems == ["MLOPS_SENSOR_POKE_S: expected '30', got '0.25'"]  # the world won
    compose = compose_with(tmp_path, SERVICE_LINE, "      MLOPS_SERVE_MODEL_NAME: other\n")
    problems = harness_differences(stack, MODEL_SERVICE, None, compose)
    assert problems == ["MLOPS_SERVE_MODEL_NAME: missing (expected 'other')"]


def test_a_variable_the_manifest_forgets_is_reported(tmp_path):
    compose = compose_with(tmp_path, SERVICE_LINE, "      MLOPS_SERVE_MODEL_NAME: other\n")
    assert manifest_differences(compose) == ["MLOPS_SERVE_MODEL_NAME: missing (expected 'other')"]
    compose = compose_with(tmp_path, SERVICE_LINE, "      MLOPS_OTHER_TOKEN: ${TOKEN:-dev}\n")
    assert manifest_differences(compose) == ["MLOPS_OTHER_TOKEN: missing (expected 'dev')"]
