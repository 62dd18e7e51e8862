"""The production profile on one host, as processes: what docker-compose.yaml runs, without Docker.

Every component gets its environment from the compose file's ``environment:`` blocks (read
by ``mlops.manifests.environment``), each service name moved to where it runs here:

| compose service | here |
|---|---|
| ``postgres`` | the host's PostgreSQL (127.0.0.1:5432); fresh databases ``<run>_airflow``, ``<run>_mlflow``, ``<run>_mlops`` |
| ``rabbitmq`` | the host's RabbitMQ (127.0.0.1:5672, guest); a fresh vhost ``<run>`` |
| ``redis`` | the host's Redis (127.0.0.1:6379); db 14, flushed before and after |
| ``minio`` | moto's S3 server on a free loopback port (buckets ``mlops`` and ``mlflow``) |
| ``mlflow`` | ``mlflow server`` (PostgreSQL store, artifacts proxied to S3) |
| ``airflow-*`` | api-server, scheduler, dag-processor, triggerer and one Celery worker (concurrency 2) |
| ``model-service`` | ``python -m mlops.serving.app`` with only its own block (no AWS or Airflow secret) |

What this host adds to a block is listed in ``HOST_ONLY`` (paths, ports, the world's dates,
speed knobs); a test holds the rest equal to compose. ``stop()`` (also on SIGTERM, and on
the driver's death through the parent-death signal) stops every process and drops what it
created.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from demo.airflow_stack import (
    REPO,
    SCHEDULING_SPEED,
    AirflowStack,
    StackError,
    free_port,
    kill_session,
)
from mlops.manifests.environment import (
    AIRFLOW_SERVICE,
    MLFLOW_SERVICE,
    MODEL_SERVICE,
    Endpoint,
    relocated_environment,
)

POSTGRES, REDIS, RABBITMQ = ("127.0.0.1", 5432), ("127.0.0.1", 6379), ("127.0.0.1", 5672)


def _address(host_port: tuple[str, int]) -> str:
    return f"{host_port[0]}:{host_port[1]}"


REDIS_DB = "14"  # tests use 15, the interrupt tests 13; 0 stays free for whatever else runs here
ADMIN_PASSWORD_FILE = "admin-password.json"
BUCKETS = ("mlops", "mlflow")
WORKER_CONCURRENCY = 2
# What a restarted scheduler needs to recover in seconds, not minutes: it adopts a dead
# scheduler's task instances at its next orphan check once the dead one is 30 s silent
# (checked every 10 s, 300 s by default), and requeues a task the dead one queued but never
# sent to the broker after 90 s (600 s by default; with parallelism 2 nothing waits longer).
SCHEDULER_RECOVERY = {
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
}
CREATED_FILE = "created-stores.json"
BIN = Path(sys.executable).parent

# What this host sets beyond the compose blocks, and why: a test keeps this list closed.
HOST_ONLY = {
    AIRFLOW_SERVICE: {
        "AIRFLOW_HOME": "the stack's home instead of the image's /opt/airflow",
        "AIRFLOW__CORE__DAGS_FOLDER": "the checkout instead of the bind mount",
        "AIRFLOW__CORE__PLUGINS_FOLDER": "the checkout instead of the bind mount",
        "AIRFLOW__API__HOST": "loopback instead of the container's interfaces",
        "AIRFLOW__API__PORT": "a free port",
        "AIRFLOW__API__BASE_URL": "the free port",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "a free port (one host, many servers)",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "a free port",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": "a free port",
        "AIRFLOW__CORE__PARALLELISM": "the worker's concurrency",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "speed: simulated days land fast",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "speed",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "speed",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "speed",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "speed: a finished task frees its slot",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2 cores",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "speed",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "DAG files do not change",
        "MLOPS_PRELOAD": "the worker imports the task modules once, before it forks",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "so that the preload plugin runs in the worker",
    },
    MLFLOW_SERVICE: {},
    MODEL_SERVICE: {
        "MLOPS_SERVE_HOST": "loopback instead of the container's interfaces",
        "MLOPS_SERVE_PORT": "a free port",
        "MLOPS_SERVE_POLL_S": "alias moves seen within a second",
        "MLOPS_SERVE_LOG_FLUSH_S": "rows in the log before the day is scored",
    },
}
# From the process environment, for the programs themselves to run (not settings).
PROCESS_BASICS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")


def reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


def compose_variables() -> dict[str, str]:
    """The .env of this run: fresh secrets, and the host services' own accounts."""
    return {
        "POSTGRES_USER": "postgres",  # trust auth: the password is not checked
        "POSTGRES_PASSWORD": "unused",
        "RABBITMQ_USER": "guest",
        "RABBITMQ_PASSWORD": "guest",
        "MINIO_ROOT_USER": "e2e-" + secrets.token_hex(4),  # moto takes any key
        "MINIO_ROOT_PASSWORD": secrets.token_urlsafe(24),
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(32),
        "MODEL_SERVICE_TOKEN": secrets.token_urlsafe(32),  # the model service's bearer token
    }


