"""MLflow tracking of training runs: one run per (DAG, logical date), replaced on a rerun.

Every run carries a deterministic key (``mlops.run_key = "model_training/2018-08-08"``) and
a rerun replaces the runs under its key rather than reusing one: MLflow refuses to change a
logged param, appends metrics to a history instead of overwriting them, and each
``log_model`` adds a LoggedModel, so a reused run would fail on the first changed
hyperparameter or mix two attempts. The fresh run is logged completely first (a failure
leaves the old one in place); the replaced runs and their unregistered models are then
soft-deleted (``mlflow gc`` purges, ``mlflow runs restore`` undoes), except a run whose model
serves (``champion``/``previous``), which is kept as the live model's audit trail and only
trades its key tag for ``mlops.superseded_run_key``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from mlops.features.names import FEATURE_SERVICE, FEATURES, LABEL
from mlops.registry import versions as registry
from mlops.registry.trust import SKOPS_TRUSTED_TYPES
from mlops.registry.versions import TAG_GATE_OUTCOME, TAG_RUN_KEY, tracking_scope

EXPERIMENT = "fraud_model"
_PINNED = ("scikit-learn", "skops", "numpy", "pandas", "scipy")
_DIGEST_CHARS = 32  # MLflow keeps dataset digests in a String(36) column


def _day(value: date | datetime | str) -> date:
    return date.fromisoformat(str(value)[:10])  # a date, datetime, pendulum or ISO string


@dataclass(frozen=True)
class RunContext:
    """Who asked for the training and as of when: the run's key and its lineage tags."""

    dag_id: str
    logical_date: date
    airflow_run_id: str = ""
    feature_service: str = FEATURE_SERVICE
    code_version: str = ""  # "" resolves to the git commit, else the package version

    def __post_init__(self) -> None:
        object.__setattr__(self, "logical_date", _day(self.logical_date))
        if not self.dag_id or "'" in self.dag_id:  # the key goes into search filters
            raise ValueError(f"invalid dag_id {self.dag_id!r}")

    @property
    def run_key(self) -> str:
        return f"{self.dag_id}/{self.logical_date.isoformat()}"


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    """A frame the model saw, fingerprinted by its partitions (name -> manifest sha256):
    the run names its exact inputs without uploading them."""

    name: str
    frame: Any = field(repr=False)
    partitions: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def digest(self) -> str | None:
        """Order-independent digest of the partitions; None lets MLflow hash the frame."""
        canonical = json.dumps(dict(self.partitions), sort_keys=True, default=str).encode()
        return hashlib.sha256(canonical).hexdigest()[:_DIGEST_CHARS] if self.partitions else None


