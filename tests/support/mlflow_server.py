"""A real ``mlflow server`` on a fresh PostgreSQL database, as docker-compose runs it, for the
integration tests; started on a free loopback port and stopped with its whole process group
on every exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlops.serving.process import free_port

STARTUP_SECONDS = 180  # up in 28-41 s and ready 20-26 s later, measured on a 2-core host


@contextmanager
def scratch_database(postgres_url: str, prefix: str = "mlflow_test") -> Iterator[str]:
    """A new, empty database on the test PostgreSQL (its SQLAlchemy URL), dropped afterwards
    with its connections; for a fixture of any scope (``fresh_database`` is per test)."""
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
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


def stop_group(server: subprocess.Popen) -> None:
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


class ServerDidNotStart(RuntimeError):
    pass


@contextmanager
def mlflow_server(
    backend_uri: str, artifacts_destination: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``mlflow server`` proxying artifacts to ``artifacts_destination``; yields its URL once
    an API call is answered (``/health`` answers before the worker has opened its stores)."""
    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow_cli), "server", "--backend-store-uri", backend_uri]
    command += ["--artifacts-destination", artifacts_destination, "--serve-artifacts"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    started = time.perf_counter()
    with log.open("wb") as out:
        server = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ | (env or {}),
            start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}"
    ready = f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    try:
        for probe in (f"{uri}/health", ready):
            while not _answers(probe):
                if server.poll() is not None or time.perf_counter() - started > STARTUP_SECONDS:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise ServerDidNotStart(f"mlflow server did not come up at {uri}:\n{tail}")
                time.sleep(0.5)
            print(f"{probe} answered after {time.perf_counter() - started:.1f} s")
        yield uri
    finally:
        stop_group(server)
