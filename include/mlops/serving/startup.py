"""Process set-up for the model service: no Feast import behind MLflow's back, one OpenMP thread.

- Feast registers an MLflow request-header plugin (``[mlflow.request_header_provider]``).
  MLflow loads every such plugin the first time it makes an HTTP call, which imports the
  whole ``feast`` package from inside that call: 7.3 s measured for the first
  ``get_model_version_by_alias`` against an MLflow server, 0.05 s without it. The plugin
  only adds headers for Feast's own MLflow integration, which the service does not use, so
  the header registry is imported once with that entry-point group hidden.
- The interpreter switches threads every 1 ms and the loaded heap is frozen for the
  garbage collector (``tune_interpreter``, ``freeze_heap``): both shorten the tail.
- scikit-learn's histogram gradient boosting uses OpenMP. With one row per call the threads
  cost far more than they save, and on a shared host they give a heavy tail (single-row
  p99 12-43 ms with 2 threads, 0.6-2.8 ms with one), so the service caps them at one.

- Metric values live in memory, not in the mmap'd files of prometheus_client's multiprocess
  mode that a Feast-importing parent's environment would select (``in_memory_metrics``).
- MLflow's model loaders unpickle unless ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is false;
  the service loads only through ``mlops.registry.trust`` (skops), so it turns them off.

All are called by the service's entry point, never at import time; the first is
``refuse_example_secrets`` (``mlops.secrets``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

HEADER_PLUGINS = "mlflow.request_header_provider"
_limits: list[Any] = []  # keeps the threadpoolctl limiter alive for the process


def skip_mlflow_header_plugins() -> bool:
    """Import MLflow's request-header registry without third-party plugins.

    Returns False when it was already imported (then plugins are registered already)."""
    if "mlflow.tracking.request_header.registry" in sys.modules:
        return False
    import mlflow.utils.plugins as plugins

    original = plugins.get_entry_points
    plugins.get_entry_points = lambda group: [] if group == HEADER_PLUGINS else original(group)
    try:
        import mlflow.tracking.request_header.registry  # noqa: F401  (registers built-ins only)
    finally:
        plugins.get_entry_points = original
    return True


def cap_native_threads(threads: int = 1) -> None:
    """Limit OpenMP and BLAS pools of this process to ``threads`` (scikit-learn's OpenMP
    runtime is loaded first: threadpoolctl only limits libraries already loaded)."""
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    _limits.append(threadpool_limits(limits=threads))


def tune_interpreter() -> None:
    """Hand the GIL over every 1 ms instead of 5: the event loop answering a request is not
    kept waiting behind the log writer or the registry poller (p99, not throughput)."""
    sys.setswitchinterval(0.001)


def in_memory_metrics() -> None:
    """Keep the service's metric values in memory. Importing Feast sets
    ``PROMETHEUS_MULTIPROCESS_DIR`` for its Gunicorn workers, and a child of any process
    that imported it inherits the variable: prometheus_client then backs every value by an
    mmap'd file, with a lock and a file write per increment. The service is one process
    serving its own registry, so it takes the in-process values whatever the environment."""
    from prometheus_client import values

    for name in ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR"):
        os.environ.pop(name, None)
    values.ValueClass = values.MutexValue


def freeze_heap(*, full: bool = True) -> None:
    """Move what is loaded (modules, models, the compiled trees) out of the garbage
    collector's reach, so its full collections during requests walk only new objects.
    ``full=False`` (a swap while serving) collects the young generations only: a full
    collection holds the GIL throughout (300 ms on a large heap), every request waiting."""
    import gc

    gc.collect(2 if full else 1)
    gc.freeze()


def refuse_example_secrets() -> None:
    """Exit before loading anything when the production profile would run on example or
    empty secrets (``mlops.secrets``): the message names each variable, never its value."""
    from mlops.secrets import SecretsError, check_secrets

    try:
        check_secrets()
    except SecretsError as err:
        raise SystemExit(f"model service: {err}") from None


def refuse_pickle() -> None:
    """No MLflow loader in this process may unpickle a model (set before anything loads)."""
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
