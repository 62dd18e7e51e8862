"""Training sets through Feast: equal to the offline features, blind to the future, and equal
row by row to what serving computes from the same snapshots."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlops import zones
from mlops.features.inputs import MissingPartitionError
from mlops.features.names import FEATURES
from mlops.features.serving import StaleSnapshotError, request_features
from mlops.features.snapshots import SnapshotMissingError
from mlops.features.store import apply_definitions
from mlops.io import storage
from mlops.io.partitions import publish_partition, read_manifest
from mlops.training.sets import COLUMNS, build_training_set, request_time_features
from mlops.training.windows import Window, evaluation_window, training_window
from tests.support.feature_data import day, offline_rows, publish_all, settings_for, transactions
from tests.support.published import published

AS_OF = day(47)
WINDOW = training_window(AS_OF, 14, 7)  # days 26..39: every label known at day 47


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        actual.reset_index(drop=True), expected.reset_index(drop=True), check_exact=True
    )


def build(settings, window: Window = WINDOW):
    return build_training_set(
        settings, start=window.start, end=window.end, validated_uri=settings.zone("validated")
    )


@pytest.fixture(scope="module")
def frame():
    return transactions()


@pytest.fixture(scope="module")
def base(frame, tmp_path_factory):
    root = publish_all(tmp_path_factory.mktemp("base"), frame)
    settings = settings_for(root)
    apply_definitions(settings)
    return root, settings, build(settings)


def test_windows_end_where_labels_stop_being_known():
    assert training_window(date(2018, 5, 20), 14, 7) == Window(date(2018, 4, 29), date(2018, 5, 13))
    held_out = evaluation_window(date(2018, 5, 20), 7, 7)
    assert held_out == Window(date(2018, 5, 6), date(2018, 5, 13))
    train = training_window(held_out.start, 7, 7)
    assert train.end == held_out.start - timedelta(days=7)
    with pytest.raises(ValueError, match="window_days must be >= 1"):
        training_window(date(2018, 5, 20), 0, 7)


def test_training_set_equals_the_offline_feature_partitions(base):
    root, _, training = base
    assert list(training.frame.columns) == list(COLUMNS)
    assert len(training.frame) > 5000
    assert_same(training.frame, offline_rows(root, *WINDOW))


def test_inputs_name_every_validated_and_snapshot_partition_with_its_hash(base):
    root, _, training = base
    validated = {k for k in training.inputs if "/validated/" in k}
    assert len(validated) == 14
    snapshots = sorted(k for k in training.inputs if f"/{zones.SNAPSHOTS}/" in k)
    assert len(snapshots) == 2 * 15  # both entities, days start - 2 .. end - 2
    assert snapshots[0].endswith(f"customer/date={WINDOW.start - timedelta(days=2)}")
    manifest = read_manifest(f"{root}/validated/date={WINDOW.start}")
    assert (
        training.inputs[f"{root}/validated/date={WINDOW.start}"]
        == (manifest["files"]["transactions.parquet"]["sha256"])
    )
    assert training.to_dict()["rows"] == len(training.frame)


def relative(inputs: dict[str, str], root) -> dict[str, str]:
    return {k.removeprefix(str(root)): v for k, v in inputs.items()}


def tamper(root, zone: str, first_day: date) -> None:
    """Change every stored value of ``zone`` dated ``first_day`` or later, in place."""
    for folder in sorted((root / zone).glob("date=*")):
        if date.fromisoformat(folder.name.removeprefix("date=")) < first_day:
            continue
        table = pd.read_parquet(published(folder) / "data.parquet")
        numbers = table.select_dtypes("number").columns.drop(
            ["CUSTOMER_ID", "TERMINAL_ID", "TRANSACTION_ID"], errors="ignore"
        )
        table[numbers] = table[numbers] * 3 + 1
        publish_partition(str(folder), {"data.parquet": storage.parquet_bytes(table)})


def test_no_leakage_later_data_young_labels_and_later_features_change_nothing(
    base, frame, tmp_path
):
    root, _, training = base
    after = frame["TX_DATETIME"] >= pd.Timestamp(AS_OF)  # after the point in time
    young = frame["TX_DATETIME"] >= pd.Timestamp(AS_OF - timedelta(days=7))  # label unknown
    changed = frame.copy()
    changed.loc[young, "TX_FRAUD"] = 1 - changed.loc[young, "TX_FRAUD"]
    changed.loc[after, "TX_AMOUNT"] = changed.loc[after, "TX_AMOUNT"] * 5
    changed = changed[~(after & (changed["TRANSACTION_ID"] % 3 == 0))]
    other = publish_all(tmp_path / "changed", changed)
    # feature values dated at or after the window's end: snapshots of days >= end - 1 are
    # stamped end or later; feature partitions of the days after the window
    for entity in ("customer", "terminal"):
        tamper(other, f"{zones.SNAPSHOTS}/{entity}", WINDOW.end - timedelta(days=1))
    tamper(other, zones.DAILY_FEATURES, WINDOW.end)
    settings = settings_for(other)
    apply_definitions(settings)
    again = build(settings)
    assert storage.parquet_bytes(again.frame) == storage.parquet_bytes(training.frame)
    assert relative(again.inputs, other) == relative(training.inputs, root)


def test_a_label_old_enough_to_be_known_does_change_the_set(base, frame, tmp_path):
    _, _, training = base
    known = frame["TX_DATETIME"].dt.date == day(20)  # before the window, older than the delay
    flipped = frame.assign(TX_FRAUD=frame["TX_FRAUD"].where(~known, 1 - frame["TX_FRAUD"]))
    settings = settings_for(publish_all(tmp_path / "flipped", flipped))
    apply_definitions(settings)
    again = build(settings)
    assert (again.frame["TX_FRAUD"] == training.frame["TX_FRAUD"]).all()
    risk = [c for c in FEATURES if c.startswith("TERMINAL_ID_RISK")]
    assert not again.frame[risk].equals(training.frame[risk])


def test_missing_partitions_fail_naming_them(base, tmp_path):
    root, _, _ = base
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("feast"))
    settings = settings_for(copy)
    apply_definitions(settings)
    gap = WINDOW.start + timedelta(days=3)
    shutil.rmtree(copy / zones.SNAPSHOTS / "terminal" / f"date={gap}")
    with pytest.raises(SnapshotMissingError, match=f"terminal/date={gap}"):
        build(settings)
    shutil.rmtree(copy / "validated" / f"date={gap}")
    with pytest.raises(MissingPartitionError, match=str(gap)):
        build(settings)


def test_lost_entity_rows_are_an_error(base):
    root, settings, _ = base
    from mlops.features.store import feature_store

    real = feature_store(settings)

    class Dropping:
        def get_feature_service(self, name):
            return real.get_feature_service(name)

        def get_historical_features(self, *, entity_df, **kwargs):
            job = real.get_historical_features(entity_df=entity_df, **kwargs)
            return SimpleNamespace(to_df=lambda: job.to_df().iloc[1:])

    with pytest.raises(RuntimeError, match="rows for"):
        build_training_set(
            Dropping(),
            start=WINDOW.start,
            end=WINDOW.end,
            validated_uri=settings.zone("validated"),
            snapshots_uri=settings.zone(zones.SNAPSHOTS),
        )


def snapshot_row(view: str, day_: str | None, count: int) -> dict:
    if view == "customer_daily_spending":
        names = [f"CUSTOMER_ID_PREV_{k}_{n}DAY" for n in (1, 7, 30) for k in ("NB_TX", "CENTS")]
        values = {name: (count if "NB_TX" in name else 1234 * count) for name in names}
    else:
        names = [f"TERMINAL_ID_{k}_{n}DAY_WINDOW" for n in (1, 7, 30) for k in ("NB_TX", "RISK")]
        values = {name: (count if "NB_TX" in name else 0.25 * bool(count)) for name in names}
    if day_ is None:
        values = dict.fromkeys(values, np.nan)
    return {f"{view}__{k}": v for k, v in {"SNAPSHOT_DAY": day_, **values}.items()}


CASES = [  # (tx time, customer row (day, count), terminal row (day, count))
    (datetime(2018, 5, 4, 0, 0), ("2018-05-03", 4), ("2018-05-03", 8)),  # exactly midnight
    (datetime(2018, 5, 4, 23, 59, 59), (None, 0), ("2018-05-03", 2)),  # never seen
    (datetime(2018, 5, 4, 6, 59), ("2018-05-01", 0), (None, 0)),  # quiet since
    (datetime(2018, 5, 5, 12, 0), ("2018-05-04", 1), ("2018-05-02", 0)),
]


def test_vectorised_request_time_features_equal_request_features_row_by_row():
    tx = pd.DataFrame(
        {"TX_DATETIME": [c[0] for c in CASES], "TX_AMOUNT": [0.125, 10.0, 99.995, 1e-3]}
    ).astype({"TX_DATETIME": "datetime64[us]"})
    rows = [
        snapshot_row("customer_daily_spending", *c[1]) | snapshot_row("terminal_daily_risk", *c[2])
        for c in CASES
    ]
    got = request_time_features(tx, pd.DataFrame(rows))
    for i, row in enumerate(rows):
        split = [
            {k.split("__")[1]: v for k, v in row.items() if k.startswith(view)}
            for view in ("customer_daily_spending", "terminal_daily_risk")
        ]
        served = request_features(*split, tx.iloc[i].to_dict())
        assert got.iloc[i].to_dict() == served
        assert list(served) == list(FEATURES)


@pytest.mark.parametrize(
    ("customer", "message"),
    [(("2018-05-04", 1), "1 from that day"), (("2018-05-01", 3), "1 older and not empty")],
)
def test_vectorised_path_refuses_what_serving_refuses(customer, message):
    tx = pd.DataFrame({"TX_DATETIME": [datetime(2018, 5, 4, 9)], "TX_AMOUNT": [1.0]})
    row = snapshot_row("customer_daily_spending", *customer)
    row |= snapshot_row("terminal_daily_risk", None, 0)
    with pytest.raises(StaleSnapshotError, match=message):
        request_time_features(tx.astype({"TX_DATETIME": "datetime64[us]"}), pd.DataFrame([row]))
