"""One training and one gate decision per request, however many times it is asked.

Two retrain requests for the same day (the monitoring run rerun, an event that lands while
the first run trains: Airflow queues a second run behind ``max_active_runs=1``) would each
train, register and decide; the second would replace the first's version, even one already
in a canary as the challenger, and announce a second candidate. So a training is keyed by
its **request key**: the run key (DAG and data day), the request's settings (not its
free-text reason) and the digests of the sets it reads. The key is a run tag, and travels
to the version with the other ``mlops.*`` tags.

- **A decided key** (a version carries it, made by another Airflow run) is not trained
  again by a run that answers a retrain request (``reuse_decided``): it returns the recorded
  outcome, ``reused``, trains nothing, moves no alias and announces nothing. A retry of the
  *same* Airflow run trains again and replaces its own attempt, as before; so does a manual
  or scheduled rerun of the date (``model_training``'s documented rerun), and a request
  whose data or settings changed (another key).
- **A key being trained** is claimed first: a small file created only if absent (``O_EXCL``
  locally, a conditional ``If-None-Match`` put on S3) beside the training sets. A second
  caller waits, bounded, until the claim is released, then finds the decision. The holder
  releases the claim on every exit; a claim left by a killed process is taken over by its
  own run's retry at once, by anyone else once it is older than ``STALE_S``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from mlops import zones
from mlops.io import storage
from mlops.registry.versions import MODEL_NAME, TAG_GATE_OUTCOME, tracking_scope
from mlops.settings import Settings

log = logging.getLogger(__name__)

TAG_REQUEST_KEY = "mlops.request_key"
WAIT_S = 3 * 3600.0  # a training's own bound (MLOPS_TRAINING_TIMEOUT's default) and more
STALE_S = 6 * 3600.0


class TrainingInProgress(RuntimeError):
    """Another run holds the request's claim and did not release it in time."""


def request_key(run_key: str, request: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """The request's identity: run key, settings without the reason, input digests."""
    settings = {k: v for k, v in request.items() if k != "reason"}
    payload = {"run_key": run_key, "request": settings, "inputs": inputs}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def claim_uri(settings: Settings, key: str) -> str:
    return storage.join(settings.zone(zones.TRAINING_SETS), "_claims", f"{key}.json")


def _create(uri: str, data: bytes, options: storage.StorageOptions | None) -> bool:
    """Write ``uri`` only if it does not exist; False when it does."""
    fs, path = storage.filesystem(uri, options)
    try:
        if storage.is_remote(uri):
            fs.pipe_file(path, data, mode="create")
        else:  # written aside, then linked: the claim appears whole or not at all
            os.makedirs(os.path.dirname(path), exist_ok=True)
            aside = f"{path}.{uuid.uuid4().hex}"
            with open(aside, "wb") as handle:
                handle.write(data)
            try:
                os.link(aside, path)
            finally:
                os.remove(aside)
    except FileExistsError:
        return False
    return True


def _holder(uri: str, options: storage.StorageOptions | None) -> tuple[str | None, float]:
    """The claim's owner and age in seconds; (None, 0) once it is gone."""
    fs, path = storage.fresh_filesystem(uri, options)
    try:
        owner = json.loads(fs.cat_file(path))["owner"]
        modified = fs.modified(path).timestamp()
    except FileNotFoundError:
        return None, 0.0
    # a lease's age: the wall clock, never a data decision
    return owner, time.time() - modified  # noqa: TID251


@contextmanager
def claimed(
    settings: Settings,
    key: str,
    owner: str,
    options: storage.StorageOptions | None = None,
    *,
    wait_s: float = WAIT_S,
    poll_s: float = 2.0,
    stale_s: float = STALE_S,
) -> Iterator[str]:
    """Hold the claim of ``key`` for the block; yields its URI."""
    uri, owner = claim_uri(settings, key), owner or f"anonymous-{uuid.uuid4().hex}"
    began = time.monotonic()
    while not _create(uri, storage.json_bytes({"owner": owner, "key": key}), options):
        held, age = _holder(uri, options)
        if held == owner:
            break  # our own run's earlier attempt, killed before it could release it
        if held is not None and age > stale_s:
            storage.remove(uri, options)
            continue
        if time.monotonic() - began > wait_s:
            raise TrainingInProgress(
                f"request {key} is being trained by {held} (claim {uri}) and was not done "
                f"within {wait_s:.0f} s; retry later, or remove the claim if {held} is dead"
            )
        time.sleep(poll_s)
    try:
        yield uri
    finally:
        with suppress(FileNotFoundError):
            storage.remove(uri, options)


def decided_version(
    tracking_uri: str, key: str, airflow_run_id: str, model_name: str = MODEL_NAME
) -> Any | None:
    """The version that decided ``key`` for another Airflow run, if any (None: train)."""
    query = f"name = '{model_name}' and tags.`{TAG_REQUEST_KEY}` = '{key}'"
    with tracking_scope(tracking_uri) as client:
        found = client.search_model_versions(query, order_by=["version_number DESC"])
    decided = [mv for mv in found if mv.tags.get(TAG_GATE_OUTCOME, "pending") != "pending"]
    if not decided or (airflow_run_id and decided[0].tags.get("airflow.run_id") == airflow_run_id):
        return None
    return decided[0]


def recorded_outcome(tracking_uri: str, version: Any) -> dict[str, Any]:
    """The outcome another run recorded for the same request, as ``TrainingOutcome``'s
    fields: nothing trained, no alias moved, ``reused``."""
    from mlops.registry import aliases

    outcome = version.tags[TAG_GATE_OUTCOME]
    reason = (
        f"the same request was decided by Airflow run {version.tags.get('airflow.run_id')} "
        f"(version {version.version}, {outcome}): not trained again, no alias moved"
    )
    log.info("%s", reason)
    state = aliases.alias_state(tracking_uri)
    moved = aliases.AliasUpdate("none", False, reason, state, state).to_dict()
    return {
        "outcome": outcome,
        "reasons": (reason,),
        "run_id": version.run_id,
        "model_version": str(version.version),
        "aliases": moved,
        "metrics": {},
        "reused": True,
    }


__all__ = [
    "TAG_REQUEST_KEY",
    "TrainingInProgress",
    "claim_uri",
    "claimed",
    "decided_version",
    "request_key",
    "recorded_outcome",
]
