"""Bounds on MLflow's HTTP calls to a tracking server, unless the user chose their own.

MLflow reads them from the environment at each request (``mlflow.environment_variables``):
by default 120 s per request and 7 retries with exponential backoff, about 20 minutes
before a call to a server that stopped answering gives up. Ours fail a call within about
two minutes (3 retries of 30 s, backoff 2, 4, 8 s), well inside a task's execution_timeout,
so the task's own retries and the service's registry poller decide what happens next.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}


def bound_http_calls(env: MutableMapping[str, str] | None = None) -> None:
    """Set the defaults in ``env`` (``os.environ``) where no value is set; idempotent."""
    env = os.environ if env is None else env
    for name, value in HTTP_DEFAULTS.items():
        if not env.get(name):
            env[name] = value
