"""The ``daily`` features of one transaction at request time, from day-end snapshots.

This is the serving half of the ``daily`` definition (``mlops.features.sql``): the online
store holds, per customer, counts and integer cents of the previous whole days and, per
terminal, the finished risk features, all as of the end of the day before the request.
Adding the request's own transaction uses the same integer cents and the same single
division as the SQL, so a served vector equals the training row bit for bit. Pure: no I/O,
no clock; the caller passes the rows it looked up and the transaction. The arithmetic
(``amount_cents``, ``customer_window``) also takes numpy arrays, which is how training sets
(``mlops.training.sets``) apply the very same steps to a whole window at once.

A snapshot row is only valid for the day after its ``SNAPSHOT_DAY``. Because a snapshot
writes a zero row the day an entity's windows empty, an older row is still right when it
is all zeros (the entity has been quiet since); an older non-zero row means a day was not
materialised, and a row from the request's day or later would leak: both are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from mlops.features.sql import FEATURE_COLUMNS, WINDOWS
from mlops.features.sql_day import SNAPSHOT_DAY

Row = Mapping[str, Any]


class StaleSnapshotError(ValueError):
    """The online row is not the previous day's snapshot; serving it would skew features."""


def amount_cents(amount: Any) -> Any:
    """Same rounding as the SQL (``floor(amount * 100 + 0.5)``), in the same float steps:
    an int for one amount, an int64 array for an array of them."""
    cents = np.floor(np.asarray(amount, dtype=np.float64) * 100 + 0.5).astype(np.int64)
    return int(cents) if cents.ndim == 0 else cents


def customer_window(prev_count: Any, prev_cents: Any, cents: Any) -> tuple[Any, Any]:
    """Count and mean amount of a customer window: the snapshot's days plus the transaction.

    Operators only, so Python ints and int64 arrays take the same steps: exact integer
    sums, then one division of two integers below 2**53, rounded once, as in the SQL."""
    count = prev_count + 1
    return count, (prev_cents + cents) / (100 * count)


def transaction_time(tx: Row) -> datetime:
    """``TX_DATETIME`` as naive UTC, the convention of the validated zone."""
    value = tx["TX_DATETIME"]
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"TX_DATETIME must be a datetime or ISO string, got {value!r}")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _snapshot_day(row: Row) -> date:
    value = row[SNAPSHOT_DAY]
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _usable(row: Row | None, tx_day: date, counts: list[str], entity: str) -> Row | None:
    """The row when it applies to ``tx_day``; None when it stands for an empty history.

    An entity the store has never seen comes back from an online lookup as a row of nulls:
    that is an empty history too."""
    value = None if row is None else row.get(SNAPSHOT_DAY)
    if row is None or value is None or value != value:  # None or NaN
        return None
    snapshot_day = _snapshot_day(row)
    if snapshot_day == tx_day - timedelta(days=1):
        return row
    if snapshot_day >= tx_day:
        raise StaleSnapshotError(
            f"{entity} snapshot of {snapshot_day} is not older than the transaction's day "
            f"{tx_day}: it may contain the future"
        )
    if any(int(row[column]) for column in counts):
        raise StaleSnapshotError(
            f"{entity} snapshot of {snapshot_day} is older than {tx_day - timedelta(days=1)} "
            "and not empty: a later day was not materialised"
        )
    return None


def customer_features_at_request(snapshot_row: Row | None, tx: Row) -> dict[str, int | float]:
    """Customer windows = previous whole days from the snapshot + this transaction."""
    tx_day = transaction_time(tx).date()
    counts = [f"CUSTOMER_ID_PREV_NB_TX_{n}DAY" for n in WINDOWS]
    row = _usable(snapshot_row, tx_day, counts, "customer")
    cents = amount_cents(tx["TX_AMOUNT"])
    out: dict[str, int | float] = {}
    for n in WINDOWS:
        count, mean = customer_window(
            int(row[f"CUSTOMER_ID_PREV_NB_TX_{n}DAY"]) if row is not None else 0,
            int(row[f"CUSTOMER_ID_PREV_CENTS_{n}DAY"]) if row is not None else 0,
            cents,
        )
        out[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count
        out[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = mean
    return out


def terminal_features_at_request(snapshot_row: Row | None, tx: Row) -> dict[str, int | float]:
    """Terminal risk as the snapshot has it; only its validity depends on the request."""
    tx_day = transaction_time(tx).date()
    counts = [f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW" for n in WINDOWS]
    row = _usable(snapshot_row, tx_day, counts, "terminal")
    out: dict[str, int | float] = {}
    for n in WINDOWS:
        out[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = (
            int(row[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"]) if row is not None else 0
        )
        out[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = (
            float(row[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"]) if row is not None else 0.0
        )
    return out


def request_features(
    customer_row: Row | None, terminal_row: Row | None, tx: Row
) -> dict[str, int | float]:
    """The model's 15 inputs for one transaction, in ``FEATURE_COLUMNS`` order."""
    moment = transaction_time(tx)
    values: dict[str, int | float] = {
        "TX_AMOUNT": float(tx["TX_AMOUNT"]),
        "TX_DURING_WEEKEND": int(moment.weekday() >= 5),
        "TX_DURING_NIGHT": int(moment.hour <= 6),
        **customer_features_at_request(customer_row, tx),
        **terminal_features_at_request(terminal_row, tx),
    }
    return {name: values[name] for name in FEATURE_COLUMNS}
