"""MLflow's HTTP calls are bounded where the project talks to MLflow, and a value the user
set is kept: a tracking server that stops answering fails a call in seconds, not minutes."""

from __future__ import annotations

import time

import pytest

from mlops.registry.mlflow_http import HTTP_DEFAULTS, bound_http_calls
from mlops.registry.versions import tracking_scope
from mlops.rollout.live import registry_client
from tests.support.black_hole import black_hole


def test_defaults_fill_only_what_the_user_left_unset():
    env = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "7"}
    bound_http_calls(env)
    assert env == {"MLFLOW_HTTP_REQUEST_TIMEOUT": "7", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}
    empty: dict[str, str] = {}
    bound_http_calls(empty)
    assert empty == HTTP_DEFAULTS


def test_the_project_s_mlflow_entries_bound_mlflow_s_own_settings(monkeypatch, tmp_path):
    from mlflow.environment_variables import (
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    registry_client("http://127.0.0.1:5000")
    assert (MLFLOW_HTTP_REQUEST_TIMEOUT.get(), MLFLOW_HTTP_REQUEST_MAX_RETRIES.get()) == (30, 3)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "11")
    with tracking_scope(f"sqlite:///{tmp_path}/mlflow.db"):
        assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 11  # the user's value wins


def test_a_silent_tracking_server_fails_a_registry_call_within_the_timeout(monkeypatch):
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with black_hole() as port:
        client = registry_client(f"http://127.0.0.1:{port}")
        with pytest.raises(MlflowException, match="ReadTimeoutError"):
            client.get_registered_model("fraud_model")  # also imports MLflow's REST path
        began = time.perf_counter()
        with pytest.raises(MlflowException, match="ReadTimeoutError"):
            client.get_registered_model("fraud_model")
        assert 1 <= time.perf_counter() - began < 2
