"""Training sets as of a date: a window's transactions, their served features, their labels.

The entity rows are the validated transactions of ``[start, end)``, each stamped with its own
``TX_DATETIME``; Feast's point-in-time retrieval through ``fraud_model_v1`` gives every row
the snapshots that were online when it happened (the end of the previous day, TTL one day),
and the same request-time arithmetic as serving (``mlops.features.serving``), applied to
the whole frame at once, adds the transaction itself. So a training row is, bit for bit,
what the model would have been served, and it is also what ``build_feature_partition``
computes offline (a test holds all three equal).

Nothing younger than the rows is read: the snapshot of day A uses labels of days up to
``A - delay``, and one taken after a row's day is never matched to it.
``mlops.training.windows.training_window`` gives the rows whose labels are known at a date
D: ``[D - delay - window, D - delay)``.
``inputs`` names every validated and snapshot partition the set came from with its sha256,
for the model's lineage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from mlops.features.inputs import INPUT, as_date, day_range, input_partitions, query_partitions
from mlops.features.names import FEATURE_SERVICE, FEATURES, LABEL
from mlops.features.serving import StaleSnapshotError, amount_cents, customer_window
from mlops.features.snapshots import SNAPSHOT_FILE, published_snapshots
from mlops.features.sql import EVENT_TIMESTAMP, WINDOWS
from mlops.features.sql_day import SNAPSHOT_DAY
from mlops.features.store import ENTITY_VIEWS, feature_store
from mlops.io import storage
from mlops.io.duckdb_s3 import enable_feast_s3_reads
from mlops.settings import Settings
from mlops.training.windows import Window
from mlops.zones import SNAPSHOTS

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

KEYS = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID")
COLUMNS: tuple[str, ...] = (*KEYS, *FEATURES, LABEL)  # TX_AMOUNT is the first feature
# What each side's snapshot must have zero counts in for an older row to mean "no history".
COUNTS = {
    "customer": [f"CUSTOMER_ID_PREV_NB_TX_{n}DAY" for n in WINDOWS],
    "terminal": [f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW" for n in WINDOWS],
}


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """``frame`` has ``COLUMNS``, sorted by time; ``inputs`` is {partition URI: sha256}."""

    frame: pd.DataFrame
    inputs: dict[str, str] = field(default_factory=dict)
    window: Window | None = None

    def to_dict(self) -> dict[str, Any]:
        """A summary for XCom and logs (never the rows)."""
        return {
            "rows": len(self.frame),
            "frauds": int(self.frame[LABEL].sum()) if len(self.frame) else 0,
            "window": self.window.to_dict() if self.window else None,
            "inputs": dict(self.inputs),
        }


def _digest(files: dict[str, str]) -> str:
    """A partition's sha256: its data file's, or one over all of them when it has several."""
    if len(files) == 1:
        return next(iter(files.values()))
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def _transactions(partitions: list[Any], options: storage.StorageOptions | None) -> pd.DataFrame:
    (table,) = query_partitions(
        partitions,
        f"SELECT TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, {LABEL} "
        f"FROM {INPUT} ORDER BY TX_DATETIME, TRANSACTION_ID",
        storage_options=options,
    )
    frame = table.to_pandas()
    return frame.astype({"TX_DATETIME": "datetime64[us]"})


def _snapshot_columns(retrieved: pd.DataFrame, entity: str) -> pd.DataFrame:
    prefix = f"{ENTITY_VIEWS[entity]}__"
    picked = retrieved[[c for c in retrieved.columns if c.startswith(prefix)]]
    return picked.rename(columns=lambda c: c.removeprefix(prefix))


def _usable(snapshot: pd.DataFrame, tx_day: pd.Series, entity: str) -> pd.DataFrame:
    """Zeros where a row stands for no history, as ``features_serving`` reads one online;
    raise where serving would refuse the row."""
    import pandas as pd

    day = pd.to_datetime(snapshot[SNAPSHOT_DAY], format="%Y-%m-%d")
    found, expected = day.notna(), tx_day - pd.Timedelta(days=1)
    values = snapshot.drop(columns=SNAPSHOT_DAY).apply(pd.to_numeric).fillna(0)
    older = found & (day < expected)
    future = found & (day > expected)
    busy = (values[COUNTS[entity]] != 0).any(axis=1)
    if future.any() or (older & busy).any():
        raise StaleSnapshotError(
            f"{entity} snapshot rows not from the day before their transaction: "
            f"{int(future.sum())} from that day or later, {int((older & busy).sum())} older "
            "and not empty"
        )
    return values


def request_time_features(transactions: pd.DataFrame, retrieved: pd.DataFrame) -> pd.DataFrame:
    """``features_serving.request_features`` for every row at once, from retrieved snapshots."""
    import pandas as pd

    moment = transactions["TX_DATETIME"]
    tx_day = moment.dt.floor("D")
    customer = _usable(_snapshot_columns(retrieved, "customer"), tx_day, "customer")
    terminal = _usable(_snapshot_columns(retrieved, "terminal"), tx_day, "terminal")
    cents = amount_cents(transactions["TX_AMOUNT"].to_numpy())
    out = {
        "TX_AMOUNT": transactions["TX_AMOUNT"].astype("float64"),
        "TX_DURING_WEEKEND": (moment.dt.weekday >= 5).astype("int64"),
        "TX_DURING_NIGHT": (moment.dt.hour <= 6).astype("int64"),
    }
    for n in WINDOWS:
        count, mean = customer_window(
            customer[f"CUSTOMER_ID_PREV_NB_TX_{n}DAY"].to_numpy("int64"),
            customer[f"CUSTOMER_ID_PREV_CENTS_{n}DAY"].to_numpy("int64"),
            cents,
        )
        out[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = pd.Series(count, index=moment.index)
        out[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = pd.Series(mean, index=moment.index)
    for n in WINDOWS:
        name = f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"
        out[name] = terminal[name].astype("int64")
        name = f"TERMINAL_ID_RISK_{n}DAY_WINDOW"
        out[name] = terminal[name].astype("float64")
    return pd.DataFrame({name: out[name] for name in FEATURES})


def build_training_set(
    source: Settings | FeatureStore,
    *,
    start: date,
    end: date,
    validated_uri: str,
    storage_options: storage.StorageOptions | None = None,
    snapshots_uri: str | None = None,
    history_start: date | None = None,
) -> TrainingSet:
    """The transactions of ``[start, end)`` with their features as served, and their label.

    With ``Settings``, the snapshots and the history start default to the settings'; with a
    ``FeatureStore``, pass ``snapshots_uri``. Raises when a partition is missing or Feast
    returns a different number of rows than it was given."""
    start, end = as_date(start), as_date(end)
    if end <= start:
        raise ValueError(f"empty training window [{start}, {end})")
    if isinstance(source, Settings):
        store = feature_store(source)
        snapshots_uri = snapshots_uri or source.zone(SNAPSHOTS)
        history_start = history_start or source.history_start
    elif snapshots_uri is None:
        raise ValueError("snapshots_uri is needed with a FeatureStore")
    else:
        store = source
    what = f"the training set [{start}, {end})"
    partitions = input_partitions(
        validated_uri,
        day_range(start, end - timedelta(days=1)),
        history_start=history_start,
        needed_for=what,
        storage_options=storage_options,
    )
    snapshots = published_snapshots(
        snapshots_uri,
        day_range(start - timedelta(days=2), end - timedelta(days=2)),
        history_start=history_start,
        needed_for=what,
        storage_options=storage_options,
    )
    inputs = {p.uri: _digest(p.sha256) for p in partitions}
    inputs |= {uri: m["files"][SNAPSHOT_FILE]["sha256"] for uri, m in sorted(snapshots.items())}
    window = Window(start, end)
    transactions = _transactions(partitions, storage_options) if partitions else None
    if transactions is None or transactions.empty:
        return TrainingSet(_empty(), inputs, window)
    enable_feast_s3_reads(snapshots_uri, storage_options)
    return TrainingSet(_retrieve(store, transactions), inputs, window)


def _empty() -> pd.DataFrame:
    import pandas as pd

    def dtype(column: str) -> str:
        if column == "TX_DATETIME":
            return "datetime64[us]"
        floats = ("TX_AMOUNT", "_AVG_AMOUNT_", "_RISK_")
        return "float64" if any(part in column for part in floats) else "int64"

    return pd.DataFrame({c: pd.Series(dtype=dtype(c)) for c in COLUMNS})


def _retrieve(store: FeatureStore, transactions: pd.DataFrame) -> pd.DataFrame:
    if transactions["TRANSACTION_ID"].duplicated().any():
        raise ValueError("duplicate TRANSACTION_ID in the validated window")
    entity_rows = transactions[["TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"]].assign(
        **{EVENT_TIMESTAMP: transactions["TX_DATETIME"].dt.tz_localize("UTC")}
    )
    retrieved = store.get_historical_features(
        entity_df=entity_rows,
        features=store.get_feature_service(FEATURE_SERVICE),
        full_feature_names=True,
    ).to_df()
    if len(retrieved) != len(entity_rows):
        raise RuntimeError(
            f"Feast returned {len(retrieved)} rows for {len(entity_rows)} entity rows: "
            "a training set must keep every transaction"
        )
    retrieved = (
        retrieved.set_index("TRANSACTION_ID")
        .reindex(transactions["TRANSACTION_ID"])
        .reset_index(drop=True)
    )
    if retrieved["CUSTOMER_ID"].isna().any():
        raise RuntimeError("Feast lost entity rows (a transaction id came back missing)")
    features = request_time_features(transactions, retrieved)
    frame = transactions[list(KEYS)].join(features).assign(**{LABEL: transactions[LABEL]})
    return frame[list(COLUMNS)]
