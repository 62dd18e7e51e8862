"""Session-wide test setup: an isolated Airflow, a scratch data root, and real-service fixtures.

Airflow reads its configuration once, when ``airflow`` is first imported, so the environment
below is set at conftest import time: pytest imports this file before any test module.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]

# Settings leaking in from a developer's shell (or from the Makefile's local-run exports)
# would make results depend on who runs the tests; start from a clean slate.
_LEAKY_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "MLOPS_")
for _name in [n for n in os.environ if n.startswith(_LEAKY_PREFIXES)]:
    del os.environ[_name]
os.environ.pop("AIRFLOW_CONFIG", None)

# One scratch directory per session (per worker under xdist), removed at exit.
SESSION_DIR = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
atexit.register(shutil.rmtree, SESSION_DIR, ignore_errors=True)

os.environ.update(
    {
        "AIRFLOW_HOME": str(SESSION_DIR / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{SESSION_DIR / 'airflow.db'}",
        # dag.test() only runs DAGs that live in the configured dags folder (notes §8).
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Not AIRFLOW__CORE__UNIT_TEST_MODE: in 3.3 it swaps in Airflow's own unit_tests.cfg,
        # which turns on create_cron_data_intervals and so changes what a cron schedule
        # means; tests must see the data intervals production sees.
        "GX_ANALYTICS_ENABLED": "false",
        # as in every process of the project: no MLflow loader may unpickle a model
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        "MLOPS_PROFILE": "local",
        "MLOPS_DATA_ROOT": str(SESSION_DIR / "data"),
        # Airflow 3.3.2's dag.test() fails every run of a DAG with a deadline alert that
        # succeeds (its scheduler-side DAG keeps the alerts' definitions where the run's
        # update_state looks up their ids): the DAGs' own are off here; their declaration,
        # the callback and a real scheduler firing one are tested where they are on
        # (tests/dags/test_dag_integrity.py, tests/mlops_airflow/test_alerts.py).
        "MLOPS_FEATURES_DEADLINE_H": "off",
        "MLOPS_MONITORING_DEADLINE_H": "off",
    }
)

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated metadata DB (SQLite in the session dir), built once; dag.test() needs it."""
    from airflow.utils.db import initdb

    initdb()


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def _service_url(env_name: str, default: str, default_port: int, what: str) -> str:
    """The URL of a real service, or skip (fail in CI, where the service must be there)."""
    url = os.environ.get(env_name, default)
    if not _reachable(url, default_port):
        reason = f"{what} not reachable at {url} (set {env_name} to point elsewhere)"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of a real PostgreSQL (trust auth on the dev and CI machines)."""
    return _service_url(
        "TEST_POSTGRES_URL",
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
        5432,
        "PostgreSQL",
    )


@pytest.fixture
def fresh_database(postgres_url: str) -> Iterator[tuple[Any, str, str]]:
    """A new PostgreSQL database for one test, dropped afterwards with its connections:
    (an AUTOCOMMIT admin engine, the database's name, its SQLAlchemy URL)."""
    import sqlalchemy

    name = f"test_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    yield admin, name, postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """AMQP URL of a real RabbitMQ (the Celery broker of the production profile)."""
    return _service_url("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/", 5672, "RabbitMQ")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a real Redis; db 15 so tests never touch db 0 (Feast) or db 1 (Celery)."""
    return _service_url("TEST_REDIS_URL", "redis://127.0.0.1:6379/15", 6379, "Redis")


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """``redis_url``'s database, flushed before and after the test."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """An S3-compatible HTTP server (moto's server mode) on a free loopback port.

    A real HTTP endpoint rather than in-process mocking, so s3fs, boto3 and Airflow's
    S3 hook are exercised exactly as against MinIO in docker-compose.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            mp.setenv(name, "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_connection(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Airflow's ``aws_default`` connection on the session's S3 server; returns the s3fs
    options of the same identity, for a test to read what the tasks wrote."""
    from mlops.io.storage import s3_options

    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3_server, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    return s3_options(endpoint_url=s3_server, key="testing", secret="testing")


@pytest.fixture
def bucket(s3_server: str) -> str:
    """A new, empty bucket on the session's S3 server."""
    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def serving_world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Feature partitions, the SQLite online store as of the served day's eve, and a
    registry with two model versions and no alias yet (tests.support.serving_world)."""
    from tests.support.serving_world import build_world, register_model

    world = build_world(tmp_path_factory.mktemp("serving-world"))
    for seed, max_iter in ((1, 15), (2, 5)):
        register_model(world.settings.mlflow_tracking_uri, world.root, seed=seed, max_iter=max_iter)
    return world


@pytest.fixture(scope="session")
def bad_versions(serving_world: Any) -> dict[str, str]:
    """Two versions of the serving world's registry that cannot serve: ``unloadable`` (its
    artifacts deleted) and ``raising`` (loads, raises on predict)."""
    from tests.support.serving_world import register_raising, register_unloadable

    uri, root = serving_world.settings.mlflow_tracking_uri, serving_world.root
    return {"unloadable": register_unloadable(uri, root), "raising": register_raising(uri, root)}


@pytest.fixture(scope="session")
def deployment_world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Partitions of 50 days and a registry of good, garbage and broken versions
    (tests.support.deployment_world); every test resets the aliases it needs."""
    from tests.support.deployment_world import build_deployment_world

    return build_deployment_world(tmp_path_factory.mktemp("deployment-world"))
