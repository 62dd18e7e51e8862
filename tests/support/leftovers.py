"""What a production stack run may leave behind, and the check that it left nothing: its
processes, its ports, its PostgreSQL databases and its RabbitMQ vhost (shared by the tests of
tests/e2e that start a ``demo.production_stack.ProductionStack``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit


def assert_nothing_left(where: dict) -> None:
    """No process of the run (its broker vhost is in every Airflow component's environment),
    every port it listened on free, its databases and vhost dropped."""
    run = urlsplit(where["broker"]).path.strip("/")
    assert not processes_of(run)
    for name, group in where["process_groups"].items():
        assert not group_alive(group), f"{name}'s process group {group} is still alive"
    for name, port in where["ports"].items():
        with socket.socket() as sock:
            sock.settimeout(1)
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"{name} still listens on {port}"
    assert not [d for d in databases() if d.startswith(run)]
    assert not vhost_exists(run)


def databases() -> list[str]:
    import psycopg2

    connection = psycopg2.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", connect_timeout=10
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            return [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()


def vhost_exists(name: str) -> bool:
    """Connecting to a vhost that is gone is refused (kombu, as Celery would)."""
    from kombu import Connection

    try:
        with Connection(f"amqp://guest:guest@127.0.0.1:5672/{name}", connect_timeout=5) as conn:
            conn.connect()
            return True
    except Exception:  # noqa: BLE001 - amqp's refusal types vary by version
        return False


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def processes_of(run: str) -> list[int]:
    """Processes whose environment names ``run`` (read from /proc, as root can; a process
    that rewrote its title, as Celery's do, shows none: the process groups cover those)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if run.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
