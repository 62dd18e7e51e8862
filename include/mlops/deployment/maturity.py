"""How long a rollout is observed: until its matured rows can judge its quality.

The plan's window (``D+1 .. D+N``, judged at ``D+N`` or ``D+N+delay``) is the least a rollout
is observed. A canary is promoted on what matters, its fraud detection, so by default
(``DeploymentRequest.judge_quality``) it is then observed one more data day at a time
(``mlops.deployment.plan.extended``: its observed days, judgement day and matured days move
on together) until the rows it scored whose labels have matured hold ``min_frauds`` frauds
(``RolloutPolicy``); then it is judged, challenger against champion on those same rows with
the gate's paired bootstrap (``mlops.deployment.judge``). If the data clock reaches
``D + quality_deadline_days`` first, it is judged on health alone and a person decides
(``mlops.deployment.quality_review``). A challenger that already fails on the plan's window
(errors, latency, alert volume: ``judge`` without labels) is not kept in traffic for the
labels: its observation ends there, and it is rolled back.

Every logged row of a rollout carries both variants' scores (the challenger scores every row
in shadow and canary alike), so the matured rows of a rollout are every batch row of its
matured days, and before them the rows of the days it never saw, which the champion served
and the challenger scored by replay when it started (``mlops.deployment.replay``): a
candidate trained after a breach is then judged a week sooner, on the newest data. Nothing here keeps state: the observation is worked out again from the markers
and the log at every look, so a sensor's retry, a restart or a replay finds the same day to
judge at (the first one with enough frauds), and the same days give the same decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from mlops import zones
from mlops.deployment.judge import ROLLBACK, RolloutPolicy, judge
from mlops.deployment.plan import DeploymentPlan, extended
from mlops.deployment.replay import replayed_rows, replayed_scores
from mlops.features.names import LABEL
from mlops.io import storage
from mlops.io.partitions import require_partition
from mlops.schema import SUCCESS_MARKER, partition_name
from mlops.scoring.log import prediction_sink
from mlops.settings import Settings
from mlops.validation.partition import VALIDATED_TABLE

WAITING = "waiting"  # the days to look at are not all scored yet
OBSERVED = "observed"  # the plan's days are in; quality is not asked for (judge_quality off)
ENOUGH_FRAUDS = "enough_frauds"  # the matured rows can judge quality
FAILING = "failing"  # unhealthy on the plan's window: rolled back without waiting for labels
DEADLINE = "deadline"  # too few frauds by the deadline: a person decides


@dataclass(frozen=True)
class Observation:
    """Where a rollout's observation stands: the plan as observed so far (``extra_days``
    beyond the plan's window), the matured rows and frauds it holds, what is still missing."""

    status: str
    plan: DeploymentPlan
    extra_days: int
    deadline_day: str
    min_frauds: int
    matured_rows: int = 0
    frauds: int = 0
    missing: tuple[str, ...] = ()

    @property
    def concluded(self) -> bool:
        return self.status != WAITING

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "extra_days": self.extra_days,
            "judge_day": self.plan.judge_day,
            "observed_days": list(self.plan.observed_days),
            "label_days": list(self.plan.label_days),
            "replayed_days": list(self.plan.replayed_days),
            "deadline_day": self.deadline_day,
            "min_frauds": self.min_frauds,
            "matured_rows": self.matured_rows,
            "frauds": self.frauds,
        }


def deadline_day(plan: DeploymentPlan) -> date:
    request = plan.request
    return request.day + timedelta(days=request.quality_deadline_days)


def follow(
    plan: DeploymentPlan,
    *,
    delay_days: int,
    min_frauds: int,
    missing: Callable[[DeploymentPlan], list[str]],
    matured: Callable[[str], tuple[int, int]],
    healthy: Callable[[DeploymentPlan], bool] = lambda plan: True,
) -> Observation:
    """The observation of ``plan`` (pure): ``missing(plan)`` names the markers of a window
    not there yet, ``matured(day)`` counts the rollout's batch rows of a matured day and
    their frauds, ``healthy(plan)`` says whether the challenger passes the checks that need
    no label on the plan's own window. The first window, from the plan's own on, that is
    scored and holds ``min_frauds`` frauds, or reaches the deadline; or the first one still
    being scored; or the plan's own, when the challenger fails there."""
    last = deadline_day(plan)
    counts: dict[str, tuple[int, int]] = {}
    extra = 0
    while True:
        at = extended(plan, extra, delay_days)
        found = (at, extra, last.isoformat(), min_frauds)
        absent = missing(at)
        if absent:
            return Observation(WAITING, *found, missing=tuple(absent))
        if not plan.observes or not plan.request.judge_quality:
            return Observation(OBSERVED, *found)
        if extra == 0 and not healthy(at):
            return Observation(FAILING, *found)
        for day in at.label_days:
            if day not in counts:
                counts[day] = matured(day)
        rows = sum(counts[d][0] for d in at.label_days)
        frauds = sum(counts[d][1] for d in at.label_days)
        if min_frauds <= frauds < rows:  # all frauds: no ranking to judge either
            return Observation(ENOUGH_FRAUDS, *found, rows, frauds)
        if date.fromisoformat(str(at.judge_day)) >= last:
            return Observation(DEADLINE, *found, rows, frauds)
        extra += 1


