"""Only versions the registry vouches for load, and never by unpickling.

Each forged version is registered by hand, as anyone with write access to the registry could:
a pickle whose loading writes a marker file, a version the gate never approved, an artifact
swapped after registration, a skops file that names a dangerous type. None loads; the
marker is never written. A version registered as the project does loads and scores as the
model it was made from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from mlops.registry import trust
from mlops.registry import versions as registry
from mlops.registry.trust import (
    SKOPS_TRUSTED_TYPES,
    TAG_ARTIFACT_SHA256,
    TAG_GATE_OUTCOME,
    UntrustedModel,
)

MODEL = registry.MODEL_NAME


class WritesMarker:
    """Unpickling this writes ``marker``: what a malicious pickle could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "unpickled"))


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 4))
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0)
    return model.fit(rows, rows[:, 0] + rng.normal(size=300) > 0), rows


def register_by_hand(uri: str, root: Path, model: Any, fmt: str, **log: Any) -> str:
    """Log ``model`` in ``fmt``, register it and alias it champion, as a registry writer could."""
    import mlflow
    import mlflow.sklearn

    with registry.tracking_scope(uri) as client:
        found = client.get_experiment_by_name("by-hand")
        experiment = (
            found.experiment_id
            if found
            else client.create_experiment("by-hand", artifact_location=(root / "art").as_uri())
        )
        with mlflow.start_run(experiment_id=experiment):
            log.setdefault("skops_trusted_types", list(SKOPS_TRUSTED_TYPES))
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format=fmt,
                pip_requirements=["scikit-learn"],
                **log,
            )
        version = str(mlflow.register_model(info.model_uri, MODEL).version)
        client.set_registered_model_alias(MODEL, "champion", version)
    return version


