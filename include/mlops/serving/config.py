"""The model service's own knobs, from ``MLOPS_SERVE_*`` environment variables.

The data root, MLflow and the online store come from ``mlops.settings``; these only say how
the service runs. Read by the entry point, never at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlops.secrets import is_example
from mlops.settings import PREFIX, ConfigError

SERVE = PREFIX + "SERVE_"
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ServingConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = "fraud_model"
    poll_s: float = 5.0  # how often the registry is asked whether aliases or rollout moved
    max_batch: int = 100  # transactions per /predict request
    log_flush_s: float = 1.0
    threads: int = 1  # OpenMP threads for the models
    # The bearer token of /predict, /metrics and /openapi.json: a secret, so never a default
    # here (``require_token`` refuses to start without one).
    token: str = field(default="", repr=False)
    max_body_bytes: int = 1 << 20  # a larger request body is refused (413) before parsing
    max_in_flight: int = 32  # guarded requests at once; more get 503 with Retry-After
    load_timeout_s: float = 120.0  # one registry read or model load by the loader process

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"{SERVE}PORT must be a TCP port, got {self.port}")
        if self.poll_s <= 0 or self.log_flush_s <= 0:
            raise ConfigError(f"{SERVE}POLL_S and {SERVE}LOG_FLUSH_S must be > 0")
        if not 1 <= self.max_batch <= 10_000:
            raise ConfigError(f"{SERVE}MAX_BATCH must be in [1, 10000], got {self.max_batch}")
        if self.threads < 1:
            raise ConfigError(f"{SERVE}THREADS must be >= 1, got {self.threads}")
        if self.load_timeout_s <= 0:
            raise ConfigError(f"{SERVE}LOAD_TIMEOUT_S must be > 0, got {self.load_timeout_s}")
        if self.max_body_bytes < 1024 or self.max_in_flight < 1:
            raise ConfigError(f"{SERVE}MAX_BODY_BYTES must be >= 1024, {SERVE}MAX_IN_FLIGHT >= 1")


def require_token(token: str) -> str:
    """The token, or ``ConfigError`` saying how to set one (never what it was)."""
    if len(token) < MIN_TOKEN_CHARS or is_example(token):
        raise ConfigError(
            f"a bearer token of at least {MIN_TOKEN_CHARS} characters is required, not an "
            "example: set MLOPS_SERVE_TOKEN or MLOPS_SERVE_TOKEN_FILE (make one with "
            'python3 -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    return token


def _number(env: Mapping[str, str], name: str, default: float, kind: type) -> float:
    raw = env.get(SERVE + name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{SERVE}{name} must be a {kind.__name__}, got {raw!r}") from None


def load_serving_config(env: Mapping[str, str] | None = None) -> ServingConfig:
    env = os.environ if env is None else env
    d = ServingConfig()
    return ServingConfig(
        host=env.get(SERVE + "HOST") or d.host,
        port=int(_number(env, "PORT", d.port, int)),
        model_name=env.get(SERVE + "MODEL_NAME") or d.model_name,
        poll_s=_number(env, "POLL_S", d.poll_s, float),
        max_batch=int(_number(env, "MAX_BATCH", d.max_batch, int)),
        log_flush_s=_number(env, "LOG_FLUSH_S", d.log_flush_s, float),
        threads=int(_number(env, "THREADS", d.threads, int)),
        token=_token(env),
        max_body_bytes=int(_number(env, "MAX_BODY_BYTES", d.max_body_bytes, int)),
        max_in_flight=int(_number(env, "MAX_IN_FLIGHT", d.max_in_flight, int)),
        load_timeout_s=_number(env, "LOAD_TIMEOUT_S", d.load_timeout_s, float),
    )


def _token(env: Mapping[str, str]) -> str:
    """``MLOPS_SERVE_TOKEN``, or the content of ``MLOPS_SERVE_TOKEN_FILE`` (a mounted Secret);
    not both. Empty when neither is set: the entry point refuses that, a renderer may not."""
    value, path = env.get(SERVE + "TOKEN", ""), env.get(SERVE + "TOKEN_FILE", "")
    if value and path:
        raise ConfigError(f"set {SERVE}TOKEN or {SERVE}TOKEN_FILE, not both")
    if not path:
        return value.strip()
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:  # the error names the variable, not the path
        raise ConfigError(f"{SERVE}TOKEN_FILE cannot be read: {type(err).__name__}") from None
