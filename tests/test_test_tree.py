"""The test tree keeps its shape: tests mirror include/mlops, helpers live in tests/support.

A test module imported by another runs its tests' module-level code twice under two names and
ties two test files together; whatever both need belongs in a tests/support module.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
PACKAGE = REPO / "include" / "mlops"


def _imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, spelt as written (relative ones with their dots)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names.append(module)
            # ``from tests.mlops.features import test_store`` imports a module too
            names += [f"{module}.{a.name}" for a in node.names if a.name.startswith("test_")]
    return names


def test_no_test_module_imports_another_test_module():
    offenders = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted(TESTS.rglob("*.py"))
        for name in _imported_modules(path)
        if any(part.startswith("test_") for part in name.split("."))
    ]
    assert offenders == [], "move what is shared into tests/support/"


def test_helper_modules_are_not_collected_as_tests():
    assert sorted(p.name for p in (TESTS / "support").glob("test*.py")) == []


def test_every_tests_mlops_folder_mirrors_a_subpackage_of_include_mlops():
    folders = {
        p.name for p in (TESTS / "mlops").iterdir() if p.is_dir() and p.name != "__pycache__"
    }
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert folders, "tests/mlops has no stage folders"
    assert sorted(folders - packages) == [], "tests/mlops/<x>/ needs include/mlops/<x>/"


# Exceptions that carry no message: control flow, asserted by their attributes instead.
MESSAGELESS = {"TaskDeferred", "AirflowRescheduleException"}  # both carry no message


def test_every_expected_exception_is_matched_on_its_message():
    """``pytest.raises(ValueError)`` passes on any ValueError, even one from a typo."""
    offenders = []
    for path in sorted(TESTS.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) == "pytest.raises"
                and not any(k.arg == "match" for k in node.keywords)
                and not (node.args and ast.unparse(node.args[0]) in MESSAGELESS)
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == [], "add match= on the part of the message a user needs"