@dataclass(frozen=True)
class GateVerdict:
    """The gate's outcome as the registry keeps it: the outcome tag, and ``render``, which
    turns the run's metadata into documents (artifact path -> text, e.g. the decision record
    at ``versions.DECISION_RECORD``). The metadata (run id, dataset digests) exists only once
    the run is logged, hence a function; the registry never imports the gate, the stage that
    runs both (``mlops.training.job``) builds this from a ``GateDecision``."""

    outcome: str
    render: Callable[[Mapping[str, Any]], Mapping[str, str]] = field(repr=False)


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    run_key: str
    model_uri: str
    gate_outcome: str
    replaced_run_ids: tuple[str, ...]
    superseded_run_ids: tuple[str, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@functools.cache
def code_version() -> str:
    """The git commit (``+dirty`` if modified) when running from the source tree, else the
    package version; never the commit of some unrelated repository around an install."""
    repo = Path(__file__).resolve().parents[3]  # <repo>/include/mlops/registry/tracking.py
    cmd = ["git", "describe", "--always", "--dirty=+dirty", "--abbrev=40", "--exclude=*"]
    if (repo / ".git").exists():
        with suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                return f"git:{out.stdout.strip()}"
    with suppress(metadata.PackageNotFoundError):
        return f"mlops-fraud=={metadata.version('mlops-fraud')}"
    return "unknown"


def default_artifact_location(tracking_uri: str) -> str | None:
    """Beside a SQLite DB, not MLflow's ``./mlruns`` in whatever cwd a worker has; None for a
    server, which proxies artifacts to its ``--artifacts-destination``."""
    if tracking_uri.startswith("sqlite:///"):
        return str(Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts")
    return None


def ensure_experiment(client: Any, name: str, artifact_location: str | None = None) -> str:
    """The experiment's id, created if missing; safe when two tasks race to create it."""
    from mlflow.exceptions import MlflowException

    if found := client.get_experiment_by_name(name):
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        if found := client.get_experiment_by_name(name):
            return found.experiment_id
        raise


def runs_by_key(client: Any, experiment_id: str, run_key: str) -> list[Any]:
    """Active runs (finished, failed or running) carrying ``run_key``, oldest first."""
    query = f"tags.`{TAG_RUN_KEY}` = '{run_key}'"
    return list(client.search_runs([experiment_id], query, order_by=["attributes.start_time"]))


def _retire_runs(client: Any, runs: list[Any], new_run_id: str) -> tuple[list[str], list[str]]:
    deleted, superseded = [], []
    for run in runs:
        run_id = run.info.run_id
        if registry.serving_versions(client, run_id):
            client.set_tag(run_id, registry.TAG_SUPERSEDED, run.data.tags[TAG_RUN_KEY])
            client.set_tag(run_id, registry.TAG_SUPERSEDED_BY, new_run_id)
            client.delete_tag(run_id, TAG_RUN_KEY)
            superseded.append(run_id)
            continue
        registered = {mv.source for mv in client.search_model_versions(f"run_id = '{run_id}'")}
        for output in run.outputs.model_outputs if run.outputs else ():
            if f"models:/{output.model_id}" not in registered:  # versions: the registry's job
                client.delete_logged_model(output.model_id)
        client.delete_run(run_id)
        deleted.append(run_id)
    return deleted, superseded


def _log_dataset(client: Any, run_id: str, spec: DatasetSpec, context: str) -> Any:
    import mlflow

    columns = [c for c in (*FEATURES, LABEL) if c in spec.frame.columns]
    with warnings.catch_warnings():  # MLflow's noise: a source registered twice, and advice
        # on integer columns meant for signatures, not for a dataset described as it is
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        dataset = mlflow.data.from_pandas(
            spec.frame.loc[:, columns],
            source=spec.source or None,
            name=spec.name,
            digest=spec.digest,
            targets=LABEL if LABEL in columns else None,
        )
        mlflow.log_input(
            dataset, context=context, tags={"mlops.partitions": str(len(spec.partitions))}
        )
    lineage = {"name": spec.name, "source": spec.source, "digest": dataset.digest}
    lineage |= {"rows": len(spec.frame), "partitions": dict(spec.partitions)}
    client.log_dict(run_id, lineage, f"inputs/{context}.json")
    return dataset


def _log_model(model: Any, frame: Any) -> Any:
    """skops, whose loading cannot run code (pickle can), and explicit pins (no inference)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    # float64 everywhere: MLflow accepts int input for a double column but not the reverse,
    # and an integer column in a signature cannot carry a missing value.
    example = frame.loc[:, list(FEATURES)].head(20).astype("float64")
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(example, model.predict_proba(example)),
        input_example=example.head(3),
        pip_requirements=[f"{dist}=={metadata.version(dist)}" for dist in _PINNED],
        serialization_format="skops",  # the only format mlops.registry.trust loads
        skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
        pyfunc_predict_fn="predict_proba",
    )


def attach_decision(tracking_uri: str, run_id: str, decision: GateVerdict) -> None:
    """The gate's documents as run artifacts, the outcome as a run tag; usable when a DAG
    gates after logging (the metadata is read back from the run either way)."""
    with tracking_scope(tracking_uri) as client:
        run = client.get_run(run_id)
        tags, inputs = run.data.tags, run.inputs.dataset_inputs if run.inputs else []
        meta = {k: v for k, v in tags.items() if k.startswith(("mlops.", "airflow."))}
        meta |= {"model_name": f"candidate {tags.get(TAG_RUN_KEY, run_id)}"}
        meta |= {"mlflow_run_id": run_id, "params": dict(sorted(run.data.params.items()))}
        meta |= {"datasets": {i.dataset.name: i.dataset.digest for i in inputs}}
        meta.pop(TAG_GATE_OUTCOME, None)  # the decision itself says it
        for path, text in decision.render(meta).items():
            client.log_text(run_id, text, path)
        client.set_tag(run_id, TAG_GATE_OUTCOME, decision.outcome)


def log_training_run(
    tracking_uri: str,
    context: RunContext,
    model: Any,
    *,
    family: str,
    params: Mapping[str, Any],
    seed: int,
    window: Mapping[str, Any],
    training: DatasetSpec,
    evaluation: DatasetSpec,
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None = None,
    decision: GateVerdict | None = None,
    experiment: str = EXPERIMENT,
    artifact_location: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
) -> LoggedRun:
    """Log one training as the only run under ``context.run_key`` (see the module doc).

    ``window`` holds the data window as run params (``DataWindow.to_params()``); the metrics
    are flat name -> value maps (``Metrics.flat()``): the registry needs no training types."""
    import mlflow

    started = time.perf_counter()
    day = context.logical_date.isoformat()
    tags = {TAG_RUN_KEY: context.run_key, "mlops.logical_date": day, TAG_GATE_OUTCOME: "pending"}
    tags |= {"mlops.family": family, "mlops.feature_service": context.feature_service}
    tags |= {"mlops.code_version": context.code_version or code_version()}
    tags |= {"airflow.dag_id": context.dag_id, "airflow.run_id": context.airflow_run_id}
    tags |= {"airflow.logical_date": day, **(extra_tags or {})}
    run_params = {"family": family, "seed": seed, **window}
    run_params |= {f"hp.{key}": value for key, value in sorted(params.items())}
    with tracking_scope(tracking_uri) as client:
        location = artifact_location or default_artifact_location(tracking_uri)
        experiment_id = ensure_experiment(client, experiment, location)
        with mlflow.start_run(experiment_id=experiment_id, run_name=context.run_key, tags=tags):
            run_id = mlflow.active_run().info.run_id
            mlflow.log_params(run_params)
            _log_dataset(client, run_id, training, "training")
            eval_set = _log_dataset(client, run_id, evaluation, "evaluation")
            info = _log_model(model, training.frame)
            mlflow.log_metrics(dict(candidate_metrics), model_id=info.model_id, dataset=eval_set)
            if champion_metrics is not None:
                champion = {f"champion/{k}": v for k, v in champion_metrics.items()}
                mlflow.log_metrics(champion, dataset=eval_set)
        if decision is not None:
            attach_decision(tracking_uri, run_id, decision)
        # searched once complete (a failure leaves the old runs in place), and after: a
        # create whose answer was lost is retried by MLflow's client and leaves an empty run
        previous = runs_by_key(client, experiment_id, context.run_key)
        previous = [run for run in previous if run.info.run_id != run_id]
        deleted, superseded = _retire_runs(client, previous, run_id)
        if deleted or superseded:
            client.set_tag(run_id, "mlops.replaces", ",".join(deleted + superseded))
    return LoggedRun(
        run_id=run_id,
        run_key=context.run_key,
        model_uri=info.model_uri,
        gate_outcome=decision.outcome if decision else "pending",
        replaced_run_ids=tuple(deleted),
        superseded_run_ids=tuple(superseded),
        seconds=round(time.perf_counter() - started, 3),
    )
