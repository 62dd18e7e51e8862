"""The service's process set-up, checked in a fresh interpreter (both act process-wide)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from mlops.serving.startup import cap_native_threads, skip_mlflow_header_plugins
first = skip_mlflow_header_plugins()
again = skip_mlflow_header_plugins()
from mlflow.tracking.request_header.registry import _request_header_provider_registry as reg
cap_native_threads(1)
from threadpoolctl import threadpool_info
openmp = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]
print(json.dumps({"first": first, "again": again, "feast": "feast" in sys.modules,
                  "providers": sorted(type(p).__name__ for p in reg), "openmp": openmp}))
"""


def test_mlflow_headers_come_without_feast_and_openmp_runs_one_thread():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600, check=True
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert (probe["first"], probe["again"], probe["feast"]) == (True, False, False)
    assert probe["providers"] == ["DatabricksRequestHeaderProvider", "DefaultRequestHeaderProvider"]
    assert probe["openmp"] and set(probe["openmp"]) == {1}


def service_start(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m mlops.serving.app`` as the container starts it, on ``env`` alone."""
    import os

    basics = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return subprocess.run(
        [sys.executable, "-m", "mlops.serving.app"],
        env={**basics, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_service_refuses_to_start_on_an_example_password_naming_the_variable():
    """Before it loads anything: nothing listens, the value is not printed."""
    from mlops.manifests.environment import MODEL_SERVICE, service_environment

    env = service_environment(MODEL_SERVICE, {"POSTGRES_PASSWORD": "change-me-postgres-password"})
    done = service_start(env)
    assert done.returncode == 1, done
    assert "model service: refusing to start the production profile" in done.stderr
    assert "MLOPS_PREDICTION_LOG_URL has an example value" in done.stderr
    assert "MLOPS_FEAST_REGISTRY has an example value" in done.stderr
    assert "change-me-postgres-password" not in done.stderr + done.stdout


def test_the_service_turns_off_mlflow_s_unpickling_before_anything_loads(monkeypatch):
    import ast
    import inspect

    from mlops.serving import app, startup

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")  # a stray setting
    startup.refuse_pickle()
    from mlflow.environment_variables import MLFLOW_ALLOW_PICKLE_DESERIALIZATION

    assert MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get() is False
    calls = [
        node.func.id
        for node in ast.walk(ast.parse(inspect.getsource(app.main)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    ]
    assert calls.index("refuse_pickle") < calls.index("create_app")
    assert calls.index("refuse_pickle") < calls.index("LoaderProcess")  # it inherits the setting


def test_the_service_refuses_to_start_without_a_token_of_its_own(tmp_path):
    """Any profile: no default token exists; a short one or a placeholder is refused too."""
    for token in ("", "too-short", "change-me-model-service-token"):
        env = {"MLOPS_DATA_ROOT": str(tmp_path), "MLOPS_SERVE_TOKEN": token}
        done = service_start(env)
        assert done.returncode == 1, done
        assert "model service: a bearer token of at least 16 characters is required" in (
            done.stderr
        )
        assert "set MLOPS_SERVE_TOKEN or MLOPS_SERVE_TOKEN_FILE" in done.stderr
        assert not token or token not in done.stderr + done.stdout


def test_metric_values_stay_in_memory_when_a_parent_left_feasts_multiprocess_dir(tmp_path):
    script = f"""
import os
os.environ["PROMETHEUS_MULTIPROCESS_DIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}
from prometheus_client import values
assert values.ValueClass is not values.MutexValue  # what Feast's variable selects
from mlops.serving.metrics import service_metrics
from mlops.serving.startup import in_memory_metrics
in_memory_metrics()
metrics = service_metrics()
metrics.reloads.inc()
assert "PROMETHEUS_MULTIPROCESS_DIR" not in os.environ
print(type(metrics.reloads._value).__name__)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "MutexValue"
    assert not list(tmp_path.iterdir())  # no mmap'd value files
