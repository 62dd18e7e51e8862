"""``mlops-simulate`` / ``python -m mlops.simulator``: land simulated days for a demo or a test.

The whole period is always simulated (about a second) and only the requested days are
written, so landing day by day over several invocations gives exactly the data of a single
run with the same seed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlops.io.storage import is_remote, s3_options
from mlops.simulator.config import DRIFT_SCENARIOS, SimulationConfig
from mlops.simulator.landing import FORMATS, day_indices, write_landing
from mlops.simulator.simulation import simulate


def _parser() -> argparse.ArgumentParser:
    defaults = SimulationConfig()
    p = argparse.ArgumentParser(prog="mlops-simulate", description=__doc__)
    p.add_argument("--landing", required=True, help="landing folder or s3:// URI")
    p.add_argument("--start-date", type=dt.date.fromisoformat, default=defaults.start_date)
    p.add_argument("--days", type=int, default=defaults.n_days, help="days to simulate")
    p.add_argument("--customers", type=int, default=defaults.n_customers)
    p.add_argument("--terminals", type=int, default=defaults.n_terminals)
    p.add_argument("--radius", type=float, default=defaults.radius)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--drift", choices=DRIFT_SCENARIOS, default=defaults.drift)
    p.add_argument("--drift-start-day", type=int, default=defaults.drift_start_day)
    p.add_argument("--drift-factor", type=float, default=defaults.drift_factor)
    p.add_argument("--format", choices=FORMATS, default="parquet", dest="fmt")
    select = p.add_argument_group("which simulated days to write (default: all)")
    select.add_argument("--only-days", type=int, metavar="K", help="only the first K days")
    select.add_argument("--from-day", help="first day to write: 0-based index or YYYY-MM-DD")
    select.add_argument("--to-day", help="last day to write (inclusive): index or YYYY-MM-DD")
    p.add_argument(
        "--s3-endpoint-url",
        default=os.environ.get("MLOPS_S3_ENDPOINT_URL"),
        help="S3-compatible endpoint (default: $MLOPS_S3_ENDPOINT_URL)",
    )
    return p


def _day(value: str, config: SimulationConfig) -> int:
    return config.day_index(dt.date.fromisoformat(value)) if "-" in value else int(value)


def selected_days(args: argparse.Namespace, config: SimulationConfig) -> list[int]:
    """Day indices to write; raises ValueError on an empty or impossible selection."""
    if args.only_days is not None and (args.from_day or args.to_day):
        raise ValueError("--only-days cannot be combined with --from-day/--to-day")
    first, last = 0, config.n_days - 1
    if args.only_days is not None:
        if args.only_days < 1:
            raise ValueError(f"--only-days must be >= 1, got {args.only_days}")
        last = args.only_days - 1
    if args.from_day:
        first = _day(args.from_day, config)
    if args.to_day:
        last = _day(args.to_day, config)
    if not 0 <= first <= last < config.n_days:
        raise ValueError(
            f"day selection {first}..{last} is empty or outside 0..{config.n_days - 1}"
        )
    return list(range(first, last + 1))


def storage_options(landing: str, endpoint_url: str | None) -> dict[str, Any] | None:
    """S3 options from the environment (the usual AWS_* variables) and the endpoint."""
    if not is_remote(landing) or not landing.startswith(("s3://", "s3a://")):
        return None
    env = os.environ
    options = s3_options(
        endpoint_url=endpoint_url,
        key=env.get("AWS_ACCESS_KEY_ID"),
        secret=env.get("AWS_SECRET_ACCESS_KEY"),
        region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION"),
    )
    if env.get("AWS_SESSION_TOKEN") and "key" in options:
        options["token"] = env["AWS_SESSION_TOKEN"]
    return options


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    began = time.perf_counter()
    try:
        config = SimulationConfig(
            n_customers=args.customers,
            n_terminals=args.terminals,
            n_days=args.days,
            start_date=args.start_date,
            radius=args.radius,
            seed=args.seed,
            drift=args.drift,
            drift_start_day=args.drift_start_day,
            drift_factor=args.drift_factor,
        )
        days = selected_days(args, config)
    except ValueError as error:
        print(f"mlops-simulate: error: {error}", file=sys.stderr)
        return 2
    frame = simulate(config)
    options = storage_options(args.landing, args.s3_endpoint_url)
    partitions = write_landing(frame, args.landing, config, args.fmt, options, days)
    day_of = config.day
    written = frame[np.isin(day_indices(frame, config), days)]
    print(
        f"mlops-simulate: {len(written)} rows, {int(written['TX_FRAUD'].sum())} frauds, "
        f"{len(partitions)} days ({day_of(days[0])}..{day_of(days[-1])}) of {config.n_days} "
        f"simulated, drift={config.drift}, {args.fmt} -> {args.landing} "
        f"in {time.perf_counter() - began:.1f} s"
    )
    return 0
