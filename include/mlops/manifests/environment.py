"""The production environment, defined once: the ``environment:`` blocks of docker-compose.yaml.

Compose hands them to its containers; ``make e2e-prod`` reads them here and starts the same
components as processes on one host, each service name moved to the address where that host
runs it (``relocate``); the Kubernetes manifests render the model service's block. So a
variable that one side sets and another forgets cannot exist: tests hold the three equal.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMPOSE_FILE = Path(__file__).resolve().parents[3] / "docker-compose.yaml"
# The Airflow components share one block (the `x-airflow-common` anchor); the worker's is it.
AIRFLOW_SERVICE = "airflow-worker"
MLFLOW_SERVICE = "mlflow"
MODEL_SERVICE = "model-service"

# ${VAR}, ${VAR:-default}, ${VAR:?error}: what compose interpolates (the tests read it too)
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")
# scheme://[user[:password]@]host[:port][/path]: the host is a compose service name
_URL = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^@/\s\"']*@)?"
    r"(?P<host>[A-Za-z0-9_.-]+)(?::(?P<port>\d+))?(?P<path>/[^\s\"',]*)?"
)


# In these the "host" is a bucket, even when it shares a service's name (s3://mlflow/).
_BUCKET_SCHEMES = ("s3://", "s3a://", "gs://", "file://")


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``; ``$$`` is a ``$``."""

    def substitute(match: re.Match) -> str:
        name, op, arg = match.groups()
        if variables.get(name):
            return variables[name]
        if op == "?":
            raise KeyError(f"{name} is required: {arg}")
        return arg if op == "-" else ""

    return _VARIABLE.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def compose_services(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))["services"]


def service_environment(
    service: str, variables: Mapping[str, str], path: Path = COMPOSE_FILE
) -> dict[str, str]:
    """One service's environment as compose would hand it over with ``variables`` as .env."""
    return {name: interpolate(value, variables) for name, value in _block(service, path).items()}


def _block(service: str, path: Path) -> dict[str, str]:
    """The service's ``environment:`` as written, before interpolation."""
    env = compose_services(path)[service].get("environment") or {}
    if isinstance(env, list):  # the `- NAME=value` form
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


@dataclass(frozen=True)
class Endpoint:
    """Where a compose service runs instead: ``host:port``, and the names inside it that
    move too (a database, a vhost, a Redis db number: the first segment of a URL's path)."""

    address: str
    renames: Mapping[str, str] = field(default_factory=dict)


def relocate(value: str, endpoints: Mapping[str, Endpoint]) -> str:
    """``value`` with every URL whose host is a service of ``endpoints`` pointed at its
    endpoint (in plain values and inside JSON alike); other text is left as it is."""

    def move(match: re.Match) -> str:
        endpoint = endpoints.get(match["host"])
        if endpoint is None or match["scheme"] in _BUCKET_SCHEMES:
            return match[0]
        path = match["path"] or ""
        if path:
            first, _, rest = path[1:].partition("/")
            path = "/" + endpoint.renames.get(first, first) + (f"/{rest}" if _ else "")
        return f"{match['scheme']}{match['user'] or ''}{endpoint.address}{path}"

    return _URL.sub(move, value)


def relocated_environment(
    service: str,
    variables: Mapping[str, str],
    endpoints: Mapping[str, Endpoint],
    path: Path = COMPOSE_FILE,
) -> dict[str, str]:
    env = service_environment(service, variables, path)
    return {name: relocate(value, endpoints) for name, value in env.items()}


def interpolated_names(service: str, path: Path = COMPOSE_FILE) -> list[str]:
    """Names of the variables whose value comes from .env (``${VAR}``): the deployment's to
    supply, so a renderer must not bake in their defaults (a default password, say)."""
    return sorted(name for name, value in _block(service, path).items() if _VARIABLE.search(value))


def _masked(value: str) -> str:
    """``value`` with the password of every URL in it replaced by ``***``."""
    return _URL.sub(
        lambda m: (
            m[0].replace(m["user"], m["user"].split(":", 1)[0] + ":***@")
            if m["user"] and ":" in m["user"]
            else m[0]
        ),
        value,
    )


def differences(
    expected: Mapping[str, str], actual: Mapping[str, str], allowed: Collection[str] = ()
) -> list[str]:
    """What ``actual`` misses, adds or changes of ``expected``, one line a variable (URL
    passwords masked), except for the ``allowed`` names; empty when the two agree."""
    found = []
    for name in sorted(expected.keys() | actual.keys()):
        if name in allowed:
            continue
        if name not in actual:
            found.append(f"{name}: missing (expected {_masked(expected[name])!r})")
        elif name not in expected:
            found.append(f"{name}: not expected (set to {_masked(actual[name])!r})")
        elif expected[name] != actual[name]:
            want, got = _masked(expected[name]), _masked(actual[name])
            found.append(
                f"{name}: expected {want!r}, got {got!r}"
                if want != got
                else f"{name}: another password in {got!r}"
            )
    return found