class ProductionStack(AirflowStack):
    """PostgreSQL, RabbitMQ, Redis, S3, MLflow, Airflow on Celery and the model service."""

    components = ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker")

    def __init__(
        self,
        home: Path,
        *,
        world: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        redis_db: str = REDIS_DB,
    ) -> None:
        """``world``: the simulated world's settings; ``env``: anything else on top (a
        benchmark's own DAG folder, say); ``redis_db``: the online store's database, flushed
        at the start and the end (two stacks side by side need two)."""
        self.run = "e2e_" + uuid.uuid4().hex[:10]
        self.redis_db = redis_db
        self.ports = {name: free_port() for name in ("s3", "mlflow", "api", "service")}
        self.ports |= {name: free_port() for name in ("worker_logs", "trigger_logs", "health")}
        self.variables = compose_variables()
        self.world = dict(world or {})
        self.services: dict[str, subprocess.Popen] = {}
        self.created: list[str] = []
        super().__init__(home, env=env, port=self.ports["api"], parallelism=WORKER_CONCURRENCY)
        self.mlflow_url = f"http://127.0.0.1:{self.ports['mlflow']}"
        self.s3_url = f"http://127.0.0.1:{self.ports['s3']}"
        self.service_url = f"http://127.0.0.1:{self.ports['service']}"
        # what a caller of /predict or /metrics sends (the token is this run's, fresh)
        self.service_headers = {"Authorization": f"Bearer {self.variables['MODEL_SERVICE_TOKEN']}"}

    # ---------------------------------------------------------------- environments
    def endpoints(self) -> dict[str, Endpoint]:
        databases = {name: f"{self.run}_{name}" for name in ("airflow", "mlflow", "mlops")}
        return {
            "postgres": Endpoint(_address(POSTGRES), databases),
            "rabbitmq": Endpoint(_address(RABBITMQ), {"mlops": self.run}),
            "redis": Endpoint(_address(REDIS), {"0": self.redis_db}),
            "minio": Endpoint(f"127.0.0.1:{self.ports['s3']}"),
            "mlflow": Endpoint(f"127.0.0.1:{self.ports['mlflow']}"),
            "airflow-apiserver": Endpoint(f"127.0.0.1:{self.ports['api']}"),
        }

    def compose_block(self, service: str) -> dict[str, str]:
        return relocated_environment(service, self.variables, self.endpoints())

    def host_settings(self, service: str) -> dict[str, str]:
        """The values of ``HOST_ONLY[service]``."""
        if service == MODEL_SERVICE:
            return {
                "MLOPS_SERVE_HOST": "127.0.0.1",
                "MLOPS_SERVE_PORT": str(self.ports["service"]),
                "MLOPS_SERVE_POLL_S": "0.5",
                "MLOPS_SERVE_LOG_FLUSH_S": "0.2",
            }
        if service == MLFLOW_SERVICE:
            return {}
        url = f"http://127.0.0.1:{self.port}"
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.ports["worker_logs"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.ports["trigger_logs"]),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.ports["health"]),
            "AIRFLOW__CORE__PARALLELISM": str(WORKER_CONCURRENCY),
            **SCHEDULING_SPEED,
        }

    def service_env(self, service: str) -> dict[str, str]:
        """A non-Airflow component's whole environment: its block, this host's additions,
        and what a program needs to run at all."""
        basics = {k: os.environ[k] for k in PROCESS_BASICS if k in os.environ}
        return {**basics, **self.compose_block(service), **self.host_settings(service)}

    def environment(self, parallelism: int, extra: Mapping[str, str]) -> dict[str, str]:
        basics = {k: os.environ[k] for k in PROCESS_BASICS if k in os.environ}
        return {
            **basics,
            **self.compose_block(AIRFLOW_SERVICE),
            **self.host_settings(AIRFLOW_SERVICE),
            **self.world,
            **extra,
        }

    def component_env(self, component: str) -> dict[str, str]:
        """Only the worker preloads the task modules: its pool forks run the tasks."""
        if component == "celery worker":
            return {**self.env, "MLOPS_PRELOAD": "1", "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False"}
        return {**self.env, "MLOPS_PRELOAD": "0"}

    def component_args(self, component: str) -> list[str]:
        if component == "celery worker":
            return ["--concurrency", str(WORKER_CONCURRENCY), "--without-gossip"]
        return []

    # ---------------------------------------------------------------- users
    @property
    def password_file(self) -> Path:
        """The password of the FAB user ``admin``, fresh each run (``login`` reads it)."""
        return self.home / ADMIN_PASSWORD_FILE

    def migrate(self) -> None:
        """The metadata DB (FAB's tables too), then the Approver role and the user admin."""
        super().migrate()
        log = self.log_dir / "airflow-users.log"
        env = {
            **self.env,
            "MLOPS_ADMIN_PASSWORD": json.loads(self.password_file.read_text())["admin"],
        }
        with log.open("w") as out:
            done = subprocess.run(
                [sys.executable, "-m", "demo.airflow_users"],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        if done.returncode:
            raise StackError(f"creating the Airflow users failed ({done.returncode}); see {log}")

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 300) -> ProductionStack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        missing = [
            f"{name} at {host}:{port}"
            for name, (host, port) in (("PostgreSQL", POSTGRES), ("Redis", REDIS))
            + (("RabbitMQ", RABBITMQ),)
            if not reachable((host, port))
        ]
        if missing:
            raise StackError(f"not reachable: {', '.join(missing)}")
        self.password_file.write_text(json.dumps({"admin": secrets.token_urlsafe(16)}))
        self.watch()
        try:
            self._create_stores()
            self._start_s3()
            self._start_mlflow()
        except BaseException:
            self.stop()
            raise
        return super().start(timeout)  # stops everything itself when it fails

    def _create_stores(self) -> None:
        import redis

        for name in self.endpoints()["postgres"].renames.values():
            _postgres(f'CREATE DATABASE "{name}"')
            self._created(f"database {name}")
        _vhost("add", self.run)
        self._created(f"vhost {self.run}")
        client = redis.Redis(host=REDIS[0], port=REDIS[1], db=int(self.redis_db), socket_timeout=5)
        client.flushdb()
        client.close()

    def _created(self, item: str) -> None:
        """Remembered in the home too: a driver killed with SIGKILL cannot drop what it
        made, so the next run on the same home does (``sweep``)."""
        self.created.append(item)
        (self.home / CREATED_FILE).write_text(json.dumps(self.created))

    @classmethod
    def sweep(cls, home: Path) -> list[str]:
        """Drop the databases and vhost a killed run on ``home`` left behind; what was dropped."""
        record = Path(home) / CREATED_FILE
        if not record.is_file():
            return []
        leftover = json.loads(record.read_text())
        _drop(leftover)
        record.unlink()
        return leftover

    def _start_s3(self) -> None:
        import boto3

        argv = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.ports["s3"])]
        self._start_service("s3", argv, {k: os.environ[k] for k in ("PATH", "HOME")})
        _wait_for(lambda: reachable(("127.0.0.1", self.ports["s3"])), 60, "moto S3 server")
        env = self.compose_block(AIRFLOW_SERVICE)
        client = boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        for bucket in BUCKETS:
            client.create_bucket(Bucket=bucket)

    def _start_mlflow(self) -> None:
        argv = [
            str(BIN / "mlflow"), "server", "--serve-artifacts", "--host", "127.0.0.1",
            "--port", str(self.ports["mlflow"]), "--workers", "1",
        ]  # fmt: skip
        self._start_service("mlflow", argv, self.service_env(MLFLOW_SERVICE))
        _wait_for(lambda: _answers(f"{self.mlflow_url}/health"), 180, "MLflow server")

    def start_model_service(self, timeout: float = 300) -> None:
        """The service: up at once, ready (``/health`` 200) when a champion is loaded."""
        argv = [sys.executable, "-m", "mlops.serving.app"]
        self._start_service("model-service", argv, self.service_env(MODEL_SERVICE))
        _wait_for(lambda: _answers(f"{self.service_url}/live"), timeout, "model service")

    def _start_service(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        self.services[name] = self.spawn(argv, env, self.log_dir / f"{name}.log")

    def check_alive(self) -> None:
        super().check_alive()
        for name, process in self.services.items():
            if process.poll() is not None:
                log = self.log_dir / f"{name}.log"
                raise StackError(f"{name} exited ({process.returncode}); see {log}")

    def stop_components(self, grace: float) -> None:
        """Airflow first (no task left to call the rest), then the services, then the
        databases, vhost and Redis keys of this run."""
        try:
            super().stop_components(grace)
        finally:
            for name in ("model-service", "mlflow", "s3"):
                if process := self.services.pop(name, None):
                    _stop(process, grace)
            self._drop_stores()

    def _drop_stores(self) -> None:
        import redis

        _drop(self.created)
        self.created.clear()
        (self.home / CREATED_FILE).unlink(missing_ok=True)
        try:
            client = redis.Redis(
                host=REDIS[0], port=REDIS[1], db=int(self.redis_db), socket_timeout=5
            )
            client.flushdb()
            client.close()
        except redis.RedisError as err:
            print(f"could not flush Redis db {self.redis_db}: {err}", file=sys.stderr)

    # ---------------------------------------------------------------- reports
    def where(self) -> dict[str, Any]:
        env = self.env
        return {
            "executor": env["AIRFLOW__CORE__EXECUTOR"],
            "broker": _redacted(env["AIRFLOW__CELERY__BROKER_URL"]),
            "metadata_db": _redacted(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]),
            "mlflow": env["MLOPS_MLFLOW_TRACKING_URI"],
            "s3_endpoint": env["MLOPS_S3_ENDPOINT_URL"],
            "data_root": env["MLOPS_DATA_ROOT"],
            "buckets": list(BUCKETS),
            "online_store": f"redis db {self.redis_db}",
            "prediction_log": _redacted(env["MLOPS_PREDICTION_LOG_URL"]),
            "model_service": self.service_url,
            "airflow": self.url,
            "ports": dict(self.ports),
            # each component leads its own process group (its workers and tasks inside)
            "process_groups": {
                name: process.pid for name, process in {**self.processes, **self.services}.items()
            },
        }


