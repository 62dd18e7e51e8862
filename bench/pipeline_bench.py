"""Ingestion + validation throughput: a million-row day (bench.million_day), one default day,
and the whole default data set day by day.

The work measured is what ``transactions_daily`` does per run after its sensor: read the
landing partition, publish raw, run the Great Expectations suite, publish validated and
quarantine partitions, write the report and update the Data Docs. Imports and the first
GX context are paid before the clock starts, as a long-lived worker pays them once.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any


def _process_day(root: str, day: str) -> int:
    from mlops.ingestion.landing import ingest_partition
    from mlops.settings import load_settings
    from mlops.validation.partition import validate_partition

    settings = load_settings({"MLOPS_DATA_ROOT": root})
    ingest_partition(settings, day)
    return validate_partition(settings, day).rows


def run(days: int | None = None) -> dict[str, Any]:
    from mlops.simulator import SimulationConfig, simulate, write_landing
    from mlops.zones import LANDING, zone_uri

    config = SimulationConfig()
    frame = simulate(config)
    n_days = days or config.n_days
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as root:
        write_landing(frame, zone_uri(root, LANDING), config, days=range(n_days))
        dates = [config.day(d).isoformat() for d in range(n_days)]
        with tempfile.TemporaryDirectory() as warm_root:  # imports, GX and Jinja warm-up
            write_landing(frame, zone_uri(warm_root, LANDING), config, days=[0])
            _process_day(warm_root, dates[0])

        began = time.perf_counter()
        first_rows = _process_day(root, dates[0])
        one_day_s = time.perf_counter() - began

        began = time.perf_counter()
        total_rows = first_rows + sum(_process_day(root, day) for day in dates[1:])
        all_days_s = one_day_s + time.perf_counter() - began
    from bench import million_day

    return {
        "million_row_day": million_day.run(),
        "one_day": {
            "rows": first_rows,
            "seconds": round(one_day_s, 3),
            "rows_per_second": round(first_rows / one_day_s),
        },
        "all_days": {
            "days": n_days,
            "rows": total_rows,
            "seconds": round(all_days_s, 2),
            "rows_per_second": round(total_rows / all_days_s),
            "seconds_per_day": round(all_days_s / n_days, 3),
        },
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(days=5), indent=2))
