from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.features.inputs import INPUT, PartitionDayMismatch
from mlops.features.offline import (
    MissingPartitionError,
    build_feature_partition,
    build_feature_partitions,
    compute_features_all,
)
from mlops.features.serving import StaleSnapshotError, request_features
from mlops.features.snapshots import build_snapshot_partitions, compute_snapshots
from mlops.features.sql import FEATURE_COLUMNS, OUTPUT_COLUMNS, TERMINAL_FEATURES
from mlops.features.sql_day import day_feature_sql
from mlops.io import storage
from mlops.io.partitions import publish_partition, read_manifest
from mlops.schema import TRANSACTION_DTYPES, partition_name
from mlops.simulator import SimulationConfig, simulate
from tests.support.published import published
from tests.support.reference_features import REFERENCES, edge_frame, publish_validated

DEFINITIONS = ("handbook", "daily")
SAMPLE = SimulationConfig(n_customers=300, n_terminals=600, n_days=60, seed=3)


def read_partition(uri: str) -> pd.DataFrame:
    return pq.read_table(f"{published(uri)}/data.parquet").to_pandas()


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        actual.reset_index(drop=True), expected.reset_index(drop=True), check_exact=True
    )


@pytest.fixture(scope="module", params=["seconds", "hourly grid"])
def sample(request, tmp_path_factory):
    """The simulator's sample, and a copy on an hourly grid: many transactions of a card at
    the same instant, and many exactly n days apart (the open ends of the windows)."""
    frame = simulate(SAMPLE)
    if request.param != "seconds":
        frame["TX_DATETIME"] = frame["TX_DATETIME"].dt.floor("h")
        assert frame.duplicated(["CUSTOMER_ID", "TX_DATETIME"]).sum() > 1000
    root = tmp_path_factory.mktemp("validated")
    first, last = SAMPLE.start_date, SAMPLE.day(SAMPLE.n_days - 1)
    publish_validated(root, frame, first, last)
    return frame, str(root), first, last


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_one_pass_equals_pandas_reference_on_every_row_and_feature(sample, definition):
    frame, root, _, _ = sample
    fast = compute_features_all(root, definition=definition).to_pandas()
    assert list(fast.columns) == list(OUTPUT_COLUMNS)
    assert_same(fast, REFERENCES[definition](frame))


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_daily_runs_and_a_backfill_equal_the_one_pass_result(sample, tmp_path, definition):
    _, root, first, last = sample
    everything = compute_features_all(root, definition=definition).to_pandas()
    batch = build_feature_partitions(
        first, last, root, str(tmp_path / "batch"), definition=definition, history_start=first
    )
    assert_same(pd.concat(read_partition(r.uri) for r in batch), everything)
    # daily runs: the first days (history shorter than the windows), then one a week
    for i in [0, 1, 2, *range(9, (last - first).days + 1, 7)]:
        day = first + timedelta(days=i)
        result = build_feature_partition(
            day, root, str(tmp_path / "daily"), definition=definition, history_start=first
        )
        assert_same(
            read_partition(result.uri), everything[everything["TX_DATETIME"].dt.date == day]
        )
        assert result.sha256 == batch[i].sha256
        assert read_manifest(result.uri) == read_manifest(batch[i].uri)
    assert len(read_manifest(batch[-1].uri)["inputs"]) == 38


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    frame = edge_frame()
    root = tmp_path_factory.mktemp("edges")
    publish_validated(root, frame.drop(columns="NAME"), date(2018, 4, 1), date(2018, 5, 3))
    return frame, str(root)


@pytest.mark.parametrize("delay", [7, 3])
@pytest.mark.parametrize("definition", DEFINITIONS)
def test_edge_cases_equal_pandas_reference_one_pass_and_daily(edges, definition, delay):
    frame, root = edges
    rows = frame.drop(columns="NAME")
    everything = compute_features_all(root, definition=definition, delay_days=delay).to_pandas()
    assert_same(everything, REFERENCES[definition](rows, delay))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register(INPUT, rows)
    for day in sorted(set(rows["TX_DATETIME"].dt.date)):
        number = (day - date(1970, 1, 1)).days
        sql = day_feature_sql(INPUT, number, definition=definition, delay_days=delay)
        expected = everything[everything["TX_DATETIME"].dt.date == day]
        assert_same(con.sql(sql).to_arrow_table().to_pandas(), expected)


