"""The Feast feature store of a profile, built from the settings, and its definitions applied.

``feature_repo/feature_store.yaml`` serves the ``feast`` CLI for the local profile; the
pipeline builds its ``RepoConfig`` here instead, so one set of definitions runs on SQLite and
a local registry (``local``) or on Redis and a registry on S3 or PostgreSQL (``production``)
by settings alone (``MLOPS_ONLINE_STORE``, ``MLOPS_REDIS_URL``, ``MLOPS_FEAST_REGISTRY``).

The definitions are imported from ``MLOPS_FEATURE_REPO`` the way ``feast apply`` imports
them (each file a top-level module), but afresh on every call and with the settings' data
root in the environment, because the sources read their paths from it at import time.
Applying them is a diff against the registry first: unchanged definitions write nothing,
so the daily materialisation task may apply them on every run.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from mlops.settings import PREFIX, ConfigError, Settings, load_settings
from mlops.zones import FEAST

if TYPE_CHECKING:
    from feast import FeatureStore, RepoConfig
    from feast.repo_contents import RepoContents

PROJECT = "fraud"
CUSTOMER_VIEW = "customer_daily_spending"
TERMINAL_VIEW = "terminal_daily_risk"
FEATURE_VIEWS = (CUSTOMER_VIEW, TERMINAL_VIEW)
ENTITY_VIEWS = {"customer": CUSTOMER_VIEW, "terminal": TERMINAL_VIEW}
REGISTRY_CACHE_TTL_S = 60
# Read by the definitions at import time (feature_repo/sources.py).
DEFINITION_ENVIRONMENT = ("MLOPS_DATA_ROOT", "MLOPS_PROFILE")


def online_store_type(settings: Settings) -> str:
    """``sqlite`` or ``redis``: the setting, else the profile's choice."""
    if settings.online_store:
        return settings.online_store
    return "redis" if settings.profile == "production" else "sqlite"


def registry_uri(settings: Settings) -> str:
    return settings.feast_registry or f"{settings.zone(FEAST)}/registry.db"


def sqlite_path(settings: Settings) -> str:
    if "://" in settings.data_root:
        raise ConfigError(
            f"{PREFIX}ONLINE_STORE=sqlite needs a local {PREFIX}DATA_ROOT, got "
            f"{settings.data_root}; use {PREFIX}ONLINE_STORE=redis with a remote data root"
        )
    return f"{settings.zone(FEAST)}/online.db"


def redis_connection_string(url: str, *, timeout_s: float | None = None) -> str:
    """``redis://[user:password@]host:port/db`` as Feast's ``host:port,db=N,...`` string.

    Feast JSON-decodes each ``key=value`` and hands it to ``redis.Redis``, so ``timeout_s``
    becomes the socket's connect and read timeouts: every call of the client is bounded."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(f"{PREFIX}REDIS_URL must be a redis:// or rediss:// URL, got {url!r}")
    try:
        db = int(parts.path.strip("/") or 0)
    except ValueError:
        raise ConfigError(f"{PREFIX}REDIS_URL: the path must be a db number: {url!r}") from None
    fields = [f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}", f"db={db}"]
    for name, value in (("username", parts.username), ("password", parts.password)):
        if value:
            if "," in unquote(value):
                raise ConfigError(f"{PREFIX}REDIS_URL: Feast cannot pass a {name} with a comma")
            fields.append(f"{name}={unquote(value)}")
    if parts.scheme == "rediss":
        fields.append("ssl=true")
    if timeout_s is not None:
        fields += [f"socket_timeout={timeout_s:g}", f"socket_connect_timeout={timeout_s:g}"]
    return ",".join(fields)


def redacted(url: str) -> str:
    """The URL without its password, fit for an error message or a log line."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def _online_store(settings: Settings) -> dict[str, Any]:
    if online_store_type(settings) == "sqlite":
        return {"type": "sqlite", "path": sqlite_path(settings)}
    # skip_dedup: Feast's Redis store otherwise ignores a write whose timestamp equals the
    # stored one, so a corrected rerun of a day would keep the old values. Order between
    # days is kept by mlops.features.online.materialize_day, not by the store.
    return {
        "type": "redis",
        "connection_string": redis_connection_string(
            settings.redis_url, timeout_s=settings.redis_timeout_s
        ),
        "skip_dedup": True,
    }


def _registry(settings: Settings) -> dict[str, Any]:
    uri = registry_uri(settings)
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in ("", "file", "s3", "gs"):  # a SQLAlchemy URL: the SQL registry
        return {"registry_type": "sql", "path": uri, "cache_ttl_seconds": REGISTRY_CACHE_TTL_S}
    if scheme == "s3" and settings.s3_endpoint_url:
        # Feast's S3 registry store takes its endpoint from this variable (else boto3's own
        # AWS_ENDPOINT_URL_S3), never from its config; a value already set wins.
        os.environ.setdefault("FEAST_S3_ENDPOINT_URL", settings.s3_endpoint_url)
    return {"registry_type": "file", "path": uri, "cache_ttl_seconds": REGISTRY_CACHE_TTL_S}


def repo_config(settings: Settings) -> RepoConfig:
    from feast import RepoConfig

    return RepoConfig(
        project=PROJECT,
        provider="local",
        registry=_registry(settings),
        offline_store={"type": "duckdb"},
        online_store=_online_store(settings),
        entity_key_serialization_version=3,
        repo_path=settings.feature_repo,
    )


