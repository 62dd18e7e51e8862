"""Run the benchmark sections and write ``bench/results.json``: ``python -m bench.run [SECTION...]``.

A section is a module ``bench/*_bench.py`` with ``run() -> dict`` of figures; all of them run
by default. An expected section whose module does not exist yet is reported as missing; one that
raises is recorded with its error and makes the exit status 1, so a broken benchmark is never
mistaken for a slow one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXPECTED = (
    "simulator_bench",
    "parse_bench",
    "pipeline_bench",
    "serving_bench",
    "monitoring_bench",
    "scheduler_bench",
    "executor_bench",
)
RESULTS = HERE / "results.json"


def sections() -> list[str]:
    """The expected sections, then any other ``*_bench`` module found here."""
    return list(dict.fromkeys([*EXPECTED, *sorted(p.stem for p in HERE.glob("*_bench.py"))]))


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit or None,
    }


def run_section(name: str) -> dict[str, Any]:
    module_name = f"{__package__ or 'bench'}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            return {"status": "missing"}
        return {"status": "error", "error": traceback.format_exc()}
    began = time.perf_counter()
    try:
        figures = module.run()
    except Exception:
        return {"status": "error", "error": traceback.format_exc()}
    return {
        "status": "ok",
        "seconds": round(time.perf_counter() - began, 3),
        "figures": figures,
    }


def flatten(figures: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(figures, dict):
        rows: list[tuple[str, Any]] = []
        for key, value in figures.items():
            rows += flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    return [(prefix, figures)]


def table(results: dict[str, Any]) -> str:
    lines = []
    for name, section in results["sections"].items():
        head = f"{name}: {section['status']}"
        if "seconds" in section:
            head += f" ({section['seconds']} s)"
        lines.append(head)
        if section["status"] == "error":
            lines.append("    " + section["error"].strip().splitlines()[-1])
        rows = flatten(section.get("figures", {}))
        width = max((len(key) for key, _ in rows), default=0)
        lines += [f"    {key:<{width}}  {value}" for key, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", default=sections(), help="default: all")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    results = {"machine": machine(), "sections": {}}
    for name in args.sections:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results["sections"][name] = run_section(name)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(table(results))
    print(f"written to {args.output}")
    return 1 if any(s["status"] == "error" for s in results["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
