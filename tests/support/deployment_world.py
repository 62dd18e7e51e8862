"""A world a rollout can be run in: validated and feature partitions of every day (daily
scoring reads them; the labels come from the validated zone) and a registry holding
versions that are good, garbage (fitted on a wrong target: it alerts on half the
traffic) or broken (fitted on 14 of the 15
features, so scoring the 15 raises).

Rollouts start on ``START`` (day 36 of ``tests.support.feature_data``'s 50 days) and are
observed on the next days; ``score_days`` plays the part of transactions_daily.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from mlops import zones
from mlops.features.names import FEATURES, LABEL
from mlops.registry.versions import MODEL_NAME
from mlops.settings import Settings
from tests.support.feature_data import day, offline_rows, publish_all, settings_for, transactions
from tests.support.serving_world import TRAIN, register_fitted

START = day(36)


@dataclass(frozen=True)
class Versions:
    good: str
    better: str
    garbage: str
    broken: str


@dataclass(frozen=True)
class DeploymentWorld:
    root: Path
    settings: Settings
    env: dict[str, str]
    versions: Versions


def _register(tracking_uri: str, root: Path, model, columns: list[str], label) -> str:
    frame = offline_rows(root, *TRAIN)
    model.fit(frame[columns], label(frame))
    return register_fitted(tracking_uri, root, model)


def build_deployment_world(root: Path) -> DeploymentWorld:
    from sklearn.ensemble import HistGradientBoostingClassifier as HGB

    publish_all(root, transactions(), snapshot_days=range(0))
    tracking = f"sqlite:///{root}/mlflow.db"
    settings = settings_for(root, MLFLOW_TRACKING_URI=tracking)
    env = {
        "MLOPS_DATA_ROOT": str(root),
        "MLOPS_HISTORY_START": settings.history_start.isoformat(),
        "MLOPS_MLFLOW_TRACKING_URI": tracking,
    }
    columns = list(FEATURES)

    def wrong_target(frame):  # "fraud" = an amount above the median: alerts on half the traffic
        return (frame["TX_AMOUNT"] > frame["TX_AMOUNT"].median()).astype(int).to_numpy()

    versions = Versions(
        good=_register(tracking, root, HGB(max_iter=15, random_state=1), columns, _labels),
        better=_register(tracking, root, HGB(max_iter=30, random_state=2), columns, _labels),
        garbage=_register(tracking, root, HGB(max_iter=15, random_state=3), columns, wrong_target),
        broken=_register(tracking, root, HGB(max_iter=5, random_state=4), columns[1:], _labels),
    )
    return DeploymentWorld(root, settings, env, versions)


def register_with_data_end(world: DeploymentWorld, data_end: date, seed: int = 5) -> str:
    """A good version whose run says its data ended on ``data_end`` (``eval_end``), as a
    training run's does."""
    from sklearn.ensemble import HistGradientBoostingClassifier as HGB

    from mlops.rollout.live import registry_client

    uri = world.settings.mlflow_tracking_uri
    version = _register(
        uri, world.root, HGB(max_iter=30, random_state=seed), list(FEATURES), _labels
    )
    client = registry_client(uri)
    client.log_param(client.get_model_version(MODEL_NAME, version).run_id, "eval_end", data_end)
    return version


def _labels(frame):
    return frame[LABEL].to_numpy()


def observed(start: date, days: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(1, days + 1)]


def score_days(settings: Settings, days: list[date]) -> None:
    """What transactions_daily's score_transactions does for each day."""
    from mlops.scoring.daily import score_day

    for each in days:
        score_day(settings, each)


def reset_registry(
    settings: Settings, champion: str | None = None, previous: str | None = None
) -> None:
    """No aliases, no rollout, no deployment history, no abort marks, no prediction log;
    then ``champion`` and ``previous`` if given."""
    import shutil

    from mlops.registry.history import history_uri
    from mlops.rollout.live import registry_client
    from mlops.rollout.state import clear_rollout

    shutil.rmtree(history_uri(settings), ignore_errors=True)
    shutil.rmtree(settings.zone(zones.ROLLOUT_ABORTS), ignore_errors=True)
    shutil.rmtree(settings.zone(zones.PREDICTIONS), ignore_errors=True)  # days not yet scored
    client = registry_client(settings.mlflow_tracking_uri)
    for alias in ("champion", "challenger", "previous"):
        client.delete_registered_model_alias(MODEL_NAME, alias)
    clear_rollout(client, MODEL_NAME)
    if champion:
        client.set_registered_model_alias(MODEL_NAME, "champion", champion)
    if previous:
        client.set_registered_model_alias(MODEL_NAME, "previous", previous)
