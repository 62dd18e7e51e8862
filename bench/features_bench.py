"""Feature computation over the full default data set: daily runs, a backfill, one query.

The baseline is one plain DuckDB query (``features_sql.feature_sql`` over a glob of the
validated files, into memory). Against it: the 183 daily runs as ``transactions_daily``
does them (each reads its 38 partitions, computes its day, publishes it atomically), and
the batched backfill (one window query for the whole range, then one partition per day).
A daily run reads 38 days to keep one, so it cannot get near the one-pass cost per row:
the ratio target (<= 1.5) is for the backfill path, which is what a rebuild uses. The
one-pass query and the backfill are timed best of three, as the machine may be shared; the
daily runs are many short runs, reported as their sum, mean, median and maximum.
Simulating and writing the validated zone are not timed. Both feature definitions are
measured; ``daily`` is the one the pipeline trains and serves.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from mlops import zones

TARGET_RATIO = 1.5
REPEATS = 3


def write_validated(frame: Any, root: Path, config: Any) -> int:
    """One published validated partition per simulated day, as validation writes them."""
    import pandas as pd

    from mlops.io import storage
    from mlops.io.partitions import publish_partition
    from mlops.schema import SOURCE_FILE, SOURCE_ROW, partition_name

    frame = frame.assign(**{SOURCE_FILE: "simulated.parquet", SOURCE_ROW: 0})
    by_day = {day: rows for day, rows in frame.groupby(frame["TX_DATETIME"].dt.floor("D"))}
    for index in range(config.n_days):
        day = config.day(index)
        rows = by_day.get(pd.Timestamp(day), frame.iloc[0:0])
        publish_partition(
            str(root / partition_name(day.isoformat())),
            {"transactions.parquet": storage.parquet_bytes(rows.reset_index(drop=True))},
            {"day": day.isoformat(), "rows": len(rows)},
        )
    return config.n_days


def plain_one_pass(validated: Path, definition: str) -> tuple[float, Any]:
    import duckdb

    from mlops.features.sql import feature_sql

    began = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    source = f"read_parquet('{validated}/date=*/v=*/*.parquet')"
    table = con.sql(feature_sql(source, definition=definition)).to_arrow_table()
    con.close()
    return time.perf_counter() - began, table


def measure(validated: Path, out: Path, config: Any, definition: str) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops.features.offline import build_feature_partition, build_feature_partitions

    first, last = config.day(0), config.day(config.n_days - 1)
    one_pass_runs, batch_runs = [], []
    for _ in range(REPEATS):  # best of REPEATS: the machine may be shared
        seconds, expected = plain_one_pass(validated, definition)
        one_pass_runs.append(seconds)
        began = time.perf_counter()
        build_feature_partitions(
            first,
            last,
            str(validated),
            str(out / "batch"),
            definition=definition,
            history_start=first,
        )
        batch_runs.append(time.perf_counter() - began)
    one_pass_s, batch_s = min(one_pass_runs), min(batch_runs)

    daily_s, uris = [], []
    for index in range(config.n_days):
        began = time.perf_counter()
        result = build_feature_partition(
            config.day(index),
            str(validated),
            str(out / "daily"),
            definition=definition,
            history_start=first,
        )
        daily_s.append(time.perf_counter() - began)
        uris.append(result.uri)

    daily = pa.concat_tables(pq.read_table(f"{uri}/data.parquet") for uri in uris)
    total = sum(daily_s)
    return {
        "rows": expected.num_rows,
        "one_pass_query_s": round(one_pass_s, 2),
        "one_pass_query_runs_s": [round(x, 2) for x in one_pass_runs],
        "daily_runs_total_s": round(total, 2),
        "daily_run_mean_s": round(statistics.mean(daily_s), 3),
        "daily_run_p50_s": round(statistics.median(daily_s), 3),
        "daily_run_max_s": round(max(daily_s), 3),
        "ratio_daily_runs_to_one_pass": round(total / one_pass_s, 2),
        "batched_backfill_s": round(batch_s, 2),
        "batched_backfill_runs_s": [round(x, 2) for x in batch_runs],
        "ratio_batched_to_one_pass": round(batch_s / one_pass_s, 2),
        "batched_meets_target": batch_s / one_pass_s <= TARGET_RATIO,
        "daily_runs_meet_target": total / one_pass_s <= TARGET_RATIO,
        "daily_runs_equal_one_pass": daily.combine_chunks().equals(expected.combine_chunks()),
    }


def run(definitions: tuple[str, ...] = ("daily", "handbook")) -> dict[str, Any]:
    from mlops.simulator import SimulationConfig, simulate

    config = SimulationConfig()
    figures: dict[str, Any] = {"target_ratio": TARGET_RATIO, "load_avg_1m_before": None}
    with tempfile.TemporaryDirectory(prefix="mlops-features-bench-") as tmp:
        root = Path(tmp)
        frame = simulate(config)
        figures["days"] = write_validated(frame, root / zones.VALIDATED, config)
        del frame
        figures["load_avg_1m_before"] = round(os.getloadavg()[0], 2)
        for definition in definitions:
            figures[definition] = measure(
                root / zones.VALIDATED, root / definition, config, definition
            )
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
