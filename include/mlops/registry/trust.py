"""Loading a registered version only when the registry vouches for it, and never by unpickling.

MLflow's loaders take the serialization format (pickle, cloudpickle or skops) and skops'
trusted types from the artifact's own MLmodel file, so whoever can write to the registry
would choose what code runs where a version loads (the service, every Airflow worker).
``load_trusted`` loads a version only when, in this order:

1. its tags say the gate approved it (``mlops.gate_outcome=approve``), or the gate asked for a
   review (``needs_review``) and a person approved its rollout (``mlops.human_approval``,
   written by the deployment's approval task);
2. the sha256 of its files equals the digest recorded when it was registered
   (``mlops.artifact_sha256``): an artifact swapped afterwards is refused;
3. its scikit-learn flavor is stored with skops, which is then loaded with this project's
   trusted types (``SKOPS_TRUSTED_TYPES``), never the list in the MLmodel file.

Pickle is never used, so a forged model cannot run code when loaded; at worst a registry
writer who forges both tags and digest gets an estimator built from the types skops trusts.
Every process also sets ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``, so MLflow's own
loaders refuse even if something calls them.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.registry.mlflow_http import bound_http_calls

TAG_GATE_OUTCOME = "mlops.gate_outcome"  # approve | reject | needs_review | pending
TAG_ARTIFACT_SHA256 = "mlops.artifact_sha256"
TAG_HUMAN_APPROVAL = "mlops.human_approval"  # "approved by <name> at <time>"
# HistGradientBoosting and RandomForest hold the first two, the stacking of HGB and LR a
# Bunch (its ``named_estimators_``: a dict with attribute access); skops refuses to load them
# untrusted (the linear model, scaler, pipeline and StackingClassifier are trusted by
# default). A test checks the list against skops for every family, so an upgrade that adds
# a type fails loudly.
SKOPS_TRUSTED_TYPES = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
)
SKOPS_FILE = "model.skops"  # mlflow.sklearn's file for the skops format
_ADDED_BY_CLIENT = "registered_model_meta"  # MLflow writes it beside a models:/ download


class UntrustedModel(Exception):
    """A registered version this project refuses to load; the message names it and why."""

    def __init__(self, model_name: str, version: str, reason: str) -> None:
        super().__init__(f"{model_name} v{version} refused: {reason}")
        self.model_name, self.version, self.reason = model_name, str(version), reason

    def __reduce__(self) -> tuple:  # it crosses from the service's loader process
        return (type(self), (self.model_name, self.version, self.reason))


def artifact_digest(root: Path) -> str:
    """sha256 over the model directory: each file's relative path and its bytes' sha256,
    in path order (MLflow's client-side ``registered_model_meta`` left out)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative == _ADDED_BY_CLIENT:
            continue
        digest.update(relative.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def approval_refusal(tags: Mapping[str, str]) -> str | None:
    """Why a version with ``tags`` may not load; None when it may."""
    outcome = tags.get(TAG_GATE_OUTCOME)
    if outcome == "approve":
        return None
    if outcome == "needs_review" and tags.get(TAG_HUMAN_APPROVAL, "").startswith("approved by "):
        return None
    if outcome == "needs_review":
        return "the gate asked for a review and no approval of its rollout is recorded"
    return f"not approved by the gate (gate outcome {outcome or 'missing'})"


def _client(tracking_uri: str) -> Any:
    import mlflow

    bound_http_calls()  # every call and download fails within about two minutes
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _download(client: Any, tracking_uri: str, model_name: str, version: str, into: Path) -> Path:
    """The version's files, copied from where the registry (``client``) says they are (not
    ``models:/``, whose repository would ask the process-wide registry URI)."""
    import mlflow.artifacts

    uri = client.get_model_version_download_uri(model_name, version)
    found = mlflow.artifacts.download_artifacts(
        artifact_uri=uri, dst_path=str(into), tracking_uri=tracking_uri
    )
    return Path(found)


def downloaded_digest(
    tracking_uri: str, model_name: str, version: str, client: Any | None = None
) -> str:
    """The digest of the version's files as the artifact store holds them now."""
    client = client or _client(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp:
        return artifact_digest(_download(client, tracking_uri, model_name, version, Path(tmp)))


def record_digest(tracking_uri: str, model_name: str, version: str) -> str:
    """Write ``mlops.artifact_sha256`` on the version unless it has one (a digest is taken
    once, at registration: recomputing it later would bless a swapped artifact)."""
    client = _client(tracking_uri)
    known = client.get_model_version(model_name, str(version)).tags.get(TAG_ARTIFACT_SHA256)
    if known:
        return known
    digest = downloaded_digest(tracking_uri, model_name, str(version), client)
    client.set_model_version_tag(model_name, str(version), TAG_ARTIFACT_SHA256, digest)
    return digest


def record_human_approval(
    tracking_uri: str, model_name: str, version: str, approved_by: str, at: str | None
) -> None:
    """A person approved the rollout of ``version``: it may load if the gate asked for a
    review (``approval_refusal``)."""
    value = f"approved by {approved_by}" + (f" at {at}" if at else "")
    _client(tracking_uri).set_model_version_tag(model_name, str(version), TAG_HUMAN_APPROVAL, value)


def human_approver(tags: Mapping[str, str]) -> tuple[str, str | None] | None:
    """Who approved the version and when, as ``record_human_approval`` wrote it; None when
    nobody did."""
    value = tags.get(TAG_HUMAN_APPROVAL, "")
    if not value.startswith("approved by "):
        return None
    by, _, at = value.removeprefix("approved by ").rpartition(" at ")
    return (by, at) if by else (value.removeprefix("approved by "), None)


def _load_skops(root: Path, refuse: Any) -> Any:
    import skops.io
    import yaml
    from skops.io.exceptions import UntrustedTypesFoundException

    conf = yaml.safe_load((root / "MLmodel").read_text())
    flavors = conf.get("flavors") if isinstance(conf, dict) else None
    flavor = flavors.get("sklearn") if isinstance(flavors, dict) else None
    flavor = flavor if isinstance(flavor, dict) else {}
    fmt = flavor.get("serialization_format")
    if fmt != "skops" or flavor.get("pickled_model") != SKOPS_FILE:
        raise refuse(f"scikit-learn flavor stored as {fmt or 'nothing'}; only skops loads")
    try:
        return skops.io.load(root / SKOPS_FILE, trusted=list(SKOPS_TRUSTED_TYPES))
    except UntrustedTypesFoundException as err:
        raise refuse(f"the skops file holds untrusted types: {err}") from None


def load_trusted(
    tracking_uri: str, model_name: str, version: str, client: Any | None = None
) -> Any:
    """The scikit-learn model of ``model_name`` version ``version``, after the checks of the
    module doc; raises ``UntrustedModel`` naming the version and the reason otherwise. One
    ``MlflowClient`` serves the load: the caller's ``client`` (for ``tracking_uri``) if given."""
    version = str(version)
    client = client or _client(tracking_uri)

    def refuse(reason: str) -> UntrustedModel:
        return UntrustedModel(model_name, version, reason)

    tags = client.get_model_version(model_name, version).tags
    if (why := approval_refusal(tags)) is not None:
        raise refuse(why)
    expected = tags.get(TAG_ARTIFACT_SHA256)
    if not expected:
        raise refuse("no artifact digest was recorded at registration")
    with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp:
        root = _download(client, tracking_uri, model_name, version, Path(tmp))
        if artifact_digest(root) != expected:
            raise refuse("its files differ from those registered (sha256 mismatch)")
        if not (root / "MLmodel").is_file():
            raise refuse("no MLmodel file")
        return _load_skops(root, refuse)


__all__ = [
    "SKOPS_TRUSTED_TYPES",
    "TAG_ARTIFACT_SHA256",
    "TAG_GATE_OUTCOME",
    "TAG_HUMAN_APPROVAL",
    "UntrustedModel",
    "approval_refusal",
    "artifact_digest",
    "human_approver",
    "load_trusted",
    "record_digest",
    "record_human_approval",
]
