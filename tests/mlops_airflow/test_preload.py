"""The scheduler's preload: off unless switched on, tolerant of stages not written yet, and
never loaded by plugin discovery where DAG files are parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_airflow.preload import MODULES, enabled, preload

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def test_the_switch_is_off_unless_set_to_a_true_word():
    assert not enabled({})
    assert not enabled({"MLOPS_PRELOAD": "0"})
    assert enabled({"MLOPS_PRELOAD": "1"})
    assert enabled({"MLOPS_PRELOAD": " True "})


def test_switched_off_it_imports_nothing():
    assert preload(("no_such_module_at_all",), {}) == {}


def test_switched_on_it_imports_and_skips_modules_that_do_not_exist_yet():
    seconds = preload(("json", "mlops.no_such_stage"), {"MLOPS_PRELOAD": "1"})
    assert list(seconds) == ["json"]


def test_a_missing_dependency_inside_an_existing_module_is_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "broken_stage.py").write_text("import no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency"):
        preload(("broken_stage",), {"MLOPS_PRELOAD": "1"})


def test_the_list_holds_the_heavy_libraries_the_tasks_import():
    assert {"pandas", "mlflow", "great_expectations", "feast", "evidently"} <= set(MODULES)
    # what a task imports on first use (S3, a model load): seconds each
    assert {"s3fs", "skops.io"} <= set(MODULES)


def test_plugin_discovery_without_the_switch_loads_nothing_heavy():
    """What the dag-processor and api-server do: load the plugins folder, nothing more."""
    script = textwrap.dedent(
        """
        import json, sys
        from airflow import plugins_manager
        plugins_manager.ensure_plugins_loaded()
        plugins, errors = plugins_manager._get_plugins()
        heavy = ["pandas", "sklearn", "mlflow", "great_expectations", "feast", "evidently"]
        print(json.dumps({"plugins": [p.name for p in plugins], "errors": errors,
                          "heavy": [m for m in heavy if m in sys.modules],
                          "package_as_plugin": "sensors" in sys.modules}))
        """
    )
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS), "MLOPS_PRELOAD": "0"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "plugins": ["mlops_preload"],
        "errors": {},
        "heavy": [],
        "package_as_plugin": False,  # plugins/.airflowignore keeps mlops_airflow/ a package
    }
