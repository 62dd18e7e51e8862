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
from datetime import date, timedelta
from pathlib import Path
from statistics import mean
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.closed_loop import LoopConfig, days_of, load_history, loop_environment  # noqa: E402

HISTORY_DAYS = 58
RECOVERY_WINDOW_DAYS = 45


def _mean(points: list[tuple[date, float]], first: date, last: date) -> float | None:
    values = [v for d, v in points if first <= d <= last]
    return round(mean(values), 3) if values else None


def figures(timeline: Any, last: date) -> dict[str, Any]:
    """The recovery figures of a collected timeline (``demo.report.Timeline``)."""
    from demo.outcome import milestones
    from demo.report import quality_series

    found, drift = milestones(timeline), timeline.drift_start
    ap = quality_series(timeline)["average_precision"]
    requests = [d.isoformat() for d, _ in found["retrain_requests"]]
    out: dict[str, Any] = {
        "drift_start": drift.isoformat() if drift else None,
        "breaches_before_drift": len(found["breaches_before_drift"]),
        "first_breach_after_drift": str(found["first_breach_after_drift"] or "") or None,
        "retrain_requests": requests,
        "trainings": [f"{t['as_of']} v{t['version']} {t['outcome']}" for t in found["trainings"]],
        "deployments": [f"{e.day} {e.action} v{e.version}" for e in found["deployments"]],
        "rollbacks": sum(1 for e in found["deployments"] if e.action == "rolled_back"),
    }
    if not drift:
        return out
    promoted = [e for e in found["promotions"] if e.day >= drift.isoformat()]
    out["served_ap_before_drift"] = _mean(ap, drift - timedelta(days=21), drift - timedelta(1))
    out["served_ap_45_days_from_drift"] = _mean(
        ap, drift, drift + timedelta(days=RECOVERY_WINDOW_DAYS - 1)
    )
    if promoted:
        day = date.fromisoformat(promoted[0].day)
        out["first_promotion_after_drift"] = f"{day} v{promoted[0].version}"
        out["promotion_days_after_drift"] = (day - drift).days
        out["served_ap_after_promotion"] = _mean(ap, day + timedelta(days=1), last)
        if out["served_ap_before_drift"] and out["served_ap_after_promotion"]:
            ratio = out["served_ap_after_promotion"] / out["served_ap_before_drift"]
            out["after_vs_before"] = round(ratio, 3)
    return out


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

    from demo.day_loop import run_days
    from demo.report import collect
    from mlops.settings import load_settings
    from mlops.simulator import simulate

    began = time.monotonic()
    transactions = simulate(config.simulation())
    load_history(transactions, config, HISTORY_DAYS)
    run_days(config, transactions, data_root, first_index=HISTORY_DAYS)
    first, last, drift = days_of(config)
    result = figures(collect(load_settings(), first, last, drift), last)
    result["wall_s"] = round(time.monotonic() - began)
    text = json.dumps(result, indent=2)
    (data_root / "recovery.json").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