def _redacted(url: str) -> str:
    from mlops.features.store import redacted

    return redacted(url)


def _drop(created: list[str]) -> None:
    for item in reversed(created):
        kind, name = item.split(" ", 1)
        try:
            if kind == "vhost":
                _vhost("delete", name)
            else:
                _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as err:  # noqa: BLE001 - the rest must still be dropped
            print(f"could not drop {item}: {err}", file=sys.stderr)


def _postgres(statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(
        host=POSTGRES[0], port=POSTGRES[1], user="postgres", dbname="postgres", connect_timeout=10
    )
    try:
        connection.autocommit = True  # CREATE/DROP DATABASE refuse a transaction block
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


def _vhost(action: str, name: str) -> None:
    """Add (with the guest user's permissions) or delete a RabbitMQ vhost: ``rabbitmqctl`` on
    the broker's host, else the management API (a broker in a container, as on CI)."""
    if shutil.which("rabbitmqctl"):
        commands = [["add_vhost", name], ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]]
        for args in commands if action == "add" else [["delete_vhost", name]]:
            done = subprocess.run(
                ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
            )
            if done.returncode:
                raise StackError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip()[:300]}")
        return
    api = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")
    auth = ("guest", "guest")
    try:
        if action == "add":
            httpx.put(f"{api}/api/vhosts/{name}", auth=auth, timeout=30).raise_for_status()
            grant = {"configure": ".*", "write": ".*", "read": ".*"}
            url = f"{api}/api/permissions/{name}/guest"
            httpx.put(url, json=grant, auth=auth, timeout=30).raise_for_status()
        else:
            httpx.delete(f"{api}/api/vhosts/{name}", auth=auth, timeout=30).raise_for_status()
    except httpx.HTTPError as err:
        raise StackError(
            f"cannot {action} the RabbitMQ vhost {name}: no rabbitmqctl here, and the "
            f"management API at {api} answered {err} (set RABBITMQ_MANAGEMENT_URL)"
        ) from err


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def _wait_for(ready: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise StackError(f"{what} not ready within {timeout:.0f} s")


def _stop(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process group, wait ``grace`` seconds, then SIGKILL whatever is left."""
    import signal

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    try:  # until what the group's SIGKILL reached is gone, not merely signalled
        kill_session(process.pid)
    except StackError as err:
        print(err, file=sys.stderr)
