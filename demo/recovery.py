"""How fast the closed loop recovers from a drift, measured in-process (no scheduler).

``make demo``'s world (135 days, 2,500 cards, go-live with 58 days of history) run through
``demo.day_loop``: the DAGs' stage entries and the same retrain policy, day by day. The
figures are read from the records the stages wrote (``demo.report.collect``): the first
breaching day, the retrain requests, each training's gate outcome, the first promotion of a
model trained after the drift, and the served AP on matured days (before the drift, over
the 45 days from its start, after that promotion). ``--drift none`` checks that a quiet
world asks for nothing beyond the first model.

    .venv/bin/python demo/recovery.py --data-root /tmp/recovery [--drift none] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.closed_loop import LoopConfig, days_of, load_history, loop_environment  # noqa: E402

HISTORY_DAYS = 58


def run_world(config: LoopConfig, data_root: Path) -> dict[str, Any]:
    """Simulate ``config``'s world into ``data_root``, load its history, run its days through
    the loop; its recovery figures (``demo.outcome.recovery_figures``). The environment of
    ``loop_environment(config, data_root, HISTORY_DAYS)`` must be set."""
    from demo.day_loop import run_days
    from demo.outcome import recovery_figures
    from demo.report import collect
    from mlops.settings import load_settings
    from mlops.simulator import simulate

    began = time.monotonic()
    transactions = simulate(config.simulation())
    load_history(transactions, config, HISTORY_DAYS)
    run_days(config, transactions, data_root, first_index=HISTORY_DAYS)
    first, last, drift = days_of(config)
    result = recovery_figures(collect(load_settings(), first, last, drift), last)
    return result | {"wall_s": round(time.monotonic() - began)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument(
        "--drift",
        default="new_fraud_pattern",
        choices=["new_fraud_pattern", "amount_shift", "none"],
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=LoopConfig().days)
    args = parser.parse_args(argv)
    config = LoopConfig(days=args.days, drift=args.drift, seed=args.seed)
    data_root = args.data_root.resolve()
    shutil.rmtree(data_root, ignore_errors=True)
    data_root.mkdir(parents=True)
    os.environ.update(loop_environment(config, data_root, first_index=HISTORY_DAYS))
    text = json.dumps(run_world(config, data_root), indent=2)
    (data_root / "recovery.json").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
