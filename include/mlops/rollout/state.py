"""The rollout state, kept in the MLflow registry, and the one router both paths call.

A rollout is a fact about the registered model, so it lives there: one registered-model tag
(``mlops.rollout``) holding a small JSON document, never a file beside the registry. The
model service polls it and daily scoring reads it, so both see the same rollout.

``route(card_id, state)`` is pure: a stable hash of the card id, salted with the rollout's
start day and challenger version, picks the variant. A card therefore stays on one variant
for the whole rollout (its customer sees one model), assignments are independent from one
rollout to the next, and the service's answer for a card equals what daily scoring logs
for it. Strategies:

- ``shadow``: the champion answers every request; the challenger scores the same requests
  and its scores are only logged.
- ``canary``: a share ``canary_share`` of the cards is answered by the challenger; the
  champion still scores them, so every logged row carries both scores (paired comparison).
- ``direct``: no challenger in traffic; the champion answers everything. A first model, or a
  blue-green switch (the alias moves; ``previous`` stays warm for an instant switch back).

Writing the tag is an upsert with no history (MLflow keeps none): the deployment history is
a separate record appended by whoever moves aliases or rollouts.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

STRATEGIES = ("shadow", "canary", "direct")
CHAMPION, CHALLENGER = "champion", "challenger"
VARIANTS = (CHAMPION, CHALLENGER)
ROLLOUT_TAG = "mlops.rollout"
# 2**64 buckets: a share is honoured to ~5e-20, far below any sampling error.
_BUCKETS = 2**64


class RolloutError(ValueError):
    """An impossible rollout state; the message names the field."""


@dataclass(frozen=True)
class RolloutState:
    """What traffic a challenger gets. ``champion_version`` is the champion the rollout was
    started against (for the record; the ``champion`` alias is what serves); ``run_id`` the
    deployment run that started it and waits on its observed days."""

    strategy: str = "direct"
    challenger_version: str | None = None
    canary_share: float = 0.0
    start_day: str | None = None  # YYYY-MM-DD, the data day the rollout began
    champion_version: str | None = None
    # the deployment run that observes the rollout: a rollback's abort mark names it
    run_id: str | None = None

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise RolloutError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        share = self.canary_share
        if (
            isinstance(share, bool)
            or not isinstance(share, int | float)
            or not math.isfinite(share)
        ):
            raise RolloutError(f"canary_share must be a finite number, got {share!r}")
        if not 0.0 <= share <= 1.0:
            raise RolloutError(f"canary_share must be in [0, 1], got {share}")
        if self.strategy != "canary" and share != 0.0:
            raise RolloutError(f"canary_share must be 0 for strategy {self.strategy}")
        if self.strategy in ("shadow", "canary") and not self.challenger_version:
            raise RolloutError(f"strategy {self.strategy} needs a challenger_version")
        if self.start_day is not None:
            date.fromisoformat(self.start_day)  # raises ValueError naming the bad value
        for name in ("challenger_version", "champion_version"):
            value = getattr(self, name)
            if value is not None and not str(value).isdigit():
                raise RolloutError(f"{name} must be a version number, got {value!r}")

    @property
    def active(self) -> bool:
        """True when a challenger is in traffic (scored, and for canary also answering)."""
        return self.strategy in ("shadow", "canary")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RolloutState:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise RolloutError(f"{ROLLOUT_TAG} must hold a JSON object, got {text!r}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise RolloutError(f"{ROLLOUT_TAG} has unknown fields {sorted(unknown)}")
        return cls(**data)


NO_ROLLOUT = RolloutState()


def bucket(card_id: int | str, state: RolloutState) -> float:
    """The card's position in [0, 1) for this rollout: blake2b of the card id salted with
    the rollout's start day and challenger, so it is stable within a rollout and redrawn
    by the next one."""
    salt = f"{state.start_day}|{state.challenger_version}|{card_id}".encode()
    digest = hashlib.blake2b(salt, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _BUCKETS


def route(card_id: int | str, state: RolloutState) -> str:
    """The variant that answers for ``card_id``: ``champion`` or ``challenger``."""
    if state.strategy == "canary" and bucket(card_id, state) < state.canary_share:
        return CHALLENGER
    return CHAMPION


def scored_variants(state: RolloutState) -> tuple[str, ...]:
    """The variants that score every request: both while a challenger is in traffic."""
    return VARIANTS if state.active else (CHAMPION,)


def read_rollout(client: Any, model_name: str) -> RolloutState:
    """The model's rollout (``NO_ROLLOUT`` when the model or its tag does not exist)."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_registered_model(model_name).tags
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return NO_ROLLOUT
        raise
    return rollout_from_tags(tags)


def rollout_from_tags(tags: dict[str, str]) -> RolloutState:
    text = tags.get(ROLLOUT_TAG)
    return NO_ROLLOUT if not text else RolloutState.from_json(text)


def write_rollout(client: Any, model_name: str, state: RolloutState) -> RolloutState:
    """Store ``state`` as the model's rollout (an upsert); returns it."""
    client.set_registered_model_tag(model_name, ROLLOUT_TAG, state.to_json())
    return state


def clear_rollout(client: Any, model_name: str) -> RolloutState:
    """Back to ``direct`` with no challenger: the tag is removed (a no-op when absent)."""
    if ROLLOUT_TAG in client.get_registered_model(model_name).tags:
        client.delete_registered_model_tag(model_name, ROLLOUT_TAG)
    return NO_ROLLOUT


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "NO_ROLLOUT",
    "ROLLOUT_TAG",
    "STRATEGIES",
    "VARIANTS",
    "RolloutError",
    "RolloutState",
    "bucket",
    "clear_rollout",
    "read_rollout",
    "route",
    "rollout_from_tags",
    "scored_variants",
    "write_rollout",
]
