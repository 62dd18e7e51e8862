from __future__ import annotations

from pathlib import Path

import pytest

from mlops import zones
from mlops.settings import ConfigError, load_settings


def test_local_profile_keeps_everything_under_one_root(tmp_path):
    settings = load_settings({"MLOPS_DATA_ROOT": str(tmp_path)})
    assert settings.profile == "local"
    assert settings.landing_uri == f"{tmp_path}/landing"
    assert settings.zone("validated") == f"{tmp_path}/validated"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"


def test_production_profile_uses_services():
    settings = load_settings({"MLOPS_PROFILE": "production"})
    assert settings.data_root.startswith("s3://")
    assert settings.mlflow_tracking_uri.startswith("http")


def test_environment_overrides_rules():
    settings = load_settings({"MLOPS_MAX_AMOUNT": "500", "MLOPS_BAD_ROW_TOLERANCE": "0.2"})
    assert settings.validation.max_amount == 500
    assert settings.validation.bad_row_tolerance == 0.2


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"MLOPS_PROFILE": "staging"}, "MLOPS_PROFILE"),
        ({"MLOPS_MAX_ROWS": "many"}, "MLOPS_MAX_ROWS"),
        ({"MLOPS_BAD_ROW_TOLERANCE": "1.5"}, "MLOPS_BAD_ROW_TOLERANCE"),
        ({"MLOPS_MIN_ROWS": "10", "MLOPS_MAX_ROWS": "5"}, "MLOPS_MIN_ROWS"),
        ({"MLOPS_PROFILE": "production", "MLOPS_DATA_ROOT": "/data"}, "MLOPS_DATA_ROOT"),
    ],
)
def test_bad_values_name_the_variable(env, names):
    with pytest.raises(ConfigError, match=names):
        load_settings(env)


def test_overrides_give_checked_new_settings_and_leave_the_original_alone(tmp_path):
    settings = load_settings({"MLOPS_DATA_ROOT": str(tmp_path)})
    moved = settings.with_overrides(data_root="s3://bucket/data", profile="production")
    assert (moved.profile, moved.data_root) == ("production", "s3://bucket/data")
    assert (settings.profile, settings.data_root) == ("local", str(tmp_path))
    assert moved.validation == settings.validation and moved.landing_uri == settings.landing_uri
    with pytest.raises(ConfigError, match="MLOPS_DATA_ROOT must be an s3:// URI"):
        settings.with_overrides(profile="production")
    with pytest.raises(ConfigError, match="MLOPS_ONLINE_STORE must be one of"):
        settings.with_overrides(online_store="memcached")


def test_parse_time_locations_agree_with_settings(monkeypatch):
    from mlops_airflow import parse_time

    for env in ({}, {"MLOPS_PROFILE": "production"}, {"MLOPS_DATA_ROOT": "/srv/data"}):
        for name in ("MLOPS_PROFILE", "MLOPS_DATA_ROOT", "MLOPS_LANDING_URI"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = load_settings(env)
        assert parse_time.data_root() == settings.data_root
        assert parse_time.landing_uri() == settings.landing_uri
        assert parse_time.zone_uri("validated") == settings.zone("validated")
    assert Path(load_settings({}).data_root).is_absolute()


def test_a_zone_name_that_is_not_a_zone_is_refused(tmp_path):
    settings = load_settings({"MLOPS_DATA_ROOT": f"{tmp_path}/"})
    assert settings.zone(zones.SNAPSHOTS) == f"{tmp_path}/features/snapshots"
    with pytest.raises(ValueError, match="unknown zone 'validatd'"):
        settings.zone("validatd")
