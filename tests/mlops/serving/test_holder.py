"""A champion that cannot load, or that the registry's trust check refuses, never replaces
the one serving: the holder keeps its last good snapshot and names the version left out.
In-process, with a registry stand-in and a loader that refuses some versions."""

from __future__ import annotations

from types import SimpleNamespace

from mlops.registry.trust import UntrustedModel
from mlops.serving.holder import RECHECK_REFUSED_S, ModelHolder
from mlops.serving.readiness import not_ready_because

MODEL = "fraud_model"


class Registry:
    """Just what ``live_variants`` reads: the aliases and tags of one registered model."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}

    def get_registered_model(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(aliases=dict(self.aliases), tags={})


def load(uri: str, name: str, version: str) -> str:
    if version == "2":
        raise UntrustedModel(name, version, "scikit-learn flavor stored as cloudpickle")
    if version == "3":
        raise OSError("connection refused: http://mlflow:5000/api/2.0/mlflow")
    return f"model v{version}"


def holder_on(registry: Registry, reloads: list) -> ModelHolder:
    holder = ModelHolder("unused://", MODEL, loader=load, on_reload=reloads.append)
    holder._client = registry  # no registry is contacted
    return holder


def test_a_refused_first_champion_keeps_the_service_not_ready_with_the_reason():
    registry, reloads = Registry(), []
    holder = holder_on(registry, reloads)
    registry.aliases["champion"] = "2"
    assert holder.refresh()
    serving = holder.current
    assert not serving.ready and serving.failed_versions == {"champion": "2"}
    reasons = not_ready_because(serving, holder, SimpleNamespace(problem=None))
    assert reasons == [
        "champion v2 failed to load: UntrustedModel: fraud_model v2 refused: "
        "scikit-learn flavor stored as cloudpickle"
    ]


def test_a_champion_that_cannot_load_leaves_the_last_one_serving():
    registry, reloads = Registry(), []
    holder = holder_on(registry, reloads)
    registry.aliases["champion"] = "1"
    holder.refresh()
    registry.aliases["champion"] = "2"
    assert holder.refresh()
    serving = holder.current
    assert serving.live.champion == "1" and serving.models["champion"] == "model v1"
    assert serving.failed_versions == {"champion": "2"}
    assert "champion v2 failed to load: UntrustedModel" in serving.failed["champion"]
    assert not holder.refresh() and len(reloads) == 2  # tried again, nothing new to report

    registry.aliases["champion"] = "3"  # another one, unreachable: its error stays in the log
    assert holder.refresh()
    assert holder.current.failed == {
        "champion": "champion v3 failed to load: OSError (see the log)"
    }
    assert holder.current.failed_versions == {"champion": "3"}

    registry.aliases["champion"] = "1"  # put back: nothing is left out any more
    assert holder.refresh()
    assert holder.current.failed == {} and holder.current.models["champion"] == "model v1"


def test_a_refused_version_is_checked_again_only_after_a_while():
    """Each check of a refused version downloads and hashes it: not on every poll."""
    registry, calls, now = Registry(), [], [0.0]

    def counted(uri: str, name: str, version: str) -> str:
        calls.append(version)
        return load(uri, name, version)

    holder = ModelHolder("unused://", MODEL, loader=counted, clock=lambda: now[0])
    holder._client = registry
    registry.aliases["champion"] = "1"
    holder.refresh()
    registry.aliases["champion"] = "2"
    for _ in range(5):  # five polls within the minute
        holder.refresh()
        now[0] += 5
    assert calls == ["1", "2"]
    assert "UntrustedModel" in holder.current.failed["champion"]
    now[0] += RECHECK_REFUSED_S
    holder.refresh()
    assert calls == ["1", "2", "2"]
    assert holder.current.live.champion == "1"
