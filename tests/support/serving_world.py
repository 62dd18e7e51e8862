"""A world the model service can serve: feature partitions, an online store, a registry.

Built from ``tests.support.feature_data`` (50 simulated days): the snapshots of ``SERVED - 1``
are materialised into the SQLite online store (or Redis), so transactions of day ``SERVED``
are served current features; models are small HGBs fitted on earlier feature partitions and
registered in an MLflow SQLite registry under the data root. ``ServiceProcess`` runs the real
service (``python -m mlops.serving.app``) with uvicorn on a free loopback port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from mlops.features.names import FEATURES, LABEL
from mlops.features.online import materialize_day
from mlops.features.store import apply_definitions, feature_store
from mlops.registry.versions import MODEL_NAME, tracking_scope
from mlops.rollout.live import registry_client
from mlops.settings import Settings
from tests.support.feature_data import day, offline_rows, publish_all, settings_for, transactions

SERVED = day(45)  # transactions of this day are served; the store holds the day before
TRAIN = (day(25), day(40))
EXPERIMENT = "serving-tests"
SKOPS_TRUSTED = [
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
]


@dataclass(frozen=True)
class World:
    root: Path
    settings: Settings
    env: dict[str, str]  # MLOPS_* variables of these settings, for a service process


def build_world(root: Path, **env: str) -> World:
    """Partitions, Feast definitions and the online store as of ``SERVED - 1``."""
    publish_all(root, transactions())
    tracking = f"sqlite:///{root}/mlflow.db"
    values = {"MLFLOW_TRACKING_URI": tracking, **env}
    settings = settings_for(root, **values)
    apply_definitions(settings)
    materialize_day(settings, SERVED - timedelta(days=1), store=feature_store(settings))
    full = {
        "MLOPS_DATA_ROOT": str(root),
        "MLOPS_HISTORY_START": settings.history_start.isoformat(),
        **{f"MLOPS_{k}": v for k, v in values.items()},
    }
    return World(root, settings, full)


def with_redis_online_store(world: World, redis_url: str) -> dict[str, str]:
    """The world's environment with Redis as the online store (its own Feast registry),
    holding the same day as the SQLite store."""
    from mlops.settings import load_settings

    env = {
        **world.env,
        "MLOPS_ONLINE_STORE": "redis",
        "MLOPS_REDIS_URL": redis_url,
        "MLOPS_FEAST_REGISTRY": str(world.root / "feast-redis" / "registry.db"),
    }
    settings = load_settings(env)
    apply_definitions(settings)
    materialize_day(settings, SERVED - timedelta(days=1), store=feature_store(settings))
    return env


def served_transactions(root: Path, on: date = SERVED) -> pd.DataFrame:
    """The offline feature rows of ``on``: the transactions a service answers that day."""
    return offline_rows(root, on, on + timedelta(days=1)).reset_index(drop=True)


def register_model(tracking_uri: str, root: Path, *, seed: int, max_iter: int = 15) -> str:
    """Fit a small HGB on the training window and register it; returns the version."""
    import mlflow
    import mlflow.sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = offline_rows(root, *TRAIN)
    model = HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
    model.fit(frame[list(FEATURES)], frame[LABEL])
    # an experiment of its own with artifacts under the data root: the default experiment of a
    # SQLite registry keeps them in ./mlruns, the caller's working directory
    with tracking_scope(tracking_uri) as client:
        found = client.get_experiment_by_name(EXPERIMENT)
        experiment = (
            found.experiment_id
            if found
            else client.create_experiment(
                EXPERIMENT, artifact_location=(root / "mlartifacts").as_uri()
            )
        )
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format="skops",
                skops_trusted_types=SKOPS_TRUSTED,
                pip_requirements=["scikit-learn"],
            )
        version = mlflow.register_model(info.model_uri, MODEL_NAME)
    return str(version.version)


def set_alias(tracking_uri: str, alias: str, version: str) -> None:
    registry_client(tracking_uri).set_registered_model_alias(MODEL_NAME, alias, version)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request_body(rows: pd.DataFrame) -> dict[str, Any]:
    """``/predict`` body for offline feature rows (keys, time and amount only)."""
    return {
        "transactions": [
            {
                "transaction_id": int(r.TRANSACTION_ID),
                "customer_id": int(r.CUSTOMER_ID),
                "terminal_id": int(r.TERMINAL_ID),
                "tx_datetime": pd.Timestamp(r.TX_DATETIME).isoformat(),
                "tx_amount": float(r.TX_AMOUNT),
            }
            for r in rows.itertuples(index=False)
        ]
    }


class ServiceProcess:
    """``python -m mlops.serving.app`` on a free loopback port, stopped by its process id."""

    def __init__(self, env: dict[str, str], *, poll_s: float = 0.5, **serve: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = {"PORT": str(self.port), "POLL_S": str(poll_s), "LOG_FLUSH_S": "0.2", **serve}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")},
            **env,
            **{f"MLOPS_SERVE_{k}": v for k, v in settings.items()},
            "OMP_NUM_THREADS": "1",
        }
        self.process: subprocess.Popen | None = None
        self.started_s = 0.0
        # a file, not a pipe: a pipe nobody reads would block the service once full
        self.output = tempfile.NamedTemporaryFile(prefix="model-service-", suffix=".log")

    def log(self) -> str:
        return Path(self.output.name).read_text(errors="replace")

    def start(self, timeout_s: float = 600, *, ready: int = 200) -> ServiceProcess:
        """Start and wait until ``/health`` answers ``ready`` (503: up, no champion)."""
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlops.serving.app"],
            env=self.env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        while time.perf_counter() - began < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == ready:
                    self.started_s = time.perf_counter() - began
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"service not ready within {timeout_s} s")

    def stop(self) -> str:
        """SIGTERM (uvicorn shuts down cleanly, flushing the log); returns the output."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
