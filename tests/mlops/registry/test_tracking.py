"""Tracking facts that need no MLflow database."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlops.registry.tracking import code_version

REPO = Path(__file__).resolve().parents[3]


def test_code_version_is_the_commit_of_the_source_tree() -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert code_version().removesuffix("+dirty") == f"git:{head}"
