"""Quality on matured labels: how well what was served on past days ranked the frauds.

At the end of day D the labels of the transactions of day ``D - delay`` and before are known
(a transaction's label arrives ``delay`` days after it), so the newest matured day is
``D - delay`` and the quality window is the ``days`` matured days ending there. The served
score (the log's ``score`` column: what answered, champion or challenger) is joined by
transaction id with the validated label, and measured as the gate measures (AUC, AP,
CP@100, cards already known compromised removed: frauds of the ``history_days`` before the
window, and those inside it once their own labels are known). Nothing younger than D is read.

With a ``previous`` version (a champion on probation), both the champion and ``previous``
score the same matured rows from the logged features: a paired comparison on the freshest
labelled data, whoever served those days.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mlops.evaluation.history import read_known_frauds
from mlops.evaluation.metrics import Metrics, evaluate_scores, first_fraud_days
from mlops.features.inputs import INPUT, day_range, input_partitions, query_partitions
from mlops.features.names import FEATURES, LABEL
from mlops.io import storage
from mlops.scoring.log import PredictionSink

QUALITY_DAYS = 7
HISTORY_DAYS = 14  # as the gate's history: the training week and the delay gap before it
K = 100


def matured_days(day: date, delay_days: int, days: int = QUALITY_DAYS) -> list[date]:
    """The ``days`` most recent days whose labels are known at the end of ``day``."""
    newest = day - timedelta(days=delay_days)
    return day_range(newest - timedelta(days=days - 1), newest)


def labelled_log(
    sink: PredictionSink,
    days: list[date],
    validated_uri: str,
    history_start: date | None,
    options: storage.StorageOptions | None = None,
) -> pd.DataFrame:
    """The batch log rows of ``days`` (days without a log skipped) with their labels."""
    logged = {d: sink.read_day("batch", d) for d in days}
    logged = {d: frame for d, frame in logged.items() if len(frame)}
    if not logged:
        return pd.DataFrame()
    rows = pd.concat(logged.values(), ignore_index=True)
    partitions = input_partitions(
        validated_uri,
        sorted(logged),
        history_start=history_start,
        needed_for="the matured labels of monitoring",
        storage_options=options,
    )
    (labels,) = query_partitions(
        partitions, f"SELECT TRANSACTION_ID, {LABEL} FROM {INPUT}", storage_options=options
    )
    labels = labels.to_pandas().rename(columns={"TRANSACTION_ID": "transaction_id"})
    joined = rows.merge(labels, on="transaction_id", how="inner", validate="one_to_one")
    return joined.rename(columns={"tx_datetime": "TX_DATETIME", "customer_id": "CUSTOMER_ID"})


def _summary(metrics: Metrics) -> dict[str, Any]:
    return {
        "roc_auc": metrics.roc_auc,
        "average_precision": metrics.average_precision,
        f"card_precision_at_{metrics.k}": metrics.card_precision_at_k,
        "n_transactions": metrics.n_transactions,
        "n_frauds": metrics.n_frauds,
        "days": list(metrics.days),
    }


def matured_quality(
    sink: PredictionSink,
    day: date,
    *,
    validated_uri: str,
    delay_days: int,
    history_start: date | None,
    options: storage.StorageOptions | None = None,
    rescore: dict[str, Callable[[pd.DataFrame], np.ndarray]] | None = None,
) -> dict[str, Any] | None:
    """Served quality over the window and on its newest day; ``rescore`` maps a name (e.g.
    ``champion``, ``previous``) to a scoring function for the paired comparison. None when
    no matured day has a log yet."""
    days = matured_days(day, delay_days)
    rows = labelled_log(sink, days, validated_uri, history_start, options)
    if rows.empty:
        return None
    start = min(days)
    history_from = start - timedelta(days=HISTORY_DAYS)
    if history_start is not None:
        history_from = max(history_from, history_start)
    known = {}
    if history_from < start:
        frauds = read_known_frauds(
            validated_uri, history_from, start, history_start=history_start, storage_options=options
        ).frame
        known = first_fraud_days(frauds)
    window = evaluate_scores(
        rows, rows["score"], k=K, known_compromised=known, delay_days=delay_days
    )
    newest = days[-1]
    on_newest = rows["TX_DATETIME"].dt.date == newest
    newest_day = None
    if on_newest.any():
        earlier = first_fraud_days(rows.loc[~on_newest])
        merged = {**earlier, **known}
        merged = {c: min(known.get(c, d), earlier.get(c, d)) for c, d in merged.items()}
        last = rows.loc[on_newest]
        newest_day = _summary(
            evaluate_scores(
                last, last["score"], k=K, known_compromised=merged, delay_days=delay_days
            )
        ) | {"day": newest.isoformat()}
    models = {
        name: _summary(
            evaluate_scores(
                rows,
                score(rows.loc[:, list(FEATURES)]),
                k=K,
                known_compromised=known,
                delay_days=delay_days,
            )
        )
        for name, score in (rescore or {}).items()
    }
    return {
        "window": {"start": start.isoformat(), "end": newest.isoformat()},
        "served": _summary(window),
        "newest_day": newest_day,
        "models": models,
        "served_versions": sorted(str(v) for v in rows["model_version"].dropna().unique()),
    }
