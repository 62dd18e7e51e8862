"""``python -m mlops.manifests``: settings from an env file only, validated, written atomically;
the manifests in deploy/k8s/ are the rendering of deploy/k8s.env."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.manifests.cli import MANIFEST_FILE, main, read_env_file
from mlops.settings import ConfigError

REPO = Path(__file__).resolve().parents[3]
IMAGE = "mlops-fraud-airflow:local"  # the Makefile's K8S_IMAGE default, as in the compose file


def test_writes_valid_manifests_from_the_env_file_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_REDIS_URL", "redis://from-the-shell:6379/0")
    env_file = tmp_path / "cluster.env"
    env_file.write_text(
        "# cluster\nMLOPS_PROFILE=production\nMLOPS_DATA_ROOT='s3://lake/data'\n\n"
        "MLOPS_PREDICTION_LOG_URL=postgresql+psycopg2://u:pw@pg/mlops\n"
    )
    assert main(["--env-file", str(env_file), "--image", "img:7", "--out", str(tmp_path)]) == 0
    docs = list(yaml.safe_load_all((tmp_path / MANIFEST_FILE).read_text()))
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    env = {
        e["name"]: e["value"] for e in docs[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MLOPS_DATA_ROOT"] == "s3://lake/data"
    assert env["MLOPS_REDIS_URL"] == "redis://127.0.0.1:6379/0"  # the shell did not leak in
    assert "MLOPS_PREDICTION_LOG_URL" not in env
    out = capsys.readouterr().out
    assert "must hold: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, MLOPS_PREDICTION_LOG_URL" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.env", MANIFEST_FILE]


def test_bad_settings_write_nothing_and_say_why(tmp_path, capsys):
    env_file = tmp_path / "cluster.env"
    env_file.write_text("MLOPS_PROFILE=production\nMLOPS_DATA_ROOT=/not/s3\n")
    out = tmp_path / "out"
    assert main(["--env-file", str(env_file), "--image", "img", "--out", str(out)]) == 2
    assert "MLOPS_DATA_ROOT must be an s3:// URI" in capsys.readouterr().err
    assert not out.exists()


def test_an_env_file_line_without_a_value_is_refused_naming_the_line(tmp_path):
    env_file = tmp_path / "cluster.env"
    env_file.write_text("MLOPS_PROFILE=production\nMLOPS_DATA_ROOT\n")
    with pytest.raises(ConfigError, match=r"cluster\.env:2: expected KEY=VALUE"):
        read_env_file(env_file)


def test_the_checked_in_manifests_are_the_rendering_of_the_checked_in_settings(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(REPO)  # as `make k8s-manifests` runs it, the header names deploy/k8s.env
    args = ["--env-file", "deploy/k8s.env", "--image", IMAGE]
    assert main([*args, "--out", str(tmp_path)]) == 0
    fresh = (tmp_path / MANIFEST_FILE).read_text()
    assert fresh == (REPO / "deploy" / "k8s" / MANIFEST_FILE).read_text(), (
        "deploy/k8s/ is stale: run `make k8s-manifests`"
    )
