"""Each import contract and each banned API fails on a deliberate violation.

The checks run on a copy of the source tree with one violating module per rule, so a rule
that stops biting (a renamed package, a contract that matches nothing) fails here, and the
report must name the violating import under the rule it breaks, not under another one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TREE = ("include", "plugins", "dags", "feature_repo")

# contract id -> (file to add, its text, the import the report must name under the contract)
VIOLATIONS = {
    "layers": ("include/mlops/io/bad_layer.py", "import mlops_airflow\n", "mlops_airflow"),
    "mlops-no-airflow": (
        "include/mlops/io/bad_airflow.py",
        "def task():\n    from airflow.sdk import dag\n",  # inside a function counts too
        "mlops.io.bad_airflow -> airflow",
    ),
    "feature-repo-alone": (
        "feature_repo/bad_feast.py",
        "from mlops.features.names import FEATURES\n",
        "feature_repo.bad_feast -> mlops.features.names",
    ),
    "acyclic": (
        "include/mlops/evaluation/bad_cycle.py",
        "from mlops.evaluation import bad_cycle_back\n",
        "bad_cycle",
    ),
    "stages": (
        "include/mlops/simulator/bad_stage.py",
        "import mlops.validation.messages\n",
        "mlops.simulator.bad_stage -> mlops.validation.messages",
    ),
    "registry-alone": (
        "include/mlops/registry/bad_registry.py",
        "from mlops.evaluation.metrics import Metrics\n",
        "mlops.registry.bad_registry -> mlops.evaluation.metrics",
    ),
    "serving-no-training": (
        "include/mlops/serving/bad_serving.py",
        "from mlops.training.estimators import predict_scores\n",
        "mlops.serving.bad_serving -> mlops.training.estimators",
    ),
    # the contract names one module, so its violation replaces that module in the copy
    "retraining-policy-pure": (
        "include/mlops/retraining/policy.py",
        "import numpy\n",
        "mlops.retraining.policy -> numpy",
    ),
}
CYCLE_BACK = (
    "include/mlops/evaluation/bad_cycle_back.py",
    "from mlops.evaluation import bad_cycle\n",
)


def contracts() -> list[dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def copy_tree(root: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in TREE:
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")


def write(root: Path, path: str, text: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)


def sections(report: str, names: dict[str, str]) -> dict[str, str]:
    """The ``Broken contracts`` part of the report, cut into one text per contract id."""
    broken = report.split("Broken contracts", 1)[1]
    starts = sorted((broken.index(f"\n{name}\n"), cid) for cid, name in names.items())
    ends = [start for start, _ in starts[1:]] + [len(broken)]
    return {cid: broken[start:end] for (start, cid), end in zip(starts, ends, strict=True)}


def test_every_contract_is_tested() -> None:
    assert {c["id"] for c in contracts()} == set(VIOLATIONS)


# serving and training are also independent layers of `stages`: the explicit contract says
# the rule by name, the layers say it among the others
ALSO_BROKEN = {"serving-no-training": {"stages"}}


def test_each_contract_fails_on_its_own_violation(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    for path, text, _ in VIOLATIONS.values():
        write(tmp_path, path, text)
    write(tmp_path, *CYCLE_BACK)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'include'}:{tmp_path / 'plugins'}"}
    done = subprocess.run(
        [BIN / "lint-imports", "--no-logo", "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = done.stdout
    names = {c["id"]: c["name"] for c in contracts()}
    assert done.returncode == 1, report + done.stderr
    assert f"Contracts: 0 kept, {len(names)} broken." in report
    found = sections(report, names)
    for cid, (_, _, named) in VIOLATIONS.items():
        assert named in found[cid], f"{cid}: {named!r} not in\n{found[cid]}"
    for cid, (path, _, _) in VIOLATIONS.items():  # and breaks no other contract
        module = Path(path).stem
        broken = {other for other, text in found.items() if module in text}
        assert broken == {cid} | ALSO_BROKEN.get(cid, set())


RUFF_PROBES = {
    # file -> (text, the codes and banned names ruff must report)
    "dags/probe.py": (
        "import pandas\n"
        "from airflow.decorators import task\n"
        "from airflow.models import DAG\n"
        "from airflow.operators.python import PythonOperator\n"
        "from airflow.sensors.base import BaseSensorOperator\n"
        "from airflow.models.baseoperator import BaseOperator\n"
        "print(pandas, task, DAG, PythonOperator, BaseSensorOperator, BaseOperator)\n",
        [
            "TID253 `pandas`",
            "TID251 `airflow.decorators`",
            "TID251 `airflow.models.DAG`",
            "TID251 `airflow.operators`",
            "TID251 `airflow.sensors`",
            "TID251 `airflow.models.baseoperator`",
        ],
    ),
    "plugins/mlops_airflow/probe.py": ("import s3fs\nprint(s3fs)\n", ["TID253 `s3fs`"]),
    "include/mlops/probe.py": (
        "import time\n"
        "from datetime import date, datetime\n"
        "import pandas\n"  # allowed at module level in the logic
        "print(datetime.now(), date.today(), time.time(), time.perf_counter(), pandas)\n",
        [
            "TID251 `datetime.datetime.now`",
            "TID251 `datetime.date.today`",
            "TID251 `time.time`",
        ],
    ),
}


@pytest.mark.parametrize("probe", sorted(RUFF_PROBES))
def test_ruff_bans_bite_where_they_apply(tmp_path: Path, probe: str) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    write(tmp_path, "include/ruff.toml", (REPO / "include/ruff.toml").read_text())
    text, expected = RUFF_PROBES[probe]
    write(tmp_path, probe, text)
    done = subprocess.run(
        [BIN / "ruff", "check", "--no-cache", "--select", "TID", "--output-format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    banned = re.compile(r"`[\w.]+`")
    found = sorted(
        f"{d['code']} {banned.search(d['message']).group()}" for d in json.loads(done.stdout)
    )
    assert found == sorted(expected), done.stdout + done.stderr
