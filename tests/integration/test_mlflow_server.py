"""The production profile for real: an ``mlflow server`` on PostgreSQL with S3 artifacts.

The server runs as docker-compose runs it (``--artifacts-destination s3://...``, proxied, so
the client needs no storage credentials), on a fresh PostgreSQL database and a bucket of
the session's S3-compatible server; the test then drives the same log / register / alias
flow as the SQLite unit tests, over HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mlops.registry import aliases
from mlops.registry import versions as registry
from mlops.registry.tracking import runs_by_key
from mlops.training.estimators import predict_scores
from tests.support.logged_runs import BROKEN, train_and_log, versions_with_key

pytestmark = pytest.mark.integration
STARTUP_SECONDS = 180  # up in 28-41 s and ready 20-26 s later, measured on a 2-core host


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_database(postgres_url: str) -> Iterator[str]:
    """A new, empty database on the test PostgreSQL, dropped afterwards."""
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    name = f"mlflow_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(url.set(drivername="postgresql").render_as_string(False))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        # psycopg2 explicitly: with SQLAlchemy 2.1 a bare postgresql:// means psycopg 3
        yield url.set(drivername="postgresql+psycopg2", database=name).render_as_string(False)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(server: subprocess.Popen) -> None:
    """The server, its workers and its job runner: the whole process group it leads."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
            server.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def mlflow_server(
    mlflow_database: str, s3_server: str, bucket: str, tmp_path: Path
) -> Iterator[str]:
    port = _free_port()
    log = tmp_path / "mlflow-server.log"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow_cli), "server", "--backend-store-uri", mlflow_database]
    command += ["--artifacts-destination", f"s3://{bucket}/mlflow", "--serve-artifacts"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = os.environ | {"MLFLOW_S3_ENDPOINT_URL": s3_server}
    started = time.perf_counter()
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    uri = f"http://127.0.0.1:{port}"
    # /health answers before the worker has opened its stores; the first API call does that
    # (20-26 s measured on a loaded host), so readiness is an answered API call
    ready = f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    try:
        for probe in (f"{uri}/health", ready):
            while not _answers(probe):
                if server.poll() is not None or time.perf_counter() - started > STARTUP_SECONDS:
                    tail = log.read_text(errors="replace")[-3000:]
                    pytest.fail(f"mlflow server did not come up at {uri}:\n{tail}")
                time.sleep(0.5)
            print(f"{probe} answered after {time.perf_counter() - started:.1f} s")
        yield uri
    finally:
        _stop(server)


def test_log_register_and_alias_flow_against_a_real_server(mlflow_server: str) -> None:
    import mlflow

    uri = mlflow_server
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    started = time.perf_counter()
    first = train_and_log(uri, "2018-08-08")
    v1 = registry.register_candidate(uri, first.logged.run_id)
    # a rerun of the same date replaces run and version, over HTTP too
    rerun = train_and_log(uri, "2018-08-08", max_iter=25)
    v2 = registry.register_candidate(uri, rerun.logged.run_id)
    experiment = client.get_experiment_by_name("fraud_model").experiment_id
    runs = runs_by_key(client, experiment, rerun.logged.run_key)
    assert [r.info.run_id for r in runs] == [rerun.logged.run_id]
    assert versions_with_key(client, rerun.logged.run_key) == [v2.version] != [v1.version]
    assert client.get_run(rerun.logged.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    files = {f.path for f in client.list_artifacts(rerun.logged.run_id, "gate")}
    assert files == {"gate/decision_record.json", "gate/model_card.md"}
    # approve -> challenger -> champion, and the champion loads back through the proxy
    assert aliases.apply_decision(uri, "approve", v2.version).changed
    assert aliases.promote_challenger(uri, expected_version=v2.version).changed
    assert aliases.champion_version(uri) == v2.version
    loaded = registry.load_model(uri, "champion")
    expected = predict_scores(rerun.model, rerun.evaluation)
    np.testing.assert_array_equal(predict_scores(loaded, rerun.evaluation), expected)
    # a rejected candidate for the next date gets a version but never an alias
    before = aliases.alias_state(uri)
    rejected = train_and_log(uri, "2018-08-15", behaviour=BROKEN)
    v3 = registry.register_candidate(uri, rejected.logged.run_id)
    assert v3.gate_outcome == "reject"
    assert not aliases.apply_decision(uri, v3.gate_outcome, v3.version).changed
    assert aliases.alias_state(uri) == before
    print(f"flow against the server: {time.perf_counter() - started:.1f} s")
