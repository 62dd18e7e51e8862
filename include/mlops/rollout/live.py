"""Which versions serve right now: the ``champion`` alias and the rollout's challenger.

One ``get_registered_model`` call returns both the aliases and the tags, so the champion and
the rollout are read together and cannot disagree with each other. The service polls this;
daily scoring reads it once per day. Loading a version goes through the registry package's
loader (by number, never by alias: the number read here is exactly what is loaded and
logged).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from mlops.rollout.state import NO_ROLLOUT, RolloutState, rollout_from_tags

# MLflow keeps its tracking URI per process; the registry's scope swaps it for the duration
# of a call. Loads from several threads (the service's poller, a test) take turns.
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class LiveVariants:
    """The serving champion (None before the first promotion), the challenger in traffic
    (None without an active rollout) and the rollout that routes between them."""

    champion: str | None
    challenger: str | None
    rollout: RolloutState
    previous: str | None = None  # not served; kept warm for an instant rollback

    def versions(self) -> dict[str, str]:
        found = {"champion": self.champion, "challenger": self.challenger}
        return {variant: version for variant, version in found.items() if version is not None}


def variants_from(aliases: dict[str, Any], tags: dict[str, str]) -> LiveVariants:
    """The live variants of a registered model's aliases and tags.

    A rollout whose challenger is already the champion (promoted, tag not yet cleared) or
    that is not active routes everything to the champion."""
    champion = str(aliases["champion"]) if "champion" in aliases else None
    previous = str(aliases["previous"]) if "previous" in aliases else None
    rollout = rollout_from_tags(tags)
    if not rollout.active:
        return LiveVariants(champion, None, rollout, previous)
    if champion is None or rollout.challenger_version == champion:
        return LiveVariants(champion, None, NO_ROLLOUT, previous)
    return LiveVariants(champion, rollout.challenger_version, rollout, previous)


def live_variants(client: Any, model_name: str) -> LiveVariants:
    """Read the live variants from the registry (none when the model does not exist)."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return LiveVariants(None, None, NO_ROLLOUT)
        raise
    return variants_from(dict(model.aliases), dict(model.tags))


def registry_client(tracking_uri: str) -> Any:
    """A client bound to ``tracking_uri`` without touching MLflow's process-wide URIs; its
    HTTP calls bounded (``mlops.registry.mlflow_http``)."""
    import mlflow

    from mlops.registry.mlflow_http import bound_http_calls

    bound_http_calls()
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def load_version(tracking_uri: str, model_name: str, version: str) -> Any:
    """The scikit-learn pipeline of ``model_name`` version ``version``."""
    from mlops.registry.versions import load_model

    with _LOAD_LOCK:
        return load_model(tracking_uri, str(version), model_name)


__all__ = ["LiveVariants", "live_variants", "load_version", "registry_client", "variants_from"]
