"""The feature store by settings, its definitions applied, and the SQLite online store:
materialisation of a day (exact, idempotent, never backwards) and served features equal to
the training rows (the skew test)."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops import zones
from mlops.features.online import materialize_day, online_features, snapshot_time
from mlops.features.serving import StaleSnapshotError
from mlops.features.snapshots import SnapshotMissingError
from mlops.features.store import (
    apply_definitions,
    feature_store,
    redacted,
    redis_connection_string,
    repo_config,
)
from mlops.io import storage
from mlops.io.partitions import publish_partition, read_manifest
from mlops.settings import ConfigError, Settings, load_settings
from tests.support.feature_data import day, publish_all, settings_for, transactions
from tests.support.feature_store import check_skew, fresh_root, online_rows
from tests.support.published import published


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "127.0.0.1:6379,db=0"),
        ("redis://redis:6380", "redis:6380,db=0"),
        ("redis://:s%40cret@cache:6379/3", "cache:6379,db=3,password=s@cret"),
        ("rediss://app:pw@cache/2", "cache:6379,db=2,username=app,password=pw,ssl=true"),
    ],
)
def test_redis_urls_become_feast_connection_strings(url, expected):
    assert redis_connection_string(url) == expected


def test_bad_redis_urls_and_passwords_in_messages():
    with pytest.raises(ConfigError, match="MLOPS_REDIS_URL"):
        redis_connection_string("http://cache:6379/0")
    with pytest.raises(ConfigError, match="db number"):
        redis_connection_string("redis://cache:6379/x")
    assert redacted("redis://:secret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redacted("redis://cache:6379/0") == "redis://cache:6379/0"


def test_local_profile_is_sqlite_and_a_registry_file_under_the_data_root(tmp_path):
    config = repo_config(load_settings({"MLOPS_DATA_ROOT": str(tmp_path)}))
    assert (config.project, config.provider) == ("fraud", "local")
    assert config.online_store.type == "sqlite"
    assert config.online_store.path == str(tmp_path / "feast" / "online.db")
    assert config.registry.path == f"{tmp_path}/feast/registry.db"
    assert config.offline_store.type == "duckdb"
    assert config.entity_key_serialization_version == 3


def test_production_profile_is_redis_and_a_registry_on_s3(monkeypatch):
    monkeypatch.setenv("FEAST_S3_ENDPOINT_URL", "http://minio:9000")
    env = {"MLOPS_PROFILE": "production", "MLOPS_REDIS_URL": "redis://:pw@redis:6379/0"}
    config = repo_config(load_settings(env))
    assert config.online_store.type == "redis"
    assert config.online_store.connection_string == (
        "redis:6379,db=0,password=pw,socket_timeout=2,socket_connect_timeout=2"
    )
    assert config.online_store.skip_dedup is True
    assert config.registry.path == "s3://mlops-fraud/data/feast/registry.db"
    sql = "postgresql+psycopg2://feast@db:5432/feast"
    config = repo_config(load_settings(env | {"MLOPS_FEAST_REGISTRY": sql}))
    assert (config.registry.registry_type, config.registry.path) == ("sql", sql)


def test_store_settings_are_checked():
    with pytest.raises(ConfigError, match="MLOPS_ONLINE_STORE"):
        load_settings({"MLOPS_ONLINE_STORE": "memcached"})
    with pytest.raises(ConfigError, match="MLOPS_HISTORY_START"):
        load_settings({"MLOPS_HISTORY_START": "April"})
    remote = Settings(profile="local", data_root="s3://b/data", landing_uri="s3://b/landing")
    with pytest.raises(ConfigError, match="local MLOPS_DATA_ROOT"):
        repo_config(remote)
    with pytest.raises(ConfigError, match="not a Feast repo"):
        apply_definitions(load_settings({"MLOPS_FEATURE_REPO": "/nonexistent"}))


def test_applying_the_definitions_is_idempotent_and_follows_the_repo(tmp_path):
    settings = settings_for(tmp_path / "a")
    first = apply_definitions(settings)
    assert "create feature service fraud_model_v1" in first.changes
    assert apply_definitions(settings).changes == ()

    from feast import FeatureService

    store = feature_store(settings)
    store.apply(
        [FeatureService(name="stray", features=[store.get_feature_view("terminal_daily_risk")])]
    )
    assert apply_definitions(settings).changes == ("delete feature service stray",)
    moved = settings_for(tmp_path / "b", FEAST_REGISTRY=f"{tmp_path}/a/feast/registry.db")
    changes = apply_definitions(moved).changes
    assert "update data source customer_snapshots" in changes
    source = feature_store(moved).get_data_source("customer_snapshots")
    assert source.path == f"{tmp_path}/b/features/snapshots/customer/date=*/v=*/data.parquet"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return publish_all(tmp_path_factory.mktemp("store"), transactions())


@pytest.fixture
def settings(root, tmp_path):
    settings = settings_for(fresh_root(root, tmp_path / "data"))
    apply_definitions(settings)
    return settings


def test_materialising_a_day_loads_exactly_its_snapshot_and_twice_changes_nothing(settings):
    store = feature_store(settings)
    result = materialize_day(settings, day(40), store=store)
    assert result.snapshot_time == snapshot_time(day(40)).isoformat() == "2018-05-12T00:00:00+00:00"
    snapshot = pd.read_parquet(
        published(f"{settings.zone(zones.SNAPSHOTS)}/customer/date={day(40)}")
    )
    assert result.customers == len(snapshot) > 0 and result.skipped_reason == ""
    terminals = pd.read_parquet(
        published(f"{settings.zone(zones.SNAPSHOTS)}/terminal/date={day(40)}")
    )
    online = online_rows(store, snapshot["CUSTOMER_ID"], terminals["TERMINAL_ID"][: len(snapshot)])
    assert set(online["customer_daily_spending__SNAPSHOT_DAY"]) == {str(day(40))}
    assert online["customer_daily_spending__CUSTOMER_ID_PREV_CENTS_30DAY"].tolist() == (
        snapshot["CUSTOMER_ID_PREV_CENTS_30DAY"].tolist()
    )
    again = materialize_day(settings, day(40), store=store)
    assert again.views == result.views
    pd.testing.assert_frame_equal(
        online_rows(store, snapshot["CUSTOMER_ID"], terminals["TERMINAL_ID"][: len(snapshot)]),
        online,
    )


def test_an_older_day_never_overwrites_a_later_one(settings):
    store = feature_store(settings)
    materialize_day(settings, day(41), store=store)
    older = materialize_day(settings, day(40), store=store)
    assert older.views == () and "snapshot of " + str(day(41)) in older.skipped_reason
    row = online_features(store, 1, 1, {"TX_DATETIME": f"{day(42)}T10:00", "TX_AMOUNT": 5.0})
    assert set(row.snapshot_days.values()) <= {str(day(41)), None}


def test_a_corrected_rerun_of_a_day_replaces_its_rows(settings):
    store = feature_store(settings)
    folder = f"{settings.zone(zones.SNAPSHOTS)}/customer/date={day(43)}"
    original = storage.read_bytes(f"{published(folder)}/data.parquet")
    metadata = {k: v for k, v in read_manifest(folder).items() if k != "files"}
    materialize_day(settings, day(43), store=store)
    snapshot = pd.read_parquet(f"{published(folder)}/data.parquet")
    corrected = snapshot.assign(
        CUSTOMER_ID_PREV_NB_TX_1DAY=snapshot["CUSTOMER_ID_PREV_NB_TX_1DAY"] + 100
    )
    try:
        publish_partition(folder, {"data.parquet": storage.parquet_bytes(corrected)}, metadata)
        materialize_day(settings, day(43), store=store)
        online = online_rows(store, snapshot["CUSTOMER_ID"], [0] * len(snapshot))
        assert online["customer_daily_spending__CUSTOMER_ID_PREV_NB_TX_1DAY"].tolist() == (
            corrected["CUSTOMER_ID_PREV_NB_TX_1DAY"].tolist()
        )
    finally:
        publish_partition(folder, {"data.parquet": original}, metadata)


def test_a_missing_snapshot_fails_naming_it(settings):
    with pytest.raises(SnapshotMissingError, match=f"customer/date={day(60)}"):
        materialize_day(settings, day(60))


def test_served_features_equal_the_training_rows_of_the_next_day(settings):
    """The skew test on SQLite: materialise D, then score every transaction of D + 1."""
    check_skew(settings, day(44))


def test_online_lookup_reports_its_sources_and_refuses_stale_rows(settings):
    store = feature_store(settings)
    # day 37 is the day one terminal's windows empty: its snapshot holds a zero row for it
    materialize_day(settings, day(37), store=store)
    materialize_day(settings, day(45), store=store)
    snapshot = pd.read_parquet(
        published(f"{settings.zone(zones.SNAPSHOTS)}/customer/date={day(45)}")
    )
    busy = int(snapshot.loc[snapshot["CUSTOMER_ID_PREV_NB_TX_1DAY"] > 0, "CUSTOMER_ID"].iloc[0])
    tx = {"TX_DATETIME": f"{day(46)}T08:00", "TX_AMOUNT": 12.5}
    served = online_features(store, busy, 10**9, tx)
    assert served.status == {"customer": "current", "terminal": "missing"}
    assert served.snapshot_days == {"customer": str(day(45)), "terminal": None}
    assert served.features["TERMINAL_ID_NB_TX_30DAY_WINDOW"] == 0
    with pytest.raises(StaleSnapshotError, match="not materialised"):
        online_features(store, busy, 1, {**tx, "TX_DATETIME": f"{day(48)}T08:00"})
    with pytest.raises(StaleSnapshotError, match="future"):
        online_features(store, busy, 1, {**tx, "TX_DATETIME": f"{day(45)}T23:00"})
    emptied = pd.read_parquet(
        published(f"{settings.zone(zones.SNAPSHOTS)}/terminal/date={day(37)}")
    )
    counts = [f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW" for n in (1, 7, 30)]
    (quiet,) = emptied.loc[(emptied[counts] == 0).all(axis=1), "TERMINAL_ID"].tolist()
    later = pd.read_parquet(published(f"{settings.zone(zones.SNAPSHOTS)}/terminal/date={day(45)}"))
    assert quiet not in set(later["TERMINAL_ID"])  # no row since: the zero row stays online
    served = online_features(store, busy, quiet, tx)
    assert served.status == {"customer": "current", "terminal": "quiet"}
    assert served.snapshot_days == {"customer": str(day(45)), "terminal": str(day(37))}
    assert {k: v for k, v in served.features.items() if k.startswith("TERMINAL_ID_")} == {
        f"TERMINAL_ID_{what}_{n}DAY_WINDOW": zero
        for what, zero in (("NB_TX", 0), ("RISK", 0.0))
        for n in (1, 7, 30)
    }


@pytest.mark.integration
def test_registry_on_s3_through_a_custom_endpoint(root, s3_server, bucket, monkeypatch, tmp_path):
    """The production registry (s3://) on an S3-compatible server, as MinIO in compose."""
    monkeypatch.delenv("FEAST_S3_ENDPOINT_URL", raising=False)
    settings = settings_for(
        fresh_root(root, tmp_path / "data"),
        FEAST_REGISTRY=f"s3://{bucket}/feast/registry.db",
        S3_ENDPOINT_URL=s3_server,
    )
    try:
        assert apply_definitions(settings).changed
        assert apply_definitions(settings).changes == ()
        check_skew(settings, day(46))
    finally:
        import os

        os.environ.pop("FEAST_S3_ENDPOINT_URL", None)
    fs, _ = storage.filesystem(f"s3://{bucket}", storage.s3_options(endpoint_url=s3_server))
    assert fs.exists(f"{bucket}/feast/registry.db")
    assert not (tmp_path / "data" / "feast" / "registry.db").exists()


def test_redis_calls_are_bounded_by_the_timeout_setting(tmp_path):
    assert redis_connection_string("redis://cache:6379/1", timeout_s=1.5) == (
        "cache:6379,db=1,socket_timeout=1.5,socket_connect_timeout=1.5"
    )
    env = {"MLOPS_DATA_ROOT": str(tmp_path), "MLOPS_ONLINE_STORE": "redis"}
    default = repo_config(load_settings(env)).online_store.connection_string
    assert default.endswith(",socket_timeout=2,socket_connect_timeout=2")
    chosen = load_settings(env | {"MLOPS_REDIS_TIMEOUT_S": "0.5"})
    assert repo_config(chosen).online_store.connection_string.endswith(
        ",socket_timeout=0.5,socket_connect_timeout=0.5"
    )
    with pytest.raises(ConfigError, match="MLOPS_REDIS_TIMEOUT_S must be > 0"):
        load_settings(env | {"MLOPS_REDIS_TIMEOUT_S": "0"})
