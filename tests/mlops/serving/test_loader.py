"""The service's loader process: registry reads and model loads done in a child, the scorer
rebuilt in the caller equal to the registered model; every call bounded, the child replaced
after a crash or a silence, and gone when the process that started it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mlops.features.names import FEATURES
from mlops.registry.trust import UntrustedModel
from mlops.rollout.live import load_version
from mlops.serving.loader import LoaderError, LoaderProcess
from tests.support.serving_world import (
    register_forged_pickle,
    served_transactions,
    set_alias,
)

MODEL = "fraud_model"


def _gone(pid: int, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if _zombie(pid):
            return True
        time.sleep(0.05)
    return False


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture(scope="module")
def loader(serving_world):
    """One child for the module (each start imports MLflow and skops: seconds)."""
    uri = serving_world.settings.mlflow_tracking_uri
    process = LoaderProcess(uri, MODEL, timeout_s=120)
    yield process
    process.stop()


def test_live_and_load_give_the_registered_model_s_scores(serving_world, loader):
    uri = serving_world.settings.mlflow_tracking_uri
    set_alias(uri, "champion", "1")
    assert loader.live().champion == "1"
    scorer = loader.load(uri, MODEL, "1")
    model = load_version(uri, MODEL, "1")
    rows = served_transactions(serving_world.root)
    values = rows[list(FEATURES)].to_numpy(dtype=np.float64)
    one_by_one = np.concatenate([scorer.scores(values[i : i + 1]) for i in range(len(values))])
    expected = model.predict_proba(rows[list(FEATURES)])[:, 1]
    np.testing.assert_allclose(one_by_one, expected, rtol=0, atol=1e-9)
    assert scorer.fast is not None and scorer.version == "1"


def test_stop_ends_the_child_and_later_calls_fail(serving_world):
    loader = LoaderProcess(serving_world.settings.mlflow_tracking_uri, MODEL, timeout_s=120)
    loader.start()
    child = loader.pid
    loader.stop()
    assert child is not None and _gone(child)
    with pytest.raises(LoaderError, match="stopped"):
        loader.live()


def test_a_refusal_crosses_as_itself_and_nothing_is_unpickled(serving_world, loader, tmp_path):
    uri = serving_world.settings.mlflow_tracking_uri
    marker = tmp_path / "unpickled"
    forged = register_forged_pickle(uri, serving_world.root, marker)
    with pytest.raises(UntrustedModel, match=f"fraud_model v{forged} refused") as refused:
        loader.load(uri, MODEL, forged)
    assert refused.value.version == forged and not marker.exists()


def test_a_dead_child_is_replaced_on_the_next_call(serving_world, loader):
    first = loader.live()
    child = loader.pid
    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while loader.pid is not None and time.monotonic() < deadline:  # reaped: seen dead
        time.sleep(0.05)
    assert loader.live() == first
    assert loader.pid not in (None, child)


def test_a_silent_child_is_killed_when_the_call_times_out(serving_world):
    uri = serving_world.settings.mlflow_tracking_uri
    silent = LoaderProcess(uri, MODEL, timeout_s=1.0, worker="tests.support.silent_loader")
    try:
        began = time.monotonic()
        with pytest.raises(LoaderError, match="no answer to live in 1 s"):
            silent.live()
        assert time.monotonic() - began < 10
        assert silent.pid is None  # killed; the next call starts another
    finally:
        silent.stop()


PARENT = """
import sys, time
from mlops.serving.loader import LoaderProcess
loader = LoaderProcess(sys.argv[1], "fraud_model", timeout_s=120)
loader.live()
print(loader.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_child_ends_with_the_process_that_started_it(serving_world, how):
    uri = serving_world.settings.mlflow_tracking_uri
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, uri], stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(parent.stdout.readline())
        parent.send_signal(how)
        parent.wait(timeout=30)
        assert _gone(child)
    finally:
        parent.kill()
        parent.wait()


def test_a_version_that_cannot_score_is_refused_by_the_loader(serving_world, bad_versions, loader):
    uri = serving_world.settings.mlflow_tracking_uri
    with pytest.raises(ValueError, match="feature names"):
        loader.load(uri, MODEL, bad_versions["raising"])
    assert loader.live() is not None  # the same child answers on
