"""The production profile refuses secrets that anyone can read in this repository: the
placeholders of .env.example, compose's default passwords, the values .env.example once
shipped, and empty secrets; each refused variable is named, its value never printed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from demo.production_stack import compose_variables
from mlops.manifests.environment import (
    _VARIABLE,
    AIRFLOW_SERVICE,
    COMPOSE_FILE,
    MODEL_SERVICE,
    service_environment,
)
from mlops.secrets import (
    AIRFLOW_REQUIRED,
    EXAMPLE_VALUES,
    SecretsError,
    check_secrets,
    is_example,
    refused,
)

REPO = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$")


def dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


EXAMPLE = dotenv(REPO / ".env.example")
# What compose needs even with an empty .env (``${VAR:?...}``), given fresh values here.
FRESH_REQUIRED = {
    name: value for name, value in compose_variables().items() if name.startswith("AIRFLOW_")
}


def production(block: dict[str, str]) -> dict[str, str]:
    assert block["MLOPS_PROFILE"] == "production"
    return block


def refused_names(env: dict[str, str], required=()) -> set[str]:
    return {line.split(" ", 1)[0] for line in refused(env, required)}


def test_every_secret_in_env_example_is_a_refused_placeholder():
    secrets = {name: value for name, value in EXAMPLE.items() if SECRET_NAME.search(name)}
    assert len(secrets) >= 7, secrets
    assert [name for name, value in secrets.items() if not is_example(value)] == []


def test_every_default_password_of_the_compose_file_is_an_example_value():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    defaults = {(name, default) for name, op, default in _VARIABLE.findall(text) if op == "-"}
    secret_defaults = {(n, d) for n, d in defaults if SECRET_NAME.search(n)}
    assert secret_defaults, "compose has no default password any more: tidy this test"
    # an empty default (MODEL_SERVICE_TOKEN's) is refused as empty
    assert {(n, d) for n, d in secret_defaults if d and d not in EXAMPLE_VALUES} == set()


@pytest.mark.parametrize("service", [AIRFLOW_SERVICE, MODEL_SERVICE])
def test_the_compose_blocks_with_env_example_as_env_are_refused(service):
    env = production(service_environment(service, EXAMPLE))
    with pytest.raises(SecretsError, match="MLOPS_PREDICTION_LOG_URL has an example value"):
        check_secrets(env)
    for value in EXAMPLE.values():
        if is_example(value):
            assert value not in str(refused(env)), "a refusal printed the secret"


def test_every_airflow_secret_from_env_example_is_named():
    env = production(service_environment(AIRFLOW_SERVICE, EXAMPLE))
    assert {
        *AIRFLOW_REQUIRED,
        "AWS_SECRET_ACCESS_KEY",
        "AIRFLOW_CONN_AWS_DEFAULT",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "MLOPS_FEAST_REGISTRY",
    } <= refused_names(env, AIRFLOW_REQUIRED)


def test_the_model_service_token_is_refused_as_a_placeholder_or_left_empty():
    placeholder = production(service_environment(MODEL_SERVICE, EXAMPLE))
    assert EXAMPLE["MODEL_SERVICE_TOKEN"] == "change-me-model-service-token"
    assert "MLOPS_SERVE_TOKEN has an example value (from .env.example or a default)" in (
        refused(placeholder)
    )
    unset = production(service_environment(MODEL_SERVICE, {}))
    assert "MLOPS_SERVE_TOKEN is empty" in refused(unset)
    fresh = production(service_environment(MODEL_SERVICE, compose_variables()))
    assert "MLOPS_SERVE_TOKEN" not in refused_names(fresh) and fresh["MLOPS_SERVE_TOKEN"]


def test_compose_default_passwords_are_refused_when_env_leaves_them_out():
    env = production(service_environment(AIRFLOW_SERVICE, FRESH_REQUIRED))
    names = refused_names(env, AIRFLOW_REQUIRED)
    assert {
        "AWS_SECRET_ACCESS_KEY",
        "AIRFLOW_CONN_AWS_DEFAULT",
        "MLOPS_PREDICTION_LOG_URL",
    } <= names
    assert (
        "MLOPS_PREDICTION_LOG_URL holds an example password (from .env.example or a default)"
        in (refused(env))
    )
    assert names.isdisjoint(AIRFLOW_REQUIRED)  # those were fresh


@pytest.mark.parametrize("service", [AIRFLOW_SERVICE, MODEL_SERVICE])
def test_fresh_secrets_pass(service):
    """As the e2e harness makes them (its host's PostgreSQL and RabbitMQ accounts)."""
    env = production(service_environment(service, compose_variables()))
    check_secrets(env, AIRFLOW_REQUIRED if service == AIRFLOW_SERVICE else ())


def test_the_fernet_key_env_example_once_shipped_is_refused():
    env = {
        "MLOPS_PROFILE": "production",
        "AIRFLOW__CORE__FERNET_KEY": "2nzzY2jHq4z_LVqY0yQk6vvyJbq9Kl5SGQp0uH1B5iA=",
    }
    with pytest.raises(SecretsError, match="AIRFLOW__CORE__FERNET_KEY has an example value"):
        check_secrets(env)


def test_an_empty_or_missing_secret_is_refused():
    env = {"MLOPS_PROFILE": "production", "AIRFLOW__API_AUTH__JWT_SECRET": " ", "X_TOKEN": ""}
    problems = refused(env, AIRFLOW_REQUIRED)
    assert "AIRFLOW__API_AUTH__JWT_SECRET is empty" in problems
    assert "X_TOKEN is empty" in problems
    assert "AIRFLOW__CORE__FERNET_KEY is not set" in problems
    assert refused({"PATH": "", "MLOPS_S3_ENDPOINT_URL": "http://minio:9000"}) == []


def test_other_profiles_are_not_checked():
    env = {"AIRFLOW__CORE__FERNET_KEY": "change-me-fernet-key"}
    check_secrets({**env, "MLOPS_PROFILE": "local"}, AIRFLOW_REQUIRED)
    check_secrets(env, AIRFLOW_REQUIRED)  # local is the default
    with pytest.raises(SecretsError, match="AIRFLOW__CORE__FERNET_KEY has an example value"):
        check_secrets({**env, "MLOPS_PROFILE": "Production"})


def test_dot_env_is_ignored_by_git():
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", ".env"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == ".env", result
