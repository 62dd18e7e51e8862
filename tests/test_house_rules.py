"""House rules that neither import-linter nor ruff can say: modules stay small and are named
by what they do, and ruff's list of heavy modules names modules that exist.

The other house rules are contracts in pyproject.toml, shown to bite in test_contracts.py:
``mlops`` never imports Airflow (import-linter), DAG and plugin files import nothing heavy
at module level (ruff TID253), Airflow 3 paths only (ruff TID251).
"""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("dags", "plugins", "include", "feature_repo", "bench")
MAX_LINES = 400
GRAB_BAGS = {"utils", "helpers", "common", "misc", "stuff"}


def sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py"))


def test_modules_stay_small() -> None:
    """Past 400 lines a module holds more than one responsibility: split it by them."""
    lines = {str(p.relative_to(REPO)): p.read_text().count("\n") for p in sources()}
    assert {path: n for path, n in lines.items() if n > MAX_LINES} == {}


def test_no_grab_bag_names() -> None:
    """A module or package is named by what it does, never utils or helpers."""
    named = [p.relative_to(REPO) for p in sources()]
    assert [str(p) for p in named if GRAB_BAGS & {p.stem, *p.parts[:-1]}] == []


def test_heavy_modules_banned_at_module_level_are_module_names() -> None:
    """ruff matches these as module names: a requirement spec ("s3fs>=2025.1") bans nothing."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    names = config["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-module-level-imports"]
    assert [name for name in names if importlib.util.find_spec(name) is None] == []
