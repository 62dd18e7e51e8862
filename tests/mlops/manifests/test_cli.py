"""``python -m mlops.manifests``: the compose model-service block alone, with every .env
variable unset, validated, written atomically; the manifests in deploy/k8s/ are its rendering."""

from __future__ import annotations

from pathlib import Path

import yaml

from mlops.manifests.cli import MANIFEST_FILE, main
from mlops.manifests.environment import COMPOSE_FILE, MODEL_SERVICE

REPO = Path(__file__).resolve().parents[3]
IMAGE = "mlops-fraud-airflow:0.1.0"  # the Makefile's K8S_IMAGE default: the project's version


def compose_copy(tmp_path: Path, **environment: str) -> Path:
    """The project's compose file with the model service's block updated by ``environment``."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    compose["services"][MODEL_SERVICE]["environment"].update(environment)
    path = tmp_path / "docker-compose.yaml"
    path.write_text(yaml.safe_dump(compose), encoding="utf-8")
    return path


def rendered_container(path: Path) -> dict:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "NetworkPolicy"]
    return docs[0]["spec"]["template"]["spec"]["containers"][0]


def test_renders_the_compose_block_alone_with_the_variables_unset(tmp_path, monkeypatch, capsys):
    for name, value in {"POSTGRES_PASSWORD": "from-the-shell", "MLOPS_TOKEN": "t0ken"}.items():
        monkeypatch.setenv(name, value)
    compose = compose_copy(
        tmp_path,
        MLOPS_DATA_ROOT="s3://lake/data",
        MLOPS_SERVE_TOKEN="${MLOPS_TOKEN:-dev-token}",  # from .env: the Secret's, default or not
    )
    out = tmp_path / "out"
    args = ["--compose-file", str(compose), "--image", "img:7", "--secret", "svc", "--out"]
    assert main([*args, str(out)]) == 0
    text = (out / MANIFEST_FILE).read_text()
    container = rendered_container(out / MANIFEST_FILE)
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert env["MLOPS_DATA_ROOT"] == "s3://lake/data"
    assert env["MLOPS_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert not {"MLOPS_PREDICTION_LOG_URL", "MLOPS_FEAST_REGISTRY", "MLOPS_SERVE_TOKEN"} & set(env)
    for leak in ("from-the-shell", "t0ken", "dev-token", ":airflow@"):  # shell nor defaults
        assert leak not in text, leak
    assert "envFrom" not in container  # the whole Secret: every key, present and future
    keys = ["MLOPS_FEAST_REGISTRY", "MLOPS_PREDICTION_LOG_URL", "MLOPS_SERVE_TOKEN"]
    refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    assert refs == [{"name": "svc", "key": key} for key in keys]  # one key at a time
    assert f"Secret mlops/svc must hold: {', '.join(keys)}\n" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_FILE]


def test_a_url_with_a_password_written_in_the_block_goes_to_the_secret(tmp_path, capsys):
    compose = compose_copy(tmp_path, MLOPS_REDIS_URL="redis://:hunter2@redis:6379/0")
    argv = ["--compose-file", str(compose), "--image", "img:7", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert "hunter2" not in (tmp_path / MANIFEST_FILE).read_text()
    assert "MLOPS_REDIS_URL" in capsys.readouterr().out.rsplit("must hold:", 1)[1]


def test_bad_settings_write_nothing_and_say_why(tmp_path, capsys):
    compose = compose_copy(tmp_path, MLOPS_DATA_ROOT="/not/s3")
    out = tmp_path / "out"
    argv = ["--compose-file", str(compose), "--image", "img:7", "--out", str(out)]
    assert main(argv) == 2
    assert "MLOPS_DATA_ROOT must be an s3:// URI" in capsys.readouterr().err
    assert not out.exists()


def test_a_variable_the_block_requires_is_refused_naming_it(tmp_path, capsys):
    compose = compose_copy(tmp_path, MLOPS_SERVE_TOKEN="${MLOPS_TOKEN:?set it in .env}")
    out = tmp_path / "out"
    argv = ["--compose-file", str(compose), "--image", "img:7", "--out", str(out)]
    assert main(argv) == 2
    assert "MLOPS_TOKEN is required: set it in .env" in capsys.readouterr().err
    assert not out.exists()


def test_the_checked_in_manifests_are_the_rendering_of_the_compose_file(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTGRES_PASSWORD", "from-the-shell")  # as any shell might have
    assert main(["--image", IMAGE, "--out", str(tmp_path)]) == 0
    fresh = (tmp_path / MANIFEST_FILE).read_text()
    assert fresh == (REPO / "deploy" / "k8s" / MANIFEST_FILE).read_text(), (
        "deploy/k8s/ is stale: run `make k8s-manifests`"
    )
