"""A million-row day through ingestion and validation, in a fresh process, against a floor.

The day is one simulated day at 100x the handbook's population (customers x100, terminals
x100, radius / 10: the same density of reachable terminals), about 970k transactions. It is
generated once and kept in a cache folder (the simulator needs minutes and gigabytes at this
scale; the pipeline does not), then processed in a subprocess so that the peak RSS is the
pipeline's own. Imports and one small warm-up day are paid before the clock starts, as a
long-lived worker pays them once; the cold figure is reported too.

The floor is what the work costs without the framework: read the landing Parquet with
pyarrow, apply the same row rules with numpy, write the good and the bad rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

DAY = "2018-04-01"
CACHE = Path(os.environ.get("MLOPS_BENCH_CACHE", Path.home() / ".cache" / "mlops-fraud" / "bench"))
SCALE = {"n_customers": 500_000, "n_terminals": 1_000_000, "radius": 0.5, "n_days": 1}


def landing_file() -> Path:
    """The cached landing Parquet of the day, generated on first use."""
    path = CACHE / "million-day" / f"date={DAY}" / "transactions.parquet"
    if not path.exists():
        from mlops.simulator import SimulationConfig, simulate, write_landing

        config = SimulationConfig(**SCALE)
        write_landing(simulate(config), str(CACHE / "million-day"), config)
    return path


_WORKER = r"""
import json, os, resource, shutil, sys, tempfile, time
import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq

source, day = sys.argv[1], sys.argv[2]
figures = {}

def floor(root):
    began, cpu = time.perf_counter(), time.process_time()
    table = pq.read_table(source)
    c = {n: table.column(n).to_numpy() for n in table.column_names}
    start = np.datetime64(day, "us")
    bad = (c["TX_AMOUNT"] < 0) | (c["TX_AMOUNT"] >= 10_000)
    for n in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"):
        bad |= c[n] < 0
    bad |= (c["TX_FRAUD"] != 0) & (c["TX_FRAUD"] != 1)
    bad |= (c["TX_DATETIME"] < start) | (c["TX_DATETIME"] >= start + np.timedelta64(1, "D"))
    ids = np.sort(c["TRANSACTION_ID"])
    bad |= np.isin(c["TRANSACTION_ID"], ids[1:][ids[1:] == ids[:-1]])
    mask = pa.array(bad)
    pq.write_table(table.filter(pc.invert(mask)), f"{root}/good.parquet")
    pq.write_table(table.filter(mask), f"{root}/bad.parquet")
    return time.perf_counter() - began, time.process_time() - cpu

def process(root, landing):
    from mlops.ingestion.landing import ingest_partition
    from mlops.settings import load_settings
    from mlops.validation.partition import validate_partition

    settings = load_settings({"MLOPS_DATA_ROOT": root, "MLOPS_MAX_ROWS": "2000000"})
    os.makedirs(f"{root}/landing/date={day}")
    shutil.copy(landing, f"{root}/landing/date={day}/transactions.parquet")
    open(f"{root}/landing/date={day}/_SUCCESS", "w").close()
    t0, c0 = time.perf_counter(), time.process_time()
    ingest_partition(settings, day)
    t1, c1 = time.perf_counter(), time.process_time()
    result = validate_partition(settings, day)
    t2, c2 = time.perf_counter(), time.process_time()
    report = json.load(open(f"{root}/reports/validation/date={day}.json"))
    return result, t1 - t0, t2 - t1, c2 - c0, report["timings_s"]

with tempfile.TemporaryDirectory() as root:
    wall, cpu = min(floor(root) for _ in range(3))
    figures["floor_s"], figures["floor_cpu_s"] = round(wall, 3), round(cpu, 3)
with tempfile.TemporaryDirectory() as root:
    small = f"{root}/small.parquet"
    pq.write_table(pq.read_table(source).slice(0, 1000), small)
    began = time.perf_counter()
    process(f"{root}/warm", small)
    figures["cold_start_s"] = round(time.perf_counter() - began, 2)
figures["rss_after_warm_up_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
with tempfile.TemporaryDirectory() as root:
    result, ingest_s, validate_s, cpu_s, split = process(root, source)
total = ingest_s + validate_s
figures.update(
    rows=result.rows, good=result.good, bad=result.bad,
    ingest_s=round(ingest_s, 3), validate_s=round(validate_s, 3),
    rows_per_second=round(result.rows / total), cpu_s=round(cpu_s, 3),
    rows_per_cpu_second=round(result.rows / cpu_s),
    validate_split_s=split, times_the_floor=round(total / figures["floor_s"], 1),
    peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    load_average_1m=round(os.getloadavg()[0], 2),
)
print(json.dumps(figures))
"""


def run() -> dict[str, Any]:
    """Figures of the million-row day; ``rows_per_second`` is wall time on this machine
    (``load_average_1m`` says how busy it was), ``rows_per_cpu_second`` the process's CPU."""
    source = landing_file()
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, str(source), DAY],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
