"""The compose blocks as data: interpolated as compose does, and compared variable by variable."""

from __future__ import annotations

import pytest

from mlops.manifests.environment import (
    MODEL_SERVICE,
    differences,
    interpolate,
    interpolated_names,
)


def test_variables_are_interpolated_as_compose_does():
    value = "a=${A} b=${B:-dflt} c=${C:-dflt} $$HOME"
    assert interpolate(value, {"A": "1", "C": "3"}) == "a=1 b=dflt c=3 $HOME"
    with pytest.raises(KeyError, match="D is required: set D"):
        interpolate("${D:?set D}", {})


def test_the_service_takes_exactly_its_database_urls_and_its_token_from_dot_env():
    names = ["MLOPS_FEAST_REGISTRY", "MLOPS_PREDICTION_LOG_URL", "MLOPS_SERVE_TOKEN"]
    assert interpolated_names(MODEL_SERVICE) == names


def test_differences_name_each_missing_added_and_changed_variable():
    expected = {"SAME": "1", "GONE": "2", "MOVED": "http://mlflow:5000"}
    actual = {"SAME": "1", "MOVED": "http://127.0.0.1:5000", "NEW": "3"}
    assert differences(expected, actual) == [
        "GONE: missing (expected '2')",
        "MOVED: expected 'http://mlflow:5000', got 'http://127.0.0.1:5000'",
        "NEW: not expected (set to '3')",
    ]
    assert differences(expected, actual, allowed={"GONE", "MOVED", "NEW"}) == []
    assert differences(expected, dict(expected)) == []


def test_differences_never_print_a_password():
    expected = {"URL": "postgresql://u:s3cret@postgres/db", "LOG": "postgresql://u:pw@pg/x"}
    actual = {"URL": "postgresql://u:other@postgres/db"}
    found = differences(expected, actual)
    assert found == [
        "LOG: missing (expected 'postgresql://u:***@pg/x')",
        "URL: another password in 'postgresql://u:***@postgres/db'",
    ]
