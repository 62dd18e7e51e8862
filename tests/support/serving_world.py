"""A world the model service can serve: feature partitions, an online store, a registry.

Built from ``tests.support.feature_data`` (50 simulated days): the snapshots of ``SERVED - 1``
are materialised into the SQLite online store (or Redis), so transactions of day ``SERVED``
are served current features; models are small HGBs fitted on earlier feature partitions and
registered in an MLflow SQLite registry under the data root. ``ServiceProcess`` runs the real
service (``python -m mlops.serving.app``) with uvicorn on a free loopback port.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from mlops.features.names import FEATURES, LABEL
from mlops.features.online import materialize_day
from mlops.features.store import apply_definitions, feature_store
from mlops.registry.trust import SKOPS_TRUSTED_TYPES, TAG_GATE_OUTCOME, record_digest
from mlops.registry.versions import MODEL_NAME, tracking_scope
from mlops.rollout.live import registry_client
from mlops.settings import Settings
from tests.support.feature_data import day, offline_rows, publish_all, settings_for, transactions

SERVED = day(45)  # transactions of this day are served; the store holds the day before
TRAIN = (day(25), day(40))
EXPERIMENT = "serving-tests"


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
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = offline_rows(root, *TRAIN)
    model = HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
    model.fit(frame[list(FEATURES)], frame[LABEL])
    return register_fitted(tracking_uri, root, model)


def register_fitted(tracking_uri: str, root: Path, model: Any, **log_options: Any) -> str:
    """Log a fitted scikit-learn model (skops) and register it; returns the version.
    ``log_options`` go to ``mlflow.sklearn.log_model`` (``pyfunc_predict_fn``, ...)."""
    import mlflow
    import mlflow.sklearn

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
                skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
                pip_requirements=["scikit-learn"],
                **log_options,
            )
        # what register_candidate records: the gate's approval and the files' digest
        tags = {TAG_GATE_OUTCOME: "approve"}
        version = mlflow.register_model(info.model_uri, MODEL_NAME, tags=tags)
    record_digest(tracking_uri, MODEL_NAME, str(version.version))
    return str(version.version)


class WritesMarker:
    """Unpickling this writes ``marker``: what a malicious pickle could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "unpickled"))


def register_forged_pickle(tracking_uri: str, root: Path, marker: Path) -> str:
    """A cloudpickle "model" whose unpickling writes ``marker``, registered by hand with the
    tags a vouched version carries (the gate's approval, a digest matching its files)."""
    import mlflow
    import mlflow.sklearn

    with tracking_scope(tracking_uri) as client:
        experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.sklearn.log_model(
                WritesMarker(marker),
                name="model",
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn"],
            )
        tags = {TAG_GATE_OUTCOME: "approve"}
        version = mlflow.register_model(info.model_uri, MODEL_NAME, tags=tags)
    record_digest(tracking_uri, MODEL_NAME, str(version.version))
    return str(version.version)


def set_alias(tracking_uri: str, alias: str, version: str) -> None:
    registry_client(tracking_uri).set_registered_model_alias(MODEL_NAME, alias, version)


def register_unloadable(tracking_uri: str, root: Path) -> str:
    """A registered version whose artifacts are gone (a bucket cleaned up too eagerly)."""
    import shutil
    from urllib.parse import urlsplit

    version = register_model(tracking_uri, root, seed=7, max_iter=3)
    client = registry_client(tracking_uri)
    source = client.get_model_version(MODEL_NAME, version).source  # models:/m-...
    logged = client.get_logged_model(source.removeprefix("models:/"))
    shutil.rmtree(urlsplit(logged.artifact_location).path)
    return version


def register_raising(tracking_uri: str, root: Path) -> str:
    """A version that loads but raises on predict: fitted on 14 of the 15 features."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = offline_rows(root, *TRAIN)
    model = HistGradientBoostingClassifier(max_iter=3, random_state=8)
    model.fit(frame[list(FEATURES)[1:]], frame[LABEL])
    return register_fitted(tracking_uri, root, model)


def feast_online_rows(store: Any, customers: list[int], terminals: list[int]) -> list[dict]:
    """Per card and terminal, what ``get_online_features`` gives through the feature service,
    in the direct readers' shape (``mlops.features.online_sqlite.COLUMNS`` per entity)."""
    from mlops.features.names import FEATURE_SERVICE
    from mlops.features.online_sqlite import COLUMNS, VIEWS

    entity_rows = [
        {"CUSTOMER_ID": c, "TERMINAL_ID": t} for c, t in zip(customers, terminals, strict=True)
    ]
    response = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE),
        entity_rows=entity_rows,
        full_feature_names=True,
    ).to_dict()
    out = []
    for i in range(len(entity_rows)):
        out.append(
            {
                entity: {name: response[f"{VIEWS[entity]}__{name}"][i] for name in COLUMNS[entity]}
                for entity in VIEWS
            }
        )
    return out


def every_card_and_terminal() -> tuple[list[int], list[int]]:
    """Card and terminal ids pairing every card and every terminal of the sample world, and
    ids the store never saw (the last pair unknown on both sides)."""
    from tests.support.feature_data import SAMPLE

    customers = [*range(SAMPLE.n_customers), 10**9, -1]
    terminals = [i % SAMPLE.n_terminals for i in range(len(customers))]
    terminals += list(range(len(terminals), SAMPLE.n_terminals)) + [10**9]
    customers += [10**9] * (len(terminals) - len(customers))
    return customers, terminals
