"""The Feast definitions in feature_repo/: what they declare, what they may import, and that
they read the snapshot partitions the pipeline writes."""

from __future__ import annotations

import ast
import importlib
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from mlops import zones
from mlops.features.names import FEATURE_SERVICE, WINDOWS
from mlops.features.snapshots import build_snapshot_partitions
from mlops.features.sql_day import (
    CUSTOMER_SNAPSHOT_COLUMNS,
    ENTITY_KEYS,
    SNAPSHOT_DAY,
    TERMINAL_SNAPSHOT_COLUMNS,
)
from mlops.features.store import (
    CUSTOMER_VIEW,
    PROJECT,
    TERMINAL_VIEW,
    feature_store,
    load_definitions,
    repo_config,
)
from mlops.settings import load_settings
from tests.support.reference_features import edge_frame, publish_validated

REPO = Path(__file__).resolve().parents[2] / "feature_repo"
DEFINITION_FILES = sorted(REPO.glob("*.py"))
SIBLINGS = {p.stem for p in DEFINITION_FILES}


@pytest.fixture(scope="module")
def contents(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    return root, load_definitions(load_settings({"MLOPS_DATA_ROOT": str(root)}))


@pytest.mark.parametrize("path", DEFINITION_FILES, ids=lambda p: p.name)
def test_definitions_import_only_feast_the_standard_library_and_each_other(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        for name in names:
            top = name.split(".")[0]
            allowed = top in SIBLINGS or top == "feast" or top in sys.stdlib_module_names
            assert allowed, f"{path.name} imports {name}"


def test_entities_are_keyed_by_the_transaction_columns(contents):
    _, repo = contents
    entities = {e.name: e for e in repo.entities if not e.name.startswith("__")}
    assert set(entities) == set(ENTITY_KEYS)
    for name, key in ENTITY_KEYS.items():
        assert entities[name].join_key == key
        assert entities[name].value_type.name == "INT64"


def test_views_hold_the_snapshot_columns_with_a_one_day_ttl(contents):
    _, repo = contents
    views = {v.name: v for v in repo.feature_views}
    assert set(views) == {CUSTOMER_VIEW, TERMINAL_VIEW}
    expected = {CUSTOMER_VIEW: CUSTOMER_SNAPSHOT_COLUMNS, TERMINAL_VIEW: TERMINAL_SNAPSHOT_COLUMNS}
    for name, view in views.items():
        fields = {f.name: str(f.dtype) for f in view.features}
        assert list(fields) == [SNAPSHOT_DAY, *expected[name]]
        assert fields[SNAPSHOT_DAY] == "String"
        assert all(t == "Float64" for f, t in fields.items() if "_RISK_" in f)
        assert all(t == "Int64" for f, t in fields.items() if "_NB_TX_" in f or "_CENTS_" in f)
        assert view.ttl == timedelta(days=1)
        assert view.online and view.description and view.owner and view.tags
        assert view.tags["definition"] == "daily"


def test_the_feature_service_is_versioned_and_covers_both_views(contents):
    _, repo = contents
    (service,) = repo.feature_services
    assert service.name == FEATURE_SERVICE == "fraud_model_v1"
    assert {p.name for p in service.feature_view_projections} == {CUSTOMER_VIEW, TERMINAL_VIEW}
    assert service.description and service.owner


def test_the_definitions_windows_are_the_pipelines():
    """feature_views.py keeps its own WINDOWS (the definitions do not import mlops)."""
    tree = ast.parse((REPO / "feature_views.py").read_text(encoding="utf-8"))
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["WINDOWS"]
    ]
    assert ast.literal_eval(value) == WINDOWS


def test_sources_glob_the_snapshot_partitions_of_the_settings_data_root(contents, monkeypatch):
    root, repo = contents
    paths = {s.name: s.path for s in repo.data_sources}
    for entity in ENTITY_KEYS:
        assert (
            paths[f"{entity}_snapshots"]
            == f"{root}/{zones.SNAPSHOTS}/{entity}/date=*/v=*/data.parquet"
        )
    monkeypatch.setenv("MLOPS_DATA_ROOT", "/elsewhere")
    load_definitions(load_settings({"MLOPS_DATA_ROOT": str(root)}))
    assert "sources" not in sys.modules  # loaded afresh each time, then let go
    import os

    assert os.environ["MLOPS_DATA_ROOT"] == "/elsewhere"


@pytest.mark.parametrize(
    "env", [{}, {"MLOPS_PROFILE": "production"}, {"MLOPS_DATA_ROOT": "/srv/data"}]
)
def test_the_definitions_default_data_root_is_the_settings_one(env, monkeypatch):
    for name in ("MLOPS_PROFILE", "MLOPS_DATA_ROOT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.delitem(sys.modules, "sources", raising=False)
    monkeypatch.delitem(sys.modules, "entities", raising=False)
    sources = importlib.import_module("sources")
    try:
        assert sources.data_root() == load_settings(env).data_root
        assert sources.SNAPSHOTS == f"{load_settings(env).zone(zones.SNAPSHOTS)}"
    finally:
        sys.modules.pop("sources", None)
        sys.modules.pop("entities", None)


def test_the_yaml_is_the_local_profile_the_code_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(tmp_path))
    raw = yaml.safe_load((REPO / "feature_store.yaml").read_text())
    built = repo_config(load_settings({"MLOPS_DATA_ROOT": str(tmp_path)}))
    assert raw["project"] == PROJECT == built.project
    assert raw["provider"] == built.provider
    assert raw["offline_store"]["type"] == built.offline_store.type == "duckdb"
    assert raw["online_store"]["type"] == built.online_store.type == "sqlite"
    assert raw["entity_key_serialization_version"] == built.entity_key_serialization_version
    from os.path import expandvars

    assert expandvars(raw["online_store"]["path"]) == built.online_store.path
    assert expandvars(raw["registry"]["path"]) == built.registry.path


def test_a_glob_source_reads_every_day_partition_through_duckdb(tmp_path):
    """DuckDB's read_parquet expands the date=* glob: a transaction of each day gets the
    snapshot of the day before it, from a different partition file each."""
    import pandas as pd

    from mlops.features.store import apply_definitions

    frame = edge_frame().drop(columns="NAME")
    first = pd.Timestamp("2018-04-01").date()
    publish_validated(tmp_path / "validated", frame, first, pd.Timestamp("2018-05-03").date())
    for day in ("2018-04-02", "2018-04-03"):
        build_snapshot_partitions(
            day, str(tmp_path / "validated"), str(tmp_path / zones.SNAPSHOTS), history_start=first
        )
    settings = load_settings({"MLOPS_DATA_ROOT": str(tmp_path)})
    apply_definitions(settings)
    entity_rows = pd.DataFrame(
        {
            "CUSTOMER_ID": [1, 1],
            "TERMINAL_ID": [5, 5],
            "event_timestamp": pd.to_datetime(["2018-04-03 09:00", "2018-04-04 09:00"], utc=True),
        }
    )
    store = feature_store(settings)
    got = store.get_historical_features(
        entity_df=entity_rows,
        features=store.get_feature_service(FEATURE_SERVICE),
        full_feature_names=True,
    ).to_df()
    got = got.sort_values("event_timestamp")
    assert got[f"{CUSTOMER_VIEW}__{SNAPSHOT_DAY}"].tolist() == ["2018-04-02", "2018-04-03"]
    assert got[f"{CUSTOMER_VIEW}__CUSTOMER_ID_PREV_NB_TX_1DAY"].tolist() == [2, 2]
