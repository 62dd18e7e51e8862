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