def features_by_name(edges, definition):
    frame, root = edges
    fast = compute_features_all(root, definition=definition).to_pandas()
    return fast.assign(NAME=frame["NAME"].to_numpy()).set_index("NAME")


def test_handbook_window_boundaries_peers_and_flags(edges):
    f = features_by_name(edges, "handbook")
    nb1, avg1 = f["CUSTOMER_ID_NB_TX_1DAY_WINDOW"], f["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"]
    assert nb1["a"] == nb1["b"] == 2 and avg1["a"] == avg1["b"] == (1000 + 2001) / 200
    assert nb1["d"] == 3 and avg1["d"] == (1000 + 2001 + 13) / 300  # 0.125 -> 13 cents
    assert nb1["c"] == 2  # d only: a and b are exactly one day old
    assert f["CUSTOMER_ID_NB_TX_30DAY_WINDOW"]["e"] == 3  # c, d, e
    nb_t, risk_t = f["TERMINAL_ID_NB_TX_1DAY_WINDOW"], f["TERMINAL_ID_RISK_1DAY_WINDOW"]
    assert (nb_t["h"], risk_t["h"]) == (2, 0.5)
    assert (nb_t["i"], risk_t["i"]) == (0, 0.0)
    assert (nb_t["j"], risk_t["j"]) == (0, 0.0)
    assert f["TERMINAL_ID_NB_TX_7DAY_WINDOW"]["j"] == 2
    assert f.loc[list("klmnop"), "TX_DURING_WEEKEND"].tolist() == [0, 1, 1, 0, 0, 0]
    assert f.loc[list("klmnop"), "TX_DURING_NIGHT"].tolist() == [0, 1, 0, 1, 1, 0]


def test_daily_windows_are_whole_previous_days_plus_the_transaction(edges):
    f = features_by_name(edges, "daily")
    nb1 = f["CUSTOMER_ID_NB_TX_1DAY_WINDOW"]
    assert nb1["a"] == nb1["b"] == 1  # same day: only the row itself
    assert nb1["c"] == nb1["d"] == 3  # yesterday's a, b + itself
    assert f["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"]["c"] == (1000 + 2001 + 3000) / 300
    assert f["CUSTOMER_ID_NB_TX_30DAY_WINDOW"]["e"] == 5  # days [D - 30, D - 1] hold a..d
    nb_t = f["TERMINAL_ID_NB_TX_1DAY_WINDOW"]
    assert nb_t["h"] == nb_t["i"] == 0  # day D - 7 is too young whatever the hour
    assert nb_t["j"] == 2 and f["TERMINAL_ID_RISK_1DAY_WINDOW"]["j"] == 0.5  # day D - 8


def test_feature_partition_schema_and_manifest(sample, tmp_path):
    _, root, first, _ = sample
    day = first + timedelta(days=40)
    result = build_feature_partition(day, root, str(tmp_path / "f"), history_start=first)
    schema = pq.read_schema(f"{published(result.uri)}/data.parquet")
    assert schema.names == list(OUTPUT_COLUMNS)
    assert schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert schema.field("TX_DATETIME").type == pa.timestamp("us")
    manifest = read_manifest(result.uri)
    expected_inputs = {partition_name(str(day - timedelta(days=k))) for k in range(38)}
    assert set(manifest["inputs"]) == expected_inputs
    source = read_manifest(f"{root}/{partition_name(str(day))}")
    shas = {name: meta["sha256"] for name, meta in source["files"].items()}
    assert manifest["inputs"][partition_name(str(day))] == shas
    assert result.rows == manifest["rows"] > 0


def test_missing_upstream_partition_raises_naming_the_day(sample, tmp_path):
    _, root, first, _ = sample
    copy = tmp_path / "validated"
    shutil.copytree(root, copy)
    gap = first + timedelta(days=20)
    storage.remove(str(copy / partition_name(gap.isoformat())))
    with pytest.raises(MissingPartitionError, match=gap.isoformat()) as caught:
        build_feature_partition(gap + timedelta(days=37), str(copy), str(tmp_path / "f"))
    assert caught.value.missing == (gap,)
    build_feature_partition(gap + timedelta(days=38), str(copy), str(tmp_path / "f"))
    with pytest.raises(MissingPartitionError, match=gap.isoformat()):
        compute_features_all(str(copy))


