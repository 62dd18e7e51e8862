"""monitor_day on a world with a registered champion, its training set and a prediction log."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from mlops.features.names import FEATURES
from mlops.monitoring.daily import html_wanted, monitor_day, read_summary
from mlops.monitoring.reference import profile_uri
from tests.support.monitoring_world import LOGGED, TRAINED, build_world

DAY = LOGGED[-1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("monitoring-world"))


def test_a_stable_day_is_monitored_against_the_champion_training_data(world):
    result = monitor_day(world.settings, DAY, html=False)
    summary = result.summary
    assert result.status == "monitored" and summary["rows"] > 1000
    assert summary["champion"]["version"] == "1"
    assert summary["champion"]["trained_as_of"] == TRAINED.isoformat()
    assert summary["champion"]["age_days"] == (DAY - TRAINED).days
    assert set(summary["champion"]["evaluation"]) == {
        "roc_auc",
        "average_precision",
        "card_precision_at_100",
    }
    drift = summary["drift"]
    assert set(drift["columns"]) == set(FEATURES)
    assert not drift["columns"]["TX_DURING_WEEKEND"]["judged"]
    assert drift["drifted"] == [] and not drift["dataset_drift"]
    assert summary["prediction_drift"]["psi"] < 0.1
    assert sum(summary["importances"].values()) == pytest.approx(1.0, abs=1e-4)
    assert json.loads(json.dumps(summary)) == summary  # the asset event's extra


def test_quality_uses_only_labels_known_at_the_day(world):
    quality = monitor_day(world.settings, DAY, html=False).summary["quality"]
    newest = DAY - timedelta(days=7)
    assert quality["window"] == {
        "start": (newest - timedelta(days=6)).isoformat(),
        "end": newest.isoformat(),
    }
    assert quality["served"]["days"][-1] == newest.isoformat()
    assert quality["newest_day"]["day"] == newest.isoformat()
    assert 0.5 < quality["served"]["roc_auc"] <= 1
    assert quality["served"]["n_frauds"] > 0 and quality["served_versions"] == ["1"]
    assert quality["models"]["champion"]["average_precision"] == pytest.approx(
        quality["served"]["average_precision"]
    )


def test_matured_days_without_a_log_are_left_out(world):
    quality = monitor_day(world.settings, LOGGED[7], html=False).summary["quality"]
    assert quality["window"]["end"] == LOGGED[0].isoformat()
    assert quality["served"]["days"] == [LOGGED[0].isoformat()]
    assert monitor_day(world.settings, LOGGED[6], html=False).summary["quality"] is None


def test_a_rerun_writes_the_same_summary_and_keeps_the_profile(world):
    first = monitor_day(world.settings, DAY, html=False)
    profile = profile_uri(world.settings, "1")
    kept = (world.root / profile.split(str(world.root))[1].lstrip("/")).read_text()
    again = monitor_day(world.settings, DAY, html=False)
    assert again.summary == first.summary == read_summary(world.settings, DAY)
    assert (world.root / profile.split(str(world.root))[1].lstrip("/")).read_text() == kept


def test_a_day_without_a_log_is_skipped_saying_why(world):
    result = monitor_day(world.settings, LOGGED[0] - timedelta(days=1), html=False)
    assert result.status == "skipped" and "no batch prediction log" in result.summary["reason"]
    assert read_summary(world.settings, LOGGED[0] - timedelta(days=1)) == result.summary


def test_the_evidently_report_is_written_when_asked(world):
    result = monitor_day(world.settings, LOGGED[-2])
    html = (world.root / result.report_uri.split(str(world.root))[1].lstrip("/")).read_text()
    assert "TX_AMOUNT" in html and len(html) > 100_000
    assert result.summary["report"] == result.report_uri


def test_a_champion_on_probation_is_compared_with_previous_on_the_same_rows(world):
    """Runs last: it promotes a second version and re-logs the last day with it."""
    from mlops.registry import aliases
    from tests.support.monitoring_world import log_days, train_champion

    tracking = world.settings.mlflow_tracking_uri
    version = train_champion(world, TRAINED + timedelta(days=1), seed=2)
    aliases.set_challenger(tracking, version)
    aliases.promote_challenger(tracking)
    log_days(world, version, [DAY])
    summary = monitor_day(world.settings, DAY, html=False).summary
    assert summary["champion"]["version"] == version == "2"
    assert summary["previous_version"] == "1"
    models = summary["quality"]["models"]
    assert set(models) == {"champion", "previous"}
    assert models["previous"]["n_transactions"] == models["champion"]["n_transactions"]
    assert models["previous"]["average_precision"] != models["champion"]["average_precision"]


def test_the_evidently_page_is_written_unless_the_run_or_the_environment_says_no():
    assert html_wanted(None, {}) and html_wanted(None, {"MLOPS_MONITORING_HTML": "true"})
    assert not html_wanted(None, {"MLOPS_MONITORING_HTML": "False"})
    assert html_wanted(True, {"MLOPS_MONITORING_HTML": "false"})
    assert not html_wanted(False, {})
