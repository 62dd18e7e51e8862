"""``python -m mlops.training``: one training as of a day, outside Airflow (a pod, a shell).

The same two steps as the ``model_training`` DAG (``build_training_sets`` then
``train_and_gate``) with the same request; the DAG's Params are the options. Settings come
from ``MLOPS_*``; an ``s3://`` data root is reached with the usual ``AWS_*`` variables and
``MLOPS_S3_ENDPOINT_URL``. Prints the outcome as JSON. Exit 0 whatever the gate decided,
2 for a bad request or data that is not there (a retry would not fix either).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from mlops.settings import Settings, load_settings
from mlops.training.families import DEFAULT_FAMILY, FAMILIES

if TYPE_CHECKING:  # the job module imports MLflow and the gate: not for `--help`
    from mlops.training.job import TrainingRequest

PROG = "python -m mlops.training"


def _json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {raw!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("--as-of", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    p.add_argument("--window-days", type=int, default=21)
    p.add_argument("--eval-days", type=int, default=7)
    p.add_argument("--family", default=DEFAULT_FAMILY, choices=sorted(FAMILIES))
    p.add_argument("--hyperparameters", type=_json_object, default={}, help="a JSON object")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force-review", action="store_true")
    p.add_argument("--allow-unsettled-features", action="store_true")
    p.add_argument("--reason", default="")
    p.add_argument("--dag-id", default="model_training", help="the run's key in MLflow")
    p.add_argument("--run-id", default="", help="the Airflow run that asked, if any")
    return p


def training_request(args: argparse.Namespace, settings: Settings) -> TrainingRequest:
    """The request the DAG would build from the same Params (``mlops_airflow.context``)."""
    from mlops.training.job import TrainingRequest

    return TrainingRequest(
        as_of=args.as_of,
        window_days=args.window_days,
        eval_days=args.eval_days,
        delay_days=settings.label_delay_days,
        family=args.family,
        params=args.hyperparameters,
        seed=args.seed,
        force_review=args.force_review,
        reason=args.reason,
        allow_unsettled_features=args.allow_unsettled_features,
    )


def storage_options_from_env(settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
    """s3fs options of the data root from ``AWS_*`` and the settings' endpoint."""
    if not settings.data_root.startswith("s3://"):
        return {}
    from mlops.io.storage import s3_options

    return s3_options(
        endpoint_url=settings.s3_endpoint_url,
        key=env.get("AWS_ACCESS_KEY_ID"),
        secret=env.get("AWS_SECRET_ACCESS_KEY"),
        region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION"),
        token=env.get("AWS_SESSION_TOKEN"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)  # before the heavy imports: `--help` stays instant
    import logging

    from mlops.features.inputs import MissingPartitionError
    from mlops.registry.tracking import RunContext
    from mlops.training.job import build_training_sets, train_and_gate
    from mlops.training.settled import UnsettledFeaturesError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    try:
        request = training_request(args, settings)
    except ValueError as err:
        print(f"{PROG}: bad request: {err}", file=sys.stderr)
        return 2
    options = storage_options_from_env(settings, os.environ)
    try:
        built = build_training_sets(settings, request, options)
    except (MissingPartitionError, UnsettledFeaturesError) as err:
        print(f"{PROG}: data not ready: {err}", file=sys.stderr)
        return 2
    context = RunContext(args.dag_id, request.as_of, args.run_id)
    outcome = train_and_gate(settings, request, options, context=context, sets_uri=built.sets_uri)
    print(json.dumps(outcome.to_xcom(), default=str))
    return 0
