"""Modules the scheduler imports once so that every task starts with them already loaded.

Under LocalExecutor on Linux the scheduler forks its workers and each worker forks one
process per task, so a module in the scheduler's ``sys.modules`` before the workers start is
in every task's (copy-on-write, no re-import). ``plugins/mlops_preload.py`` calls
``preload()`` when Airflow loads plugins; ``MLOPS_PRELOAD=1`` turns it on, which
``demo.airflow_stack`` sets for the scheduler only, with ``[core] lazy_load_plugins=False`` so
that plugins load when ``airflow`` is imported, before the executor starts. The dag-processor
and the api-server never set it: DAG parsing stays light.

Only imports happen here: no engine, client, thread or connection is created, which would be
shared, unsafely, by every fork.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Mapping

SWITCH = "MLOPS_PRELOAD"

# What tasks import, heaviest first; the mlops modules pull in the rest. A module that does
# not exist (a stage not written yet) is skipped with a warning.
MODULES: tuple[str, ...] = (
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "pandas",
    "pyarrow.parquet",
    "sklearn.ensemble",
    "mlflow",
    "great_expectations",
    "feast",
    "evidently",
    # imported on first use: MLflow's SQL stores (3 s), Feast's DuckDB/ibis offline path (2 s)
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "feast.infra.passthrough_provider",
    "feast.infra.offline_stores.duckdb",
    "feast.infra.online_stores.sqlite",
    "feast.infra.compute_engines.local.compute",
    "feast.repo_operations",
    "ibis.backends.duckdb",
    "great_expectations.render.renderer",
    # imported lazily on a task's first S3 call and model load: in the Celery worker's tasks
    # (py-spy) half of their time went to these imports; skops.io last, its import scans
    # every loaded module. Not mlflow.tracking.request_header.registry: preloaded, its
    # telemetry client raced the task's first HTTP call over os.environ (KeyError).
    "s3fs",
    "skops.io",
    "mlops.ingestion.landing",
    "mlops.validation.partition",
    "mlops.validation.docs_views",
    "mlops.features.pipeline",
    "mlops.scoring.daily",
    "mlops.training.job",
    "mlops.registry.tracking",
    "mlops.monitoring",
    "mlops.deployment",
    "mlops_airflow.context",
    "mlops_airflow.sensors",
)

log = logging.getLogger(__name__)


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(SWITCH, "").strip().lower() in {"1", "true", "yes"}


def preload(
    modules: tuple[str, ...] = MODULES, environ: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Import ``modules`` when the switch is on; seconds each took (0.0 when already loaded)."""
    if not enabled(environ):
        return {}
    seconds: dict[str, float] = {}
    for name in modules:
        began = time.perf_counter()
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if not name.startswith(err.name or "\0"):
                raise
            log.debug("preload: %s not found, skipped", name)
            continue
        seconds[name] = round(time.perf_counter() - began, 3)
    total = sum(seconds.values())
    if total > 0.1:  # the scheduler; a task re-runs the plugin and finds everything loaded
        log.info("preloaded %d modules in %.1f s: %s", len(seconds), total, seconds)
    return seconds
