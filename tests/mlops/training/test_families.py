"""The model families module: light enough for parse time, and the one list of families."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mlops.training.families import DEFAULT_FAMILY, DEFAULT_PARAMS, FAMILIES, validate_params

HEAVY = ("numpy", "pandas", "sklearn", "scipy")

_PROBE = """
import json, sys
import mlops.training.families, mlops_airflow.parse_time
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))))
"""


def test_families_and_the_parse_time_module_import_no_numeric_library():
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *HEAVY], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []


def test_the_parse_time_choices_are_the_families():
    from mlops_airflow.parse_time import DEFAULT_MODEL_FAMILY, MODEL_FAMILIES

    assert MODEL_FAMILIES == list(FAMILIES) == list(DEFAULT_PARAMS)
    assert DEFAULT_MODEL_FAMILY == DEFAULT_FAMILY


def test_numpy_numbers_pass_as_numbers():
    params = validate_params("random_forest", {"n_estimators": np.int64(5), "max_samples": 0.5})
    assert params["n_estimators"] == 5
    assert validate_params("logistic_regression", {"C": np.float32(0.1)})["C"] == np.float32(0.1)
    with pytest.raises(ValueError, match=r"invalid random_forest hyperparameters: n_estimators"):
        validate_params("random_forest", {"n_estimators": np.float64(5.5)})
