"""The challenger's scores on the days it never saw, for its rollout's quality judgement.

A candidate's data ends with its evaluation week; the days after it, up to the rollout's
start ``D``, were served by the champion and neither trained nor judged the candidate
(``mlops.deployment.plan.unseen_days``). When the rollout starts, the challenger scores
their offline feature partitions (the rows daily scoring scored: the same features, so the
same scores it would have served) and the scores are written once, whole or not at all,
beside the rollout's evidence. As those days' labels mature, their rows join the rollout's
matured rows, paired with the champion's logged score of the same transaction
(``replayed_rows``). Only a version the gate approved is loaded (``load_version`` checks).
"""

from __future__ import annotations

import logging

import pandas as pd

from mlops import zones
from mlops.deployment.plan import DeploymentPlan
from mlops.features.names import FEATURES
from mlops.io import storage
from mlops.registry.versions import MODEL_NAME
from mlops.scoring.daily import day_features
from mlops.settings import Settings

log = logging.getLogger(__name__)
DTYPES = {"day": "object", "transaction_id": "int64", "challenger_score": "float64"}


def _empty() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in DTYPES.items()})


def replay_uri(settings: Settings, plan: DeploymentPlan) -> str:
    name = f"{MODEL_NAME}-v{plan.request.version}-{plan.request.day.isoformat()}.parquet"
    return storage.join(settings.zone(zones.DEPLOYMENT_REPORTS), "replay", name)


def replay_unseen(
    settings: Settings, plan: DeploymentPlan, options: storage.StorageOptions | None = None
) -> str | None:
    """Score the plan's replayed days with its challenger; the file written (None: no day to
    replay). A day without a feature partition is left out (it has no logged rows either)."""
    if not plan.replayed_days:
        return None
    from mlops.rollout.live import load_version

    model = load_version(settings.mlflow_tracking_uri, MODEL_NAME, str(plan.request.version))
    frames = []
    for day in plan.replayed_days:
        features = day_features(settings, day, options)
        if features is None:
            log.warning("no feature partition of %s: not replayed", day)
            continue
        scores = model.predict_proba(features.loc[:, list(FEATURES)])[:, 1]
        frames.append(
            pd.DataFrame(
                {
                    "day": day,
                    "transaction_id": features["TRANSACTION_ID"].astype("int64"),
                    "challenger_score": scores.astype("float64"),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True) if frames else _empty()
    return storage.write_bytes_atomic(
        replay_uri(settings, plan), storage.parquet_bytes(frame), options
    )


def replayed_scores(
    settings: Settings, plan: DeploymentPlan, options: storage.StorageOptions | None = None
) -> pd.DataFrame:
    """The replayed scores of the plan's challenger (empty when none were written)."""
    uri = replay_uri(settings, plan)
    if not plan.replayed_days or not storage.exists(uri, options):
        return _empty()
    return storage.read_parquet(uri, options)


def replayed_rows(logged: pd.DataFrame, scores: pd.DataFrame, plan: DeploymentPlan) -> pd.DataFrame:
    """The logged batch rows of replayed days that the plan's champion scored, each paired
    with the challenger's replayed score (pure). They count as served by the champion."""
    champion = plan.aliases.champion
    rows = logged.loc[logged["champion_version"].astype(str) == str(champion)]
    rows = rows.drop(columns=["challenger_score"]).merge(
        scores[["transaction_id", "challenger_score"]], on="transaction_id"
    )
    return rows.assign(
        challenger_version=str(plan.request.version),
        challenger_error=None,
        variant="champion",
        score=rows["champion_score"],
        latency_ms=float("nan"),
    )


__all__ = ["replay_unseen", "replay_uri", "replayed_rows", "replayed_scores"]
