"""Plain-pandas references for the two feature definitions, and the data they are checked on.

They exist only to check the DuckDB SQL: the handbook reference follows the book's own code
(per entity, ``rolling('nD')`` over a time index, terminal windows as the difference of two
rolling windows), the daily one looks each previous day up one merge at a time. The only
deliberate departures from the book are the documented semantics: amounts summed in integer
cents, and every transaction at the same instant seeing the same window (its peers').
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.features.sql import FEATURE_COLUMNS, KEY_COLUMNS, WINDOWS
from mlops.io import storage
from mlops.io.partitions import publish_partition
from mlops.schema import SOURCE_FILE, SOURCE_ROW, TRANSACTION_DTYPES, partition_name


def _prepare(tx: pd.DataFrame) -> pd.DataFrame:
    df = tx.sort_values(["TX_DATETIME", "TRANSACTION_ID"]).reset_index(drop=True)
    df["CENTS"] = np.floor(df["TX_AMOUNT"] * 100 + 0.5).astype("int64")
    df["TX_DURING_WEEKEND"] = (df["TX_DATETIME"].dt.weekday >= 5).astype("int64")
    df["TX_DURING_NIGHT"] = (df["TX_DATETIME"].dt.hour <= 6).astype("int64")
    return df


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    out = df[[*KEY_COLUMNS, *FEATURE_COLUMNS]].copy()
    for name in FEATURE_COLUMNS:
        if "_NB_TX_" in name:
            out[name] = out[name].astype("int64")
    out["event_timestamp"] = out["TX_DATETIME"].dt.tz_localize("UTC")
    return out


def _rolling(df: pd.DataFrame, key: str, column: str, days: int) -> tuple[pd.Series, pd.Series]:
    """Sum and count of ``column`` over (t - days, t] per ``key``, aligned with ``df``."""
    rolling = df.groupby(key).rolling(f"{days}D", on="TX_DATETIME")[column]
    order = df.sort_values(key, kind="stable").index  # the row order groupby().rolling() uses
    return (
        pd.Series(rolling.sum().to_numpy(), index=order).reindex(df.index),
        pd.Series(rolling.count().to_numpy(), index=order).reindex(df.index),
    )


def handbook_features(tx: pd.DataFrame, delay_days: int = 7) -> pd.DataFrame:
    """Customer windows (t - n days, t], terminal windows (t - (d + n) days, t - d days]."""
    if delay_days < 1:
        raise ValueError("the rolling reference needs delay_days >= 1")
    df = _prepare(tx)
    for n in WINDOWS:
        cents, count = _rolling(df, "CUSTOMER_ID", "CENTS", n)
        df[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count
        df[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = cents / (100 * count)
    # rolling() lets a row see only the peers sorted before it; the last peer sees them all
    customer = [c for c in FEATURE_COLUMNS if c.startswith("CUSTOMER_ID_")]
    df[customer] = df.groupby(["CUSTOMER_ID", "TX_DATETIME"])[customer].transform("last")
    frauds_delay, count_delay = _rolling(df, "TERMINAL_ID", "TX_FRAUD", delay_days)
    for n in WINDOWS:
        frauds, count = _rolling(df, "TERMINAL_ID", "TX_FRAUD", delay_days + n)
        count = count - count_delay
        df[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count
        df[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = ((frauds - frauds_delay) / count).fillna(0.0)
    return _finish(df)


def _previous_days(df: pd.DataFrame, daily: pd.DataFrame, key: str, offsets: range) -> pd.DataFrame:
    """Sum of ``daily`` (per key and day) over the days ``DAY - k`` for k in ``offsets``."""
    total = pd.DataFrame(0, index=df.index, columns=daily.columns)
    for k in offsets:
        wanted = df[[key]].assign(DAY=df["DAY"] - pd.Timedelta(days=k))
        found = wanted.merge(daily, left_on=[key, "DAY"], right_index=True, how="left")
        total += found[daily.columns].fillna(0).astype("int64").to_numpy()
    return total


def daily_features(tx: pd.DataFrame, delay_days: int = 7) -> pd.DataFrame:
    """Customer: days [D - n, D - 1] plus the row itself; terminal: days [D - d - n, D - d - 1]."""
    df = _prepare(tx)
    df["DAY"] = df["TX_DATETIME"].dt.floor("D")
    by_customer = df.groupby(["CUSTOMER_ID", "DAY"]).agg(
        NB=("CENTS", "size"), CENTS=("CENTS", "sum")
    )
    by_terminal = df.groupby(["TERMINAL_ID", "DAY"]).agg(
        NB=("TX_FRAUD", "size"), FRAUDS=("TX_FRAUD", "sum")
    )
    for n in WINDOWS:
        before = _previous_days(df, by_customer, "CUSTOMER_ID", range(1, n + 1))
        count = before["NB"] + 1
        df[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count
        df[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = (before["CENTS"] + df["CENTS"]) / (
            100 * count
        )
        known = _previous_days(
            df, by_terminal, "TERMINAL_ID", range(delay_days + 1, delay_days + n + 1)
        )
        df[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = known["NB"]
        df[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = (known["FRAUDS"] / known["NB"]).fillna(0.0)
    return _finish(df)


REFERENCES = {"handbook": handbook_features, "daily": daily_features}


def publish_validated(root: Path, frame: pd.DataFrame, first: date, last: date) -> None:
    """One validated partition per day of [first, last], empty days included."""
    frame = frame.astype(TRANSACTION_DTYPES).assign(**{SOURCE_FILE: "test.csv", SOURCE_ROW: 0})
    by_day = {day: rows for day, rows in frame.groupby(frame["TX_DATETIME"].dt.floor("D"))}
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        rows = by_day.get(pd.Timestamp(day), frame.iloc[0:0]).reset_index(drop=True)
        publish_partition(
            str(root / partition_name(day.isoformat())),
            {"transactions.parquet": storage.parquet_bytes(rows)},
            {"day": day.isoformat(), "rows": len(rows)},
        )


def edge_frame() -> pd.DataFrame:
    """Hand-made rows at window and flag boundaries (2018-04-07 is a Saturday)."""
    t0, s0 = pd.Timestamp("2018-04-02 12:00"), pd.Timestamp("2018-04-03 08:00")
    just = pd.Timedelta(microseconds=1)
    rows = [  # (name, time, customer, terminal, amount, fraud)
        ("a", t0, 1, 90, 10.00, 0),
        ("b", t0, 1, 91, 20.01, 0),  # same instant as a: peers see each other
        ("c", t0 + pd.Timedelta(days=1), 1, 92, 30.00, 0),  # a, b exactly 1 day old: out
        ("d", t0 + pd.Timedelta(days=1) - just, 1, 93, 0.125, 0),  # a, b just inside
        ("e", t0 + pd.Timedelta(days=30), 1, 94, 5.00, 0),  # a, b exactly 30 days old: out
        ("f", s0, 2, 5, 1.00, 1),
        ("g", s0, 3, 5, 1.00, 0),
        ("h", s0 + pd.Timedelta(days=7), 4, 5, 1.00, 0),  # f, g exactly delay old: in
        ("i", s0 + pd.Timedelta(days=7) - just, 4, 5, 1.00, 0),  # f, g too young
        ("j", s0 + pd.Timedelta(days=8), 4, 5, 1.00, 0),  # 1-day window (s0, s0 + 1d]: empty
        ("k", pd.Timestamp("2018-04-06 23:59:59.999999"), 5, 60, 3.00, 0),
        ("l", pd.Timestamp("2018-04-07 00:00:00"), 5, 61, 3.00, 1),
        ("m", pd.Timestamp("2018-04-08 23:59:59"), 5, 62, 3.00, 0),
        ("n", pd.Timestamp("2018-04-09 00:00:00"), 5, 63, 3.00, 0),
        ("o", pd.Timestamp("2018-04-09 06:59:59.999999"), 5, 64, 3.00, 0),
        ("p", pd.Timestamp("2018-04-09 07:00:00"), 5, 65, 3.00, 0),
    ]
    frame = pd.DataFrame(
        rows, columns=["NAME", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"]
    ).sort_values("TX_DATETIME", kind="stable")
    frame["TRANSACTION_ID"] = range(len(frame))
    frame["TX_FRAUD_SCENARIO"] = frame["TX_FRAUD"]
    return frame.astype(TRANSACTION_DTYPES)
