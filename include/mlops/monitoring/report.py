"""The day's drift report as Evidently HTML, for a person to look at.

Evidently draws the distributions well, so it makes the report; it does not make the
decision (``mlops.monitoring.drift`` explains why its PSI bins are the wrong ones for that).
Importing it costs about 10 s, so it is imported here, only when a report is asked for.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import pandas as pd

from mlops.io import storage

SCORE = "score"


def drift_report_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str],
    *,
    threshold: float,
    drift_share: float,
) -> bytes:
    """Evidently's ValueDrift (PSI) per column and DriftedColumnsCount, as one HTML page."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    names = list(columns)
    definition = DataDefinition(numerical_columns=names)
    datasets = [
        Dataset.from_pandas(frame.loc[:, names].astype("float64"), data_definition=definition)
        for frame in (reference, current)
    ]
    metrics = [ValueDrift(column=c, method="psi", threshold=threshold) for c in names]
    metrics.append(DriftedColumnsCount(method="psi", drift_share=drift_share, columns=names))
    snapshot = Report(metrics).run(current_data=datasets[1], reference_data=datasets[0])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "report.html")
        snapshot.save_html(path)
        with open(path, "rb") as handle:
            return handle.read()


def write_report(uri: str, html: bytes, options: storage.StorageOptions | None = None) -> str:
    return storage.write_bytes_atomic(uri, html, options)