def test_days_before_history_start_may_be_absent_but_only_then(sample, tmp_path):
    _, root, first, _ = sample
    oldest = (first - timedelta(days=35)).isoformat()
    with pytest.raises(
        MissingPartitionError, match=f"missing for {oldest}, .*history_start"
    ) as caught:
        build_feature_partition(first + timedelta(days=2), root, str(tmp_path / "f"))
    assert caught.value.missing[0] == first - timedelta(days=35)
    assert len(caught.value.missing) == 35
    result = build_feature_partition(first, root, str(tmp_path / "f"), history_start=first)
    assert result.input_days == (first.isoformat(),)


def test_rerun_of_a_day_is_byte_identical(sample, tmp_path):
    _, root, first, _ = sample
    day, out = first + timedelta(days=45), str(tmp_path / "f")
    before = Path(build_feature_partition(day, root, out, history_start=first).uri)
    files = {str(p.relative_to(before)): p.read_bytes() for p in before.rglob("*") if p.is_file()}
    build_feature_partition(day, root, out, history_start=first)
    assert {
        str(p.relative_to(before)): p.read_bytes() for p in before.rglob("*") if p.is_file()
    } == files


def rebuild_with(frame, tmp_path, name, day, definition):
    root = tmp_path / name
    publish_validated(root, frame, SAMPLE.start_date, SAMPLE.day(SAMPLE.n_days - 1))
    out = str(tmp_path / f"{name}-features")
    return build_feature_partition(
        day, str(root), out, definition=definition, history_start=SAMPLE.start_date
    )


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_later_data_and_young_labels_do_not_change_a_day(tmp_path, definition):
    frame = simulate(SAMPLE)
    day = SAMPLE.day(45)
    built = rebuild_with(frame, tmp_path, "base", day, definition)
    base = read_partition(built.uri)
    later = frame["TX_DATETIME"].dt.date > day
    changed = frame.copy()
    changed.loc[later, "TX_AMOUNT"] *= 3
    changed.loc[later, "TX_FRAUD"] = 1 - changed.loc[later, "TX_FRAUD"]
    changed = changed[~(later & (changed["TRANSACTION_ID"] % 2 == 0))]
    rebuilt = rebuild_with(changed, tmp_path, "later", day, definition)
    assert rebuilt.sha256 == built.sha256
    assert read_manifest(rebuilt.uri) == read_manifest(built.uri)
    # labels younger than the delay at the end of day D: from D - 6 at midnight on
    young = frame["TX_DATETIME"] >= pd.Timestamp(day - timedelta(days=6))
    flipped = frame.assign(TX_FRAUD=frame["TX_FRAUD"].where(~young, 1 - frame["TX_FRAUD"]))
    relabelled = read_partition(rebuild_with(flipped, tmp_path, "young", day, definition).uri)
    assert (relabelled["TX_FRAUD"] != base["TX_FRAUD"]).any()
    assert_same(relabelled[list(FEATURE_COLUMNS)], base[list(FEATURE_COLUMNS)])
    # ... while a label old enough to be known does move the terminal risk
    old = frame["TX_DATETIME"].dt.date == day - timedelta(days=10)
    flipped = frame.assign(TX_FRAUD=frame["TX_FRAUD"].where(~old, 1 - frame["TX_FRAUD"]))
    relabelled = read_partition(rebuild_with(flipped, tmp_path, "old", day, definition).uri)
    assert not relabelled[list(TERMINAL_FEATURES)].equals(base[list(TERMINAL_FEATURES)])


