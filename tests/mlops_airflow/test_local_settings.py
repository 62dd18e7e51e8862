"""``plugins/airflow_local_settings.py``: every Airflow process of the production profile
refuses the example or empty secrets as it starts; other profiles are left alone."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

from mlops.secrets import AIRFLOW_REQUIRED

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow_version(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``airflow version`` on a fresh home with the project's plugins folder, on ``env``."""
    basics = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    base = {
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
    }
    return subprocess.run(
        [AIRFLOW, "version"],
        env={**basics, **base, **env}, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def fresh() -> dict[str, str]:
    values = {name: secrets.token_urlsafe(32) for name in AIRFLOW_REQUIRED}
    values["AIRFLOW__CORE__FERNET_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return values


def test_a_production_component_refuses_an_example_fernet_key_and_a_missing_secret(tmp_path):
    env = {**fresh(), "MLOPS_PROFILE": "production"}
    env["AIRFLOW__CORE__FERNET_KEY"] = "change-me-fernet-key"
    del env["AIRFLOW__API__SECRET_KEY"]
    done = airflow_version(tmp_path, env)
    assert done.returncode == 1, done
    assert "airflow: refusing to start the production profile" in done.stderr
    assert "AIRFLOW__CORE__FERNET_KEY has an example value" in done.stderr
    assert "AIRFLOW__API__SECRET_KEY is not set" in done.stderr
    assert "3.3.2" not in done.stdout


def test_fresh_secrets_or_the_local_profile_start(tmp_path):
    done = airflow_version(tmp_path, {**fresh(), "MLOPS_PROFILE": "production"})
    assert (done.returncode, done.stdout.strip()) == (0, "3.3.2"), done.stderr[-2000:]
    done = airflow_version(tmp_path, {"MLOPS_PROFILE": "local"})
    assert (done.returncode, done.stdout.strip()) == (0, "3.3.2"), done.stderr[-2000:]
