"""The model registry: one version per training key, and loading a version back.

A version that serves (``champion``/``previous``, see ``mlops.registry.aliases``) is never
deleted by a rerun of its key, only marked superseded, so production never changes under a
backfill. The registry knows nothing of the gate: the outcome arrives as a run tag. Each
version records the sha256 of its files, and loads only through ``mlops.registry.trust``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops.registry import trust
from mlops.registry.trust import TAG_GATE_OUTCOME

MODEL_NAME = "fraud_model"
SERVING_ALIASES = ("champion", "previous")  # versions behind these are never deleted
TAG_RUN_KEY = "mlops.run_key"
TAG_SUPERSEDED = "mlops.superseded_run_key"
TAG_SUPERSEDED_BY = "mlops.superseded_by"
DECISION_RECORD = "gate/decision_record.json"
MODEL_CARD = "gate/model_card.md"


@contextmanager
def tracking_scope(tracking_uri: str) -> Iterator[Any]:
    """MLflow's fluent API (tracking and registry) on ``tracking_uri``, and a client on it.

    The previous URIs and ``MLFLOW_*_URI`` variables (``set_tracking_uri`` rewrites them) are
    restored exactly. Not thread-safe (MLflow keeps one per process); Airflow runs one task
    per process."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from mlops.registry.mlflow_http import bound_http_calls

    bound_http_calls()
    if tracking_uri.startswith("sqlite:///"):  # SQLite does not create the folder
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    saved_env = {n: os.environ.get(n) for n in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def serving_versions(client: Any, run_id: str) -> list[str]:
    """``name/version`` of the run's versions that serve or are the rollback target."""
    found = client.search_model_versions(f"run_id = '{run_id}'")
    full = [client.get_model_version(mv.name, mv.version) for mv in found]  # search: no aliases
    return [f"{mv.name}/{mv.version}" for mv in full if set(mv.aliases) & set(SERVING_ALIASES)]


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    run_key: str
    gate_outcome: str
    reused: bool
    replaced_versions: tuple[str, ...]
    superseded_versions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _retire_versions(client: Any, name: str, old: list[Any], keep: Any) -> tuple[list, list]:
    from mlflow.exceptions import MlflowException

    deleted, superseded = [], []
    for mv in old:
        version = str(mv.version)
        if set(client.get_model_version(name, version).aliases) & set(SERVING_ALIASES):
            client.set_model_version_tag(name, version, TAG_SUPERSEDED, mv.tags[TAG_RUN_KEY])
            client.set_model_version_tag(name, version, TAG_SUPERSEDED_BY, str(keep.version))
            client.delete_model_version_tag(name, version, TAG_RUN_KEY)
            superseded.append(version)
        else:
            client.delete_model_version(name, version)  # a challenger alias goes with it
            if mv.source.startswith("models:/m-") and mv.source != keep.source:
                with suppress(MlflowException):  # gone already with an earlier attempt
                    client.delete_logged_model(mv.source.removeprefix("models:/"))
            deleted.append(version)
    return deleted, superseded


def register_candidate(
    tracking_uri: str, run_id: str, model_name: str = MODEL_NAME
) -> RegisteredVersion:
    """Register the run's model as the one version of its run key (see the module doc).

    Everything comes from the run (key, gate outcome, lineage tags, the LoggedModel), so an
    Airflow task passes only the run id, and the version and its run can never disagree.
    """
    import mlflow

    with tracking_scope(tracking_uri) as client:
        run = client.get_run(run_id)
        key = run.data.tags.get(TAG_RUN_KEY)
        outputs = run.outputs.model_outputs if run.outputs else []
        if not key or "'" in key or len(outputs) != 1:
            raise ValueError(f"run {run_id} has no usable {TAG_RUN_KEY} tag or not one model")
        # the lineage tags travel with the version: the registry alone says where it came from
        tags = {k: v for k, v in run.data.tags.items() if k.startswith(("mlops.", "airflow."))}
        tags = {k: v for k, v in tags.items() if v and k != "mlops.replaces"}
        if tags.get(TAG_GATE_OUTCOME, "pending") != "pending":
            tags["mlops.decision_record"] = f"runs:/{run_id}/{DECISION_RECORD}"
        query = f"name = '{model_name}' and tags.`{TAG_RUN_KEY}` = '{key}'"
        existing = client.search_model_versions(query, order_by=["version_number"])
        keep = next((mv for mv in existing if mv.run_id == run_id), None)
        if keep is None:
            keep = mlflow.register_model(f"models:/{outputs[0].model_id}", model_name, tags=tags)
        else:
            for tag, value in tags.items():
                client.set_model_version_tag(model_name, keep.version, tag, value)
        # searched again, after: a create whose answer was lost (the server went down after
        # committing) is retried by MLflow's client and leaves a second version of the run
        now = client.search_model_versions(query, order_by=["version_number"])
        old = [mv for mv in now if str(mv.version) != str(keep.version)]
        deleted, superseded = _retire_versions(client, model_name, old, keep)
    trust.record_digest(tracking_uri, model_name, str(keep.version))  # a reused one too
    return RegisteredVersion(
        name=model_name,
        version=str(keep.version),
        run_id=run_id,
        run_key=key,
        gate_outcome=tags.get(TAG_GATE_OUTCOME, "pending"),
        reused=any(mv.run_id == run_id for mv in existing),
        replaced_versions=tuple(deleted),
        superseded_versions=tuple(superseded),
    )


def load_model(tracking_uri: str, alias: str = "champion", model_name: str = MODEL_NAME) -> Any:
    """The scikit-learn pipeline behind ``models:/<name>@<alias>``; a number loads that version
    (resolve an alias once, then load by number, to know exactly what is served). Only a
    version the registry vouches for loads (``mlops.registry.trust``, ``UntrustedModel``)."""
    version = str(alias)
    if not version.isdigit():
        with tracking_scope(tracking_uri) as client:
            version = str(client.get_model_version_by_alias(model_name, alias).version)
    return trust.load_trusted(tracking_uri, model_name, version)
