"""An alert is logged, written under alerts/ and POSTed to a real webhook; a webhook that
refuses, fails or hangs is logged and never raised, and the alert is still on file."""

from __future__ import annotations

import json
import logging
import time

import pytest

from mlops.alerts import DEADLINE_MISSED, RUN_FAILED, Alert, alert_uri, send_alert
from mlops.settings import load_settings
from tests.support.black_hole import black_hole
from tests.support.webhook import webhook


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(tmp_path))
    return load_settings()


# an asset-triggered run's id, as the alert's file name spells it (":" and "+" replaced)
RUN_ID = "asset_triggered__2026-06-24T10:00:05+00:00_aB3dE6fG"
RUN = "asset_triggered__2026-06-24T10-00-05-00-00_aB3dE6fG"
ALERT = Alert(
    summary="model_rollback.roll_back failed after 4 tries",
    dag_id="model_rollback",
    task_id="roll_back",
    run_id=RUN_ID,
    try_number=4,
    error="RestException('registry down')",
    recorded_at="2026-01-01T00:00:00+00:00",
    details={"params": {"version": "7"}},
)


def test_an_alert_is_logged_written_and_posted(settings, caplog):
    with webhook() as hook, caplog.at_level(logging.ERROR, logger="mlops.alerts"):
        sent = send_alert(settings, ALERT, webhook_url=hook.url)
    assert sent.posted is True
    assert sent.uri == f"{settings.data_root}/alerts/model_rollback_roll_back_{RUN}_try4.json"
    assert sent.uri == alert_uri(settings, ALERT)
    with open(sent.uri) as handle:
        assert json.load(handle) == ALERT.to_dict()
    assert hook.received == [ALERT.to_dict()]
    assert hook.headers[0]["Content-Type"] == "application/json"
    assert "ALERT model_rollback.roll_back failed after 4 tries" in caplog.text


def test_the_webhook_is_the_settings_own(tmp_path):
    with webhook() as hook:
        env = {"MLOPS_DATA_ROOT": str(tmp_path), "MLOPS_ALERT_WEBHOOK_URL": hook.url}
        assert send_alert(load_settings(env), ALERT).posted is True
    assert hook.received == [ALERT.to_dict()]


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        (RUN_FAILED, f"model_rollback_{RUN}_run_failed"),
        (DEADLINE_MISSED, f"model_rollback_{RUN}_deadline_missed"),
    ],
)
def test_a_runs_alert_is_keyed_by_the_run_and_its_kind(settings, kind, key):
    alert = Alert(**{**ALERT.to_dict(), "task_id": "", "try_number": 0, "kind": kind})
    assert send_alert(settings, alert).uri == f"{settings.data_root}/alerts/{key}.json"


def test_without_a_webhook_the_alert_is_only_written(settings):
    sent = send_alert(settings, ALERT)
    assert sent.posted is None
    with open(sent.uri) as handle:
        assert json.load(handle)["error"] == "RestException('registry down')"


def test_the_same_failure_alerted_twice_is_sent_once(settings, caplog):
    """Airflow may run a task's failure callback twice for one try (the worker, then the
    dag-processor): the second is logged, neither written again nor posted."""
    with webhook() as hook:
        first = send_alert(settings, ALERT, webhook_url=hook.url)
        with caplog.at_level(logging.WARNING, logger="mlops.alerts"):
            again = send_alert(settings, ALERT, webhook_url=hook.url)
        next_try = Alert(**{**ALERT.to_dict(), "try_number": 5})
        run = Alert(**{**ALERT.to_dict(), "task_id": "", "try_number": 0, "kind": RUN_FAILED})
        assert send_alert(settings, next_try, webhook_url=hook.url).posted is True
        assert send_alert(settings, run, webhook_url=hook.url).posted is True
    assert (first.posted, first.repeated) == (True, False)
    assert (again.uri, again.posted, again.repeated) == (first.uri, None, True)
    assert hook.received == [ALERT.to_dict(), next_try.to_dict(), run.to_dict()]
    assert "was sent already" in caplog.text


def refused_url() -> str:
    with black_hole() as port:  # bound, then closed: nothing listens there any more
        pass
    return f"http://127.0.0.1:{port}/alerts"


@pytest.mark.parametrize("failure", ["server error", "refused", "hangs"])
def test_a_failing_webhook_is_logged_never_raised(settings, caplog, failure):
    with caplog.at_level(logging.WARNING, logger="mlops.alerts"):
        started = time.monotonic()
        if failure == "server error":
            with webhook(status=500) as hook:
                sent = send_alert(settings, ALERT, webhook_url=hook.url)
            assert len(hook.received) == 1
        elif failure == "refused":
            sent = send_alert(settings, ALERT, webhook_url=refused_url())
        else:
            with black_hole() as port:
                url = f"http://127.0.0.1:{port}/alerts"
                sent = send_alert(settings, ALERT, webhook_url=url, timeout_s=0.5)
        elapsed = time.monotonic() - started
    assert sent.posted is False
    assert elapsed < 5
    assert "could not post the alert to the webhook" in caplog.text
    with open(sent.uri) as handle:
        assert json.load(handle) == ALERT.to_dict()