def test_partition_holding_another_days_rows_is_refused(tmp_path):
    frame = edge_frame().drop(columns="NAME")
    root = tmp_path / "validated"
    publish_validated(root, frame, date(2018, 4, 1), date(2018, 4, 3))
    stray = frame[frame["TX_DATETIME"].dt.date == date(2018, 4, 2)]
    publish_partition(
        str(root / "date=2018-04-03"),
        {"transactions.parquet": storage.parquet_bytes(stray.astype(TRANSACTION_DTYPES))},
    )
    with pytest.raises(PartitionDayMismatch, match="2018-04-03"):
        build_feature_partition(
            "2018-04-03", str(root), str(tmp_path), history_start=date(2018, 4, 1)
        )


def test_served_vector_equals_the_training_row_for_every_transaction(sample, tmp_path):
    frame, root, first, _ = sample
    day = first + timedelta(days=40)
    snapshot = build_snapshot_partitions(day - timedelta(days=1), root, str(tmp_path / "s"))
    customers = read_partition(snapshot.customer_uri).set_index("CUSTOMER_ID")
    terminals = read_partition(snapshot.terminal_uri).set_index("TERMINAL_ID")
    offline = read_partition(build_feature_partition(day, root, str(tmp_path / "f")).uri)
    served = [
        request_features(
            customers.loc[tx.CUSTOMER_ID] if tx.CUSTOMER_ID in customers.index else None,
            terminals.loc[tx.TERMINAL_ID] if tx.TERMINAL_ID in terminals.index else None,
            {"TX_DATETIME": tx.TX_DATETIME, "TX_AMOUNT": tx.TX_AMOUNT},
        )
        for tx in offline.itertuples()
    ]
    expected = offline[list(FEATURE_COLUMNS)]
    assert_same(pd.DataFrame(served).astype(expected.dtypes), expected)


def test_snapshot_rows_must_be_the_previous_days_or_empty(edges):
    _, root = edges
    tables, _ = compute_snapshots("2018-05-03", root, history_start="2018-04-01")
    customers = tables["customer"].to_pandas().set_index("CUSTOMER_ID")
    # f (customer 2) on 2018-04-03 just left the 30-day window: a row of zeros says so
    assert customers.loc[2, "CUSTOMER_ID_PREV_NB_TX_30DAY"] == 0
    assert customers.loc[1, "CUSTOMER_ID_PREV_NB_TX_30DAY"] == 1  # e only
    tx = {"TX_AMOUNT": 12.34, "TX_DATETIME": datetime(2018, 5, 4, 9, 30)}
    later = {**tx, "TX_DATETIME": datetime(2018, 5, 20, 9, 30)}
    alone = request_features(None, None, later)
    never_seen = dict.fromkeys(customers.columns) | {"SNAPSHOT_DAY": float("nan")}
    assert request_features(never_seen, {"SNAPSHOT_DAY": None}, later) == alone
    assert request_features(customers.loc[2], None, later) == alone
    assert alone["CUSTOMER_ID_NB_TX_30DAY_WINDOW"] == 1
    assert alone["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"] == 12.34
    with pytest.raises(StaleSnapshotError, match="not materialised"):
        request_features(customers.loc[1], None, later)
    with pytest.raises(StaleSnapshotError, match="future"):
        request_features(customers.loc[1], None, {**tx, "TX_DATETIME": datetime(2018, 5, 3)})
    served = request_features(customers.loc[1], None, tx)
    assert served["CUSTOMER_ID_NB_TX_30DAY_WINDOW"] == 2
    assert served["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"] == (500 + 1234) / 200


@pytest.mark.integration
def test_features_from_and_to_s3_equal_the_local_ones(edges, s3_server, bucket, tmp_path):
    _, root = edges
    options = storage.s3_options(endpoint_url=s3_server, key="testing", secret="testing")
    remote = f"s3://{bucket}/validated"
    fs, _ = storage.filesystem(remote, options)
    fs.put(f"{root}/", f"{bucket}/validated/", recursive=True)
    day, start = "2018-04-11", "2018-04-01"
    out = f"s3://{bucket}/features"
    result = build_feature_partition(day, remote, out, history_start=start, storage_options=options)
    local = build_feature_partition(day, root, str(tmp_path / "f"), history_start=start)
    assert result.sha256 == local.sha256 and result.rows == local.rows > 0
    inputs = read_manifest(result.uri, options)["inputs"]
    assert inputs == read_manifest(local.uri)["inputs"]