def vouch(uri: str, version: str, outcome: str | None = "approve") -> None:
    """The tags register_candidate writes: the gate's outcome and the files' digest."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    if outcome is not None:
        client.set_model_version_tag(MODEL, version, TAG_GATE_OUTCOME, outcome)
    trust.record_digest(uri, MODEL, version)


def model_file(uri: str, version: str, name: str) -> Path:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    source = client.get_model_version(MODEL, version).source  # models:/m-...
    logged = client.get_logged_model(source.removeprefix("models:/"))
    return Path(urlsplit(logged.artifact_location).path) / name


def test_every_process_of_the_tests_refuses_pickle() -> None:
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"


def test_a_pickled_champion_is_refused_even_with_forged_tags(uri: str, tmp_path: Path) -> None:
    import mlflow.sklearn

    marker = tmp_path / "marker"
    version = register_by_hand(uri, tmp_path, WritesMarker(marker), "cloudpickle")
    vouch(uri, version)  # a forged approval and a digest that matches the files
    with pytest.raises(UntrustedModel, match=rf"{MODEL} v{version} refused: .*only skops loads"):
        registry.load_model(uri, "champion")
    with pytest.raises(Exception, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        with registry.tracking_scope(uri):  # MLflow's own loader refuses too
            mlflow.sklearn.load_model(f"models:/{MODEL}@champion")
    assert not marker.exists()


@pytest.mark.parametrize("outcome", [None, "pending", "reject", "needs_review"])
def test_a_version_the_gate_did_not_approve_is_refused(
    uri: str, tmp_path: Path, fitted, outcome: str | None
) -> None:
    version = register_by_hand(uri, tmp_path, fitted[0], "skops")
    vouch(uri, version, outcome)
    with pytest.raises(UntrustedModel, match=rf"v{version} refused: .*(gate|review)"):
        registry.load_model(uri, version)


def test_a_needs_review_version_loads_once_a_person_approved_its_rollout(
    uri: str, tmp_path: Path, fitted
) -> None:
    model, rows = fitted
    version = register_by_hand(uri, tmp_path, model, "skops")
    vouch(uri, version, "needs_review")
    trust.record_human_approval(uri, MODEL, version, "carol", "2018-08-09T10:00:00+00:00")
    loaded = registry.load_model(uri, version)
    np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))


def test_an_artifact_swapped_after_registration_is_refused(
    uri: str, tmp_path: Path, fitted
) -> None:
    import skops.io
    from sklearn.linear_model import LogisticRegression

    model, rows = fitted
    version = register_by_hand(uri, tmp_path, model, "skops")
    vouch(uri, version)
    other = LogisticRegression().fit(rows, rows[:, 1] > 0)
    skops.io.dump(other, model_file(uri, version, "model.skops"))
    with pytest.raises(UntrustedModel, match=rf"v{version} refused: .*sha256 mismatch"):
        registry.load_model(uri, "champion")


def test_a_version_without_a_digest_is_refused(uri: str, tmp_path: Path, fitted) -> None:
    import mlflow

    version = register_by_hand(uri, tmp_path, fitted[0], "skops")
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_model_version_tag(MODEL, version, TAG_GATE_OUTCOME, "approve")
    with pytest.raises(UntrustedModel, match="no artifact digest"):
        registry.load_model(uri, version)


def test_a_skops_file_naming_an_untrusted_type_is_refused(uri: str, tmp_path: Path) -> None:
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(func=os.system)  # skops keeps the function by name
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    assert untrusted and not set(untrusted) & set(SKOPS_TRUSTED_TYPES)
    # the MLmodel file lists them as trusted: MLflow would load it; the project does not
    version = register_by_hand(uri, tmp_path, model, "skops", skops_trusted_types=untrusted)
    vouch(uri, version)
    with pytest.raises(UntrustedModel, match=rf"v{version} refused: .*untrusted types"):
        registry.load_model(uri, "champion")


def test_a_vouched_skops_version_loads_and_scores_as_the_original(
    uri: str, tmp_path: Path, fitted
) -> None:
    model, rows = fitted
    version = register_by_hand(uri, tmp_path, model, "skops")
    vouch(uri, version)
    digest = trust.downloaded_digest(uri, MODEL, version)
    assert len(digest) == 64 and digest == trust.record_digest(uri, MODEL, version)
    for ref in ("champion", version):
        loaded = registry.load_model(uri, ref)
        np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))


def test_the_digest_covers_paths_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"1")
    (tmp_path / "MLmodel").write_text("flavors: {}")
    first = trust.artifact_digest(tmp_path)
    (tmp_path / "registered_model_meta").write_text("model_version: 3")  # MLflow's, client side
    assert trust.artifact_digest(tmp_path) == first
    (tmp_path / "a" / "x").rename(tmp_path / "a" / "y")
    assert trust.artifact_digest(tmp_path) != first
    (tmp_path / "a" / "y").rename(tmp_path / "a" / "x")
    (tmp_path / "a" / "x").write_bytes(b"2")
    assert trust.artifact_digest(tmp_path) != first


def test_tags_name_what_a_version_needs(uri: str) -> None:
    assert TAG_ARTIFACT_SHA256 == "mlops.artifact_sha256"
    assert trust.approval_refusal({TAG_GATE_OUTCOME: "approve"}) is None
    review = {TAG_GATE_OUTCOME: "needs_review"}
    assert "review" in trust.approval_refusal(review)
    assert trust.approval_refusal({**review, trust.TAG_HUMAN_APPROVAL: "approved by x"}) is None
    rejected = {TAG_GATE_OUTCOME: "reject", trust.TAG_HUMAN_APPROVAL: "approved by x"}
    assert "gate outcome reject" in trust.approval_refusal(rejected)


def test_a_load_and_a_digest_build_one_client_each(
    uri: str, tmp_path: Path, fitted, monkeypatch
) -> None:
    """One ``MlflowClient`` per load (and per recorded digest), none when the caller's is
    reused: each client is a connection pool of its own to the registry."""
    import mlflow

    version = register_by_hand(uri, tmp_path, fitted[0], "skops")
    built: list[str] = []

    class Counting(mlflow.MlflowClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(kwargs.get("tracking_uri", ""))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(mlflow, "MlflowClient", Counting)
    vouch(uri, version)  # the test's own client, then record_digest's
    assert len(built) == 2
    registry.load_model(uri, version)
    assert len(built) == 3
    trust.load_trusted(uri, MODEL, version, client=Counting(tracking_uri=uri, registry_uri=uri))
    assert len(built) == 4
