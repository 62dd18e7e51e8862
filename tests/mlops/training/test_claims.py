"""One training and one decision per request: two retrain requests for the same day at once
(two Airflow runs, or a run and the CLI) train once; the second returns the first's
decision, reused, and moves nothing. The claim that serialises them is bounded and released."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from mlops.registry import aliases
from mlops.registry.versions import MODEL_NAME
from mlops.settings import load_settings
from mlops.training import claims
from tests.support.training_requests import publish_sets, run_request

DAY = date(2018, 8, 6)


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(
        {
            "MLOPS_DATA_ROOT": str(tmp_path / "data"),
            "MLOPS_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        }
    )


def test_two_requests_for_the_same_day_at_once_train_once_and_decide_once(settings):
    import mlflow

    publish_sets(settings, DAY)
    start = threading.Barrier(2)

    def request(run_id: str):
        start.wait()
        return run_request(settings, DAY, run_id)

    with ThreadPoolExecutor(2) as pool:
        runs = ("asset_triggered__1", "asset_triggered__2")
        first, second = pool.map(request, runs)
    trained, reused = sorted((first, second), key=lambda outcome: outcome.reused)
    assert (trained.reused, reused.reused) == (False, True)
    assert reused.model_version == trained.model_version and reused.run_id == trained.run_id
    assert reused.outcome == trained.outcome
    assert "not trained again, no alias moved" in reused.reasons[0]
    assert reused.aliases["changed"] is False

    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    assert [str(v.version) for v in versions] == [trained.model_version]  # one version
    experiment = client.get_experiment_by_name("fraud_model").experiment_id
    assert len(client.search_runs([experiment])) == 1  # one run, one gate decision
    assert not list(Path(claims.claim_uri(settings, "x")).parent.glob("*.json"))  # released

    # a third request of the same day, later: still that decision, the aliases untouched
    before = aliases.alias_state(settings.mlflow_tracking_uri)
    later = run_request(settings, DAY, "asset_triggered__3")
    assert later.reused and later.model_version == trained.model_version
    assert aliases.alias_state(settings.mlflow_tracking_uri) == before


def test_other_data_for_the_same_day_is_another_request_and_replaces_the_version(settings):
    publish_sets(settings, DAY, seed=0)
    first = run_request(settings, DAY, "scheduled__1")
    publish_sets(settings, DAY, seed=1)  # late data corrected: other digests
    second = run_request(settings, DAY, "manual__2")
    assert not second.reused and second.model_version != first.model_version


def test_a_held_claim_makes_the_other_caller_wait_a_bounded_time(settings):
    with claims.claimed(settings, "k1", "run-a"):
        began = time.perf_counter()
        with pytest.raises(claims.TrainingInProgress, match="being trained by run-a"):
            with claims.claimed(settings, "k1", "run-b", wait_s=0.3, poll_s=0.05):
                pass
        assert time.perf_counter() - began < 2
        with claims.claimed(settings, "k1", "run-a"):  # its own retry takes it over
            pass
    with claims.claimed(settings, "k1", "run-b", wait_s=0):  # released: free again
        pass


def test_a_stale_claim_of_a_dead_run_is_taken_over(settings):
    uri = claims.claim_uri(settings, "k2")
    Path(uri).parent.mkdir(parents=True)
    Path(uri).write_text('{"owner": "killed-run", "key": "k2"}')
    with claims.claimed(settings, "k2", "run-b", wait_s=0, stale_s=-1):
        assert "run-b" in Path(uri).read_text()
    assert not Path(uri).exists()
