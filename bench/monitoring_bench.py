"""Monitoring cost: the decision statistic (numpy PSI on reference-quantile bins) against
Evidently's report of the same columns, and the drift check at a million rows.

The shape is the one a monitored day has: a reference of 70,000 training rows and a day of
10,000 logged rows, 15 columns (five of them shifted on the day). ``numpy`` is what
``monitor_day`` decides with: binning the reference (once per champion version, kept in its
profile) and the day's PSI per column. ``evidently`` is the HTML report of the same 15
columns (ValueDrift PSI each, plus DriftedColumnsCount): its import is timed in a fresh
process, its first report in this one. The 1 M-row check bins a 70 k reference and measures
1,000,000 rows x 15 columns.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REFERENCE_ROWS = 70_000
CURRENT_ROWS = 10_000
MILLION = 1_000_000
COLUMNS = 15
SHIFTED = 5
REPEATS = 3


def frames(rows: int, seed: int, shifted: int = 0) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data = rng.normal(50.0, 10.0, (rows, COLUMNS))
    data[:, :shifted] *= 1.5
    return pd.DataFrame(data, columns=[f"x{i}" for i in range(COLUMNS)])


def best_of(fn: Any, repeats: int = REPEATS) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - began)
    return best, value


def numpy_drift(reference: Any, current: Any) -> dict[str, Any]:
    from mlops.monitoring.drift import DriftThresholds, bin_reference, feature_drift

    thresholds = DriftThresholds(feature_psi=0.1, score_psi=0.1, drift_share=0.1)
    names = list(reference.columns)
    bin_s, bins = best_of(lambda: {n: bin_reference(reference[n]) for n in names})
    day_s, drift = best_of(lambda: feature_drift(bins, current, names, thresholds))
    return {"bin_reference_s": bin_s, "day_psi_s": day_s, "drift": drift}


def evidently_import_s() -> float:
    code = "import time; t = time.perf_counter(); import evidently.metrics; "
    code += "print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run() -> dict[str, Any]:
    from mlops.monitoring.report import drift_report_html

    reference = frames(REFERENCE_ROWS, 0)
    current = frames(CURRENT_ROWS, 1, SHIFTED)
    ours = numpy_drift(reference, current)
    numpy_day_s = ours["bin_reference_s"] + ours["day_psi_s"]
    import_s = evidently_import_s()
    began = time.perf_counter()
    html = drift_report_html(
        reference, current, list(reference.columns), threshold=0.1, drift_share=0.1
    )
    evidently_s = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "report.html").write_bytes(html)
    big = frames(MILLION, 2, SHIFTED)
    million = numpy_drift(reference, big)
    return {
        "one_day": {
            "reference_rows": REFERENCE_ROWS,
            "current_rows": CURRENT_ROWS,
            "columns": COLUMNS,
            "numpy_bin_reference_s": round(ours["bin_reference_s"], 4),
            "numpy_day_psi_s": round(ours["day_psi_s"], 4),
            "numpy_total_s": round(numpy_day_s, 4),
            "drifted_columns": len(ours["drift"]["drifted"]),
            "evidently_import_s": round(import_s, 2),
            "evidently_report_s": round(evidently_s, 2),
            "evidently_with_import_s": round(import_s + evidently_s, 2),
            "evidently_html_mb": round(len(html) / 1e6, 2),
            "ratio_evidently_to_numpy": round(evidently_s / numpy_day_s, 1),
            "ratio_with_import": round((import_s + evidently_s) / numpy_day_s, 1),
        },
        "million_rows": {
            "rows": MILLION,
            "columns": COLUMNS,
            "day_psi_s": round(million["day_psi_s"], 3),
            "rows_per_s": round(MILLION / million["day_psi_s"]),
            "drifted_columns": len(million["drift"]["drifted"]),
        },
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
