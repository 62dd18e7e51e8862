"""``python -m mlops.training``: the DAG's Params as options, the same request, clear refusals."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from mlops.io.storage import S3_CLIENT_CONFIG
from mlops.settings import load_settings
from mlops.training.cli import main, parser, storage_options_from_env, training_request


def request_of(argv, env=None):
    return training_request(parser().parse_args(argv), load_settings(env or {}))


def test_defaults_are_the_dags_param_defaults():
    request = request_of(["--as-of", "2018-08-01"])
    assert request.as_of == date(2018, 8, 1)
    assert (request.window_days, request.eval_days, request.seed) == (21, 7, 0)
    assert request.family == "hgb_lr_stack"
    assert (request.force_review, request.allow_unsettled_features, request.reason) == (
        False,
        False,
        "",
    )


def test_every_option_reaches_the_request():
    request = request_of(
        [
            "--as-of=2018-09-03",
            "--window-days=28",
            "--eval-days=10",
            "--family=random_forest",
            '--hyperparameters={"n_estimators": 50}',
            "--seed=4",
            "--force-review",
            "--allow-unsettled-features",
            "--reason=drift alarm",
        ],
        {"MLOPS_LABEL_DELAY_DAYS": "5"},
    )
    assert request.as_of == date(2018, 9, 3)
    assert (request.window_days, request.eval_days, request.delay_days) == (28, 10, 5)
    assert request.family == "random_forest" and request.params["n_estimators"] == 50
    assert request.seed == 4 and request.force_review and request.allow_unsettled_features
    assert request.reason == "drift alarm"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--as-of", "2018-13-01"], "--as-of: invalid fromisoformat value"),
        (["--as-of", "2018-08-01", "--family", "xgboost"], "--family: invalid choice"),
        (["--as-of", "2018-08-01", "--hyperparameters", "[1]"], "expected a JSON object"),
        (["--as-of", "2018-08-01", "--hyperparameters", "{x"], "not JSON"),
        ([], "the following arguments are required: --as-of"),
    ],
)
def test_bad_options_exit_2_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit, match="2"):
        parser().parse_args(argv)
    assert message in capsys.readouterr().err


def test_an_impossible_window_is_refused_before_any_work(capsys):
    assert main(["--as-of", "2018-08-01", "--window-days", "14"]) == 2
    assert "bad request: window_days=14 leaves 0 training days" in capsys.readouterr().err


def test_missing_data_exits_2_saying_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(tmp_path))
    assert main(["--as-of", "2018-08-01"]) == 2
    assert "data not ready" in capsys.readouterr().err


def test_s3_options_come_from_the_aws_variables_and_the_settings_endpoint():
    settings = load_settings(
        {
            "MLOPS_PROFILE": "production",
            "MLOPS_DATA_ROOT": "s3://lake/data",
            "MLOPS_S3_ENDPOINT_URL": "http://minio:9000",
        }
    )
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "r"}
    assert storage_options_from_env(settings, env) == {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"endpoint_url": "http://minio:9000", "region_name": "r"},
        "config_kwargs": S3_CLIENT_CONFIG,
    }
    assert storage_options_from_env(load_settings({}), env) == {}


def test_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "mlops.training", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "--as-of" in done.stdout