def observation_markers(settings: Settings, plan: DeploymentPlan) -> list[str]:
    """The ``_SUCCESS`` markers whose presence means the rollout can be judged: the scored
    batch partitions of the observed days and, for the labels, the validated partition of
    the judgement day (the data clock has reached it)."""
    batch = storage.join(settings.zone(zones.PREDICTIONS), "batch")
    markers = [storage.join(batch, partition_name(d), SUCCESS_MARKER) for d in plan.observed_days]
    if plan.judge_day and plan.judge_day not in plan.observed_days:
        validated = settings.zone(zones.VALIDATED)
        markers.append(storage.join(validated, partition_name(plan.judge_day), SUCCESS_MARKER))
    return markers


def labels(
    settings: Settings, days: list[str], options: storage.StorageOptions | None
) -> pd.DataFrame:
    """``transaction_id`` and ``TX_FRAUD`` of the validated partitions of ``days``."""
    parts = []
    for day in days:
        folder = storage.join(settings.zone(zones.VALIDATED), partition_name(day))
        uri = require_partition(folder, options).file(VALIDATED_TABLE)
        parts.append(storage.read_parquet(uri, options)[["TRANSACTION_ID", LABEL]])
    if not parts:
        return pd.DataFrame({"transaction_id": [], LABEL: []}, dtype="int64")
    return pd.concat(parts, ignore_index=True).rename(columns={"TRANSACTION_ID": "transaction_id"})


def _logged(
    settings: Settings,
    days: Sequence[str],
    sources: tuple[str, ...],
    options: storage.StorageOptions | None,
) -> pd.DataFrame:
    sink = prediction_sink(settings.data_root, settings.prediction_log_url, options)
    frames = [sink.read_day(s, date.fromisoformat(d)) for d in days for s in sources]
    return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)


def _read(
    settings: Settings,
    days: Sequence[str],
    sources: tuple[str, ...],
    version: str,
    options: storage.StorageOptions | None,
) -> pd.DataFrame:
    """The logged rows of ``days`` from ``sources`` that ``version`` scored as challenger."""
    rows = _logged(settings, days, sources, options)
    return rows.loc[rows["challenger_version"] == version].reset_index(drop=True)


def _replayed(
    settings: Settings,
    plan: DeploymentPlan,
    days: Sequence[str],
    options: storage.StorageOptions | None,
    scores: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The batch rows of replayed ``days``, the challenger's replayed score beside the
    champion's (``mlops.deployment.replay``), with their labels."""
    if scores is None:
        scores = replayed_scores(settings, plan, options)
    rows = replayed_rows(_logged(settings, days, ("batch",), options), scores, plan)
    return rows.merge(labels(settings, list(days), options), on="transaction_id")


def observed_rows(
    settings: Settings, plan: DeploymentPlan, options: storage.StorageOptions | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The logged rows of the observed days scored by the rollout's challenger (batch and
    service), and the rows whose labels are known at the judgement day: those of them, and
    the replayed rows of the matured days it never saw."""
    version = str(plan.request.version)
    rows = _read(settings, plan.observed_days, ("batch", "service"), version, options)
    batch = rows.loc[rows["source"] == "batch"]  # the service's rows repeat batch ones
    served = [d for d in plan.label_days if d not in plan.replayed_days]
    labelled = batch.merge(labels(settings, served, options), on="transaction_id")
    labelled = labelled.assign(replayed=False)
    replayed = [d for d in plan.label_days if d in plan.replayed_days]
    if replayed:
        found = _replayed(settings, plan, replayed, options).assign(replayed=True)
        labelled = pd.concat([labelled, found[labelled.columns]], ignore_index=True)
    return rows, labelled


def observe(
    settings: Settings,
    plan: DeploymentPlan,
    options: storage.StorageOptions | None = None,
    policy: RolloutPolicy | None = None,
) -> Observation:
    """The observation of ``plan`` on the markers and the log of ``settings``, judged by
    ``policy`` (its ``min_frauds``; its health checks on the plan's window)."""
    policy = policy or RolloutPolicy()
    version = str(plan.request.version)

    def missing(at: DeploymentPlan) -> list[str]:
        return [m for m in observation_markers(settings, at) if not storage.exists(m, options)]

    scores = replayed_scores(settings, plan, options)

    def matured(day: str) -> tuple[int, int]:
        if day in plan.replayed_days:
            found = _replayed(settings, plan, [day], options, scores)
        else:
            batch = _read(settings, [day], ("batch",), version, options)
            found = batch.merge(labels(settings, [day], options), on="transaction_id")
        return len(found), int(found[LABEL].sum()) if len(found) else 0

    def healthy(at: DeploymentPlan) -> bool:
        rows, _ = observed_rows(settings, at, options)
        return judge(rows, rows.head(0), policy).verdict != ROLLBACK

    return follow(
        plan,
        delay_days=settings.label_delay_days,
        min_frauds=policy.min_frauds,
        missing=missing,
        matured=matured,
        healthy=healthy,
    )


__all__ = [
    "DEADLINE",
    "ENOUGH_FRAUDS",
    "FAILING",
    "OBSERVED",
    "WAITING",
    "Observation",
    "deadline_day",
    "follow",
    "labels",
    "observation_markers",
    "observe",
    "observed_rows",
]
