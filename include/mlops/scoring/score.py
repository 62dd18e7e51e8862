"""Score feature rows through the router: the step the service and daily scoring share.

Every variant in traffic scores every row (``scored_variants``); ``route`` picks which score
answers. A challenger that raises, or returns a score that is not a finite probability, is
never allowed to answer: its rows fall back to the champion and the failure is recorded in
``challenger_error``; so is a challenger that could not even be loaded (``load_serving``).
A champion failure is not caught: there is nothing to fall back to.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops.features.names import FEATURES
from mlops.rollout.live import LiveVariants
from mlops.rollout.state import CHALLENGER, CHAMPION, route
from mlops.scoring.row_scorer import RowScorer


class NoChampionError(RuntimeError):
    """Nothing can be scored: the registry has no champion yet."""


@dataclass(frozen=True)
class ServingModels:
    """A frozen snapshot of what serves: the live variants and their loaded models.

    The service swaps one snapshot for another in a single assignment, so a request sees
    either the old models and rollout or the new ones, never a mix."""

    live: LiveVariants
    models: Mapping[str, Any]  # variant -> fitted pipeline, for the versions in ``live``
    failed: Mapping[str, str] = field(default_factory=dict)  # role -> why it is left out
    # role -> the version left out, where it is not live's (a refused champion: the last
    # good one serves on)
    failed_versions: Mapping[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.live.champion is not None and CHAMPION in self.models


@dataclass(frozen=True)
class Scores:
    """Per row: each variant's score, and the variant and score that answer."""

    champion: np.ndarray
    challenger: np.ndarray | None  # NaN where the challenger failed; None without one
    variant: list[str]
    score: np.ndarray
    challenger_error: str | None


def load_serving(live: LiveVariants, load: Callable[[str], Any]) -> ServingModels:
    """The models of ``live``, each loaded by ``load(version)``. A challenger that cannot be
    loaded (or warmed up) is left out with the reason, so the champion still serves and every
    row says why the challenger has no score; a champion that cannot be loaded raises."""
    models: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for variant, version in live.versions().items():
        try:
            models[variant] = load(version)
        except Exception as err:
            if variant == CHAMPION:
                raise
            failed[variant] = failure(variant, version, err)
    return ServingModels(live, models, failed)


def failure(role: str, version: str, err: BaseException) -> str:
    """One line naming the version and the error (MLflow's can run to pages)."""
    return f"{role} v{version} failed to load: {type(err).__name__}: {err}"[:500]


Rows = pd.DataFrame | np.ndarray  # a frame with the FEATURES, or floats in their order


def _probabilities(model: Any, rows: Rows) -> np.ndarray:
    if isinstance(model, RowScorer):
        return model.scores(rows)
    if not isinstance(rows, pd.DataFrame):
        rows = pd.DataFrame(rows, columns=list(FEATURES))
    return np.asarray(model.predict_proba(rows)[:, 1], dtype=np.float64)


def _valid(scores: np.ndarray, rows: int) -> str | None:
    if scores.shape != (rows,):
        return f"challenger returned shape {scores.shape} for {rows} rows"
    if not np.all(np.isfinite(scores)) or np.any((scores < 0) | (scores > 1)):
        return "challenger returned scores outside [0, 1] or not finite"
    return None


def _challenger_scores(model: Any, frame: Rows) -> tuple[np.ndarray, str | None]:
    try:
        scores = _probabilities(model, frame)
    except Exception as err:  # a broken challenger must never take a request down
        return np.full(len(frame), np.nan), f"challenger raised {type(err).__name__}: {err}"
    problem = _valid(scores, len(frame))
    return (np.full(len(frame), np.nan), problem) if problem else (scores, None)


def score_rows(serving: ServingModels, card_ids: Sequence[int], features: Rows) -> Scores:
    """Score ``features`` (the 15 model inputs, one row per card id: a frame, or a float
    array in ``FEATURES`` order, the cheap form for a few rows) with every variant."""
    if not serving.ready:
        raise NoChampionError("no champion is loaded: nothing to score with")
    columns = list(FEATURES)
    frame = features
    if isinstance(features, pd.DataFrame) and list(features.columns) != columns:
        frame = features[columns]
    champion = _probabilities(serving.models[CHAMPION], frame)
    challenger, error = None, None
    if serving.live.challenger is not None and CHALLENGER in serving.models:
        challenger, error = _challenger_scores(serving.models[CHALLENGER], frame)
    elif serving.live.challenger is not None:  # in the rollout, but it could not be loaded
        challenger = np.full(len(frame), np.nan)
        error = serving.failed.get(CHALLENGER, f"challenger v{serving.live.challenger} not loaded")
    state = serving.live.rollout
    wanted = [route(card, state) for card in card_ids]
    variant = [
        CHALLENGER if v == CHALLENGER and challenger is not None and not math.isnan(s) else CHAMPION
        for v, s in zip(wanted, challenger if challenger is not None else champion, strict=True)
    ]
    score = np.array(
        [
            challenger[i] if v == CHALLENGER else champion[i]  # type: ignore[index]
            for i, v in enumerate(variant)
        ],
        dtype=np.float64,
    )
    return Scores(champion, challenger, variant, score, error)


def versions_of(serving: ServingModels, variants: Sequence[str]) -> list[str]:
    return [serving.live.versions()[v] for v in variants]


__all__ = [
    "NoChampionError",
    "Scores",
    "ServingModels",
    "failure",
    "load_serving",
    "score_rows",
    "versions_of",
]