def feature_store(settings: Settings) -> FeatureStore:
    """The store of the settings' profile. Local registry and SQLite folders are created
    here: Feast makes only the last level of the registry's folder."""
    from feast import FeatureStore

    config = repo_config(settings)
    local = [registry_uri(settings)] if "://" not in registry_uri(settings) else []
    if online_store_type(settings) == "sqlite":
        local.append(sqlite_path(settings))
    for path in local:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    store = FeatureStore(config=config)
    if online_store_type(settings) == "redis":
        _one_try_per_call(store)
    return store


def _one_try_per_call(store: FeatureStore) -> None:
    """Redis calls without redis-py's own retries (3, with up to 14 s of backoff after a
    timeout), so a call lasts at most the connection string's timeout: the caller's retry
    (Airflow's, or the service's client's after a 503) is the one that waits. Reads and
    materialisation share this client (Feast's provider holds one online store)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    online = store._get_provider().online_store
    online._get_client(store.config.online_store).set_retry(Retry(NoBackoff(), 0))


@contextmanager
def _definition_modules(settings: Settings, names: list[str]) -> Iterator[None]:
    """The repo importable under its module names, seeing the settings' data root; the
    process's modules, path and environment as they were afterwards."""
    repo = str(Path(settings.feature_repo).resolve())
    saved_env = {name: os.environ.get(name) for name in DEFINITION_ENVIRONMENT}
    saved_modules = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    os.environ.update({"MLOPS_DATA_ROOT": settings.data_root, "MLOPS_PROFILE": settings.profile})
    sys.path.insert(0, repo)
    try:
        yield
    finally:
        sys.path.remove(repo)
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved_modules)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_definitions(settings: Settings) -> RepoContents:
    """Every Feast object defined in the feature repo, as ``feast apply`` would collect it."""
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource
    from feast.feature_view import DUMMY_ENTITY
    from feast.project import Project
    from feast.repo_contents import RepoContents
    from feast.repo_operations import get_repo_files

    repo = Path(settings.feature_repo).resolve()
    if not (repo / "feature_store.yaml").is_file():
        raise ConfigError(
            f"{PREFIX}FEATURE_REPO={repo} is not a Feast repo (no feature_store.yaml)"
        )
    names = [".".join(p.relative_to(repo).with_suffix("").parts) for p in get_repo_files(repo)]
    kinds = {Entity: [], DataSource: [], FeatureView: [], FeatureService: []}
    with _definition_modules(settings, names):
        for name in names:
            module = importlib.import_module(name)
            for value in vars(module).values():
                for kind, found in kinds.items():
                    if isinstance(value, kind) and not any(value is f for f in found):
                        found.append(value)
    return RepoContents(
        projects=[Project(name=PROJECT)],
        data_sources=kinds[DataSource],
        entities=[*kinds[Entity], DUMMY_ENTITY],
        feature_views=kinds[FeatureView],
        on_demand_feature_views=[],
        stream_feature_views=[],
        feature_services=kinds[FeatureService],
        label_views=[],
        permissions=[],
    )


@dataclass(frozen=True)
class ApplyResult:
    """What applying the definitions changed in the registry (nothing, on a rerun)."""

    project: str
    registry: str
    changes: tuple[str, ...]  # "<create|update|delete> <object type> <name>"

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, "registry": self.registry, "changes": list(self.changes)}


def _without_meta(value: Any) -> Any:
    """A definition proto without its timestamps: a freshly imported source carries a new
    ``created_timestamp``, which Feast's diff counts as a change of every view using it."""
    fields = getattr(getattr(value, "DESCRIPTOR", None), "fields_by_name", {})
    if "meta" not in fields:
        return value
    copy = type(value).FromString(value.SerializeToString())
    copy.ClearField("meta")
    return copy


def _changed(diff: Any) -> bool:
    from feast.diff.property_diff import TransitionType
    from feast.feature_view import DUMMY_ENTITY_NAME

    if diff.transition_type == TransitionType.UNCHANGED or diff.name == DUMMY_ENTITY_NAME:
        return False
    return diff.transition_type != TransitionType.UPDATE or any(
        _without_meta(p.val_existing) != _without_meta(p.val_declared)
        for p in diff.feast_object_property_diffs
    )


def apply_definitions(settings: Settings, store: FeatureStore | None = None) -> ApplyResult:
    """Make the registry hold exactly the repo's definitions; idempotent, and free when
    nothing changed. Objects the repo no longer defines are deleted, as ``feast apply`` does."""
    from feast.repo_operations import extract_objects_for_apply_delete

    store = store or feature_store(settings)
    contents = load_definitions(settings)
    diff, _, _ = store.plan(contents)
    changes = tuple(
        f"{d.transition_type.name.lower()} {d.feast_object_type.value} {d.name}"
        for d in diff.feast_object_diffs
        if _changed(d)
    )
    if changes:
        to_apply, to_delete, _, _ = extract_objects_for_apply_delete(
            store.project, store.registry, contents
        )
        store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    return ApplyResult(
        project=store.project, registry=redacted(registry_uri(settings)), changes=changes
    )


def main() -> None:
    """``make feast-apply``: apply the definitions for the environment's settings."""
    print(json.dumps(apply_definitions(load_settings()).to_dict(), indent=2))


if __name__ == "__main__":
    main()
