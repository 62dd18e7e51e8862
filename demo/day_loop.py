"""The closed loop without the scheduler: each data day, the stage entries the DAGs' tasks
call, run in this process in the order the runs reach them.

A test about the loop's decisions (breaches, cooldown and budget, the gate, rollouts) needs
the DAGs' work, not Airflow's scheduling of it, which costs most of the wall time on two
cores; the scheduler has an end-to-end test of its own. Each function below stands for one
DAG and names the tasks it replays; what a run takes from Airflow it takes the same way:

* Params are the DAG's own, parsed from ``dags/`` (so the ``MLOPS_*`` variables of the
  environment set their defaults exactly as they do for the scheduler), with a run's conf;
* an asset-triggered run gets its day and inputs from the event extra the upstream task
  emits, built and read by the same ``mlops`` functions (``mlops.training.requests``,
  ``mlops.deployment.plan.deployment_request``, ``mlops.deployment.events``: a run woken by
  several queued events acts on the one ``choose_event`` picks);
* sensors become checks of the same markers, which a sequential loop finds present, except
  the rollout's: its observed days are scored days later, and it is judged on the first day
  they all are and its matured rows hold enough frauds (or its deadline passed), as
  ``ObservedDaysSensor`` fires.

The order is the one ``demo.closed_loop.run_loop`` settles each day in before the next one
lands: the day's transactions; then what waits for its scores (the rollout judged on it,
and its monitoring); then the training a retrain decision asks for, and the deployment of an
approved candidate. model_deployment runs one at a time (``max_active_runs=1``): a run that
comes while a rollout is observed starts once that rollout has ended. model_rollback does
not wait: it runs as soon as monitoring asks, and ends a rollout observed meanwhile. No
training is ever running while a day is decided (the scheduler's loop finishes it before the
next day lands).
Nothing asks a person: the demo's rollouts need no approval (``require_approval`` is off),
and a candidate the gate sends for review, or a canary unjudged by its deadline, is recorded
as nobody answering in time, as ``review_candidate`` and ``decide_quality`` time out in the
demo (``MLOPS_REVIEW_TIMEOUT_H``, ``MLOPS_ROLLOUT_DECISION_TIMEOUT_H``).
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

DAGS = Path(__file__).resolve().parents[1] / "dags"
RUN_DAGS = ("model_monitoring", "model_training", "model_deployment", "model_rollback")


def dag_params(dag_id: str) -> Mapping[str, Any]:
    """The DAG's Params, parsed from its file as the scheduler parses it."""
    spec = importlib.util.spec_from_file_location(f"day_loop_{dag_id}", DAGS / f"{dag_id}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, dag_id)().params


def run_params(params: Mapping[str, Any], conf: Mapping[str, Any] | None = None) -> dict:
    """What a run's ``context["params"]`` holds: the defaults, overridden by its conf,
    validated against the Params' schemas."""
    import copy

    resolved = copy.deepcopy(params)
    for name, value in (conf or {}).items():
        resolved[name] = value
    return resolved.validate()


def _options(settings: Any) -> dict[str, Any]:
    from mlops_airflow.context import task_storage_options

    return task_storage_options(settings)


def _run_id(run_type: str) -> str:
    from mlops_airflow.context import wall_clock

    return f"{run_type}__{wall_clock()}"


def transactions_daily(settings: Any, day: str) -> None:
    """validate_partition (ingest, then validate), materialize_features (build, then
    materialise), score_transactions (the landing and earlier-days sensors hold: days land in
    order)."""
    from mlops.features.pipeline import build_day_features, materialize_day_features
    from mlops.ingestion.landing import ingest_partition
    from mlops.scoring.daily import score_day
    from mlops.validation.partition import validate_partition

    options = _options(settings)
    day = ingest_partition(settings, day, options).day
    day = validate_partition(settings, day, options).day
    day = build_day_features(settings, day, options).day
    materialize_day_features(settings, day, options)
    score_day(settings, day, options)


def model_monitoring(settings: Any, day: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """decide (monitor, then the policy; no training runs meanwhile); the decision as its
    XCom."""
    from mlops.monitoring.daily import html_wanted, monitor_day
    from mlops.retraining.decisions import decide_day

    options = _options(settings)
    html = html_wanted(params.get("html_report"), os.environ)
    summary = monitor_day(settings, params.get("day") or day, options, html=html).to_xcom()
    return decide_day(settings, summary["day"], options, training_active=False).to_xcom()


def model_training(
    settings: Any, params: Mapping[str, Any], extras: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The run a ``retrain_request`` event triggers: build_training_sets, train_and_gate, a
    review that nobody answers (recorded as timed out) when the gate asks for one, and
    announce_candidate's event extra when the gate approved (None otherwise)."""
    from mlops.deployment.approval import decide
    from mlops.deployment.review import CandidateReview, needs_review, record_review
    from mlops.registry.tracking import RunContext
    from mlops.training.job import build_training_sets, train_and_gate
    from mlops.training.requests import (
        candidate_event,
        requested_breach_since,
        requested_day,
        requested_reason,
        training_request,
    )
    from mlops_airflow.context import wall_clock

    options, day = _options(settings), requested_day(extras)
    request = training_request(
        params,
        day,
        settings.label_delay_days,
        requested_reason(extras),
        requested_breach_since(extras),
    )
    built = build_training_sets(settings, request, options)
    context = RunContext("model_training", day, _run_id("asset_triggered"))
    outcome = train_and_gate(
        settings, request, options, context=context, sets_uri=built.sets_uri, reuse_decided=True
    )
    if needs_review(outcome.to_xcom()):  # review_candidate: nobody answers in time
        review = CandidateReview.from_outcome(
            outcome.to_xcom(),
            day,
            actor="model_training/asset_triggered",
            run_id=context.airflow_run_id,
        )
        nobody = decide({"timedout": True, "chosen_options": ["Reject"]}, requester=None)
        record_review(settings, review, nobody, options, recorded_at=wall_clock())
    announce = outcome.outcome == "approve" and not outcome.reused
    return candidate_event(outcome.to_xcom(), day) if announce else None


def _chosen(asset: str, extras: list[dict[str, Any]]) -> Any:
    """The event a run woken by ``extras`` (in emission order) acts on, and the others."""
    from mlops.deployment.events import TriggeringEvent, choose_event

    return choose_event(TriggeringEvent(asset, extra) for extra in extras)


def model_deployment(
    settings: Any,
    params: Mapping[str, Any],
    extras: list[dict[str, Any]],
    run_type: str,
    day: date,
) -> Any:
    """plan_deployment (on the ``candidate_model`` events ``extras``, if any), then
    start_rollout when choose_path goes there; the plan when a rollout is to be observed
    (judged later by ``finish_observed``), else None."""
    from mlops.deployment.plan import deployment_request
    from mlops.deployment.run import Approval, plan, start
    from mlops_airflow.context import wall_clock

    actor, choice = f"model_deployment/{run_type}", _chosen("candidate_model", extras)
    request = deployment_request(
        params,
        choice.extra,
        fallback_day=day,
        actor=actor,
        run_id=_run_id(run_type),
        superseded=choice.superseded_records(),
    )
    planned = plan(settings, request)
    if planned.path != "start":
        return None
    if planned.request.require_approval:
        raise RuntimeError(f"{planned.why}: approve_rollout waits for a person; nobody is here")
    start(settings, planned, _options(settings), approval=Approval(), recorded_at=wall_clock())
    return planned if planned.strategy != "direct" else None


def model_rollback(
    settings: Any, params: Mapping[str, Any], extras: list[dict[str, Any]], day: date
) -> str | None:
    """The run the ``rollback_request`` events ``extras`` wake: plan_rollback, then roll_back
    unless there is nothing to roll back; the id of the deployment run whose rollout it
    aborted, if any."""
    from mlops.deployment.rollback import plan_rollback, roll_back_preempting, rollback_request
    from mlops_airflow.context import wall_clock

    run_type, choice = "asset_triggered", _chosen("rollback_request", extras)
    request = rollback_request(
        params,
        choice.extra,
        fallback_day=day,
        actor=f"model_rollback/{run_type}",
        run_id=_run_id(run_type),
        superseded=choice.superseded_records(),
    )
    planned = plan_rollback(settings, request)
    if planned.deployment.path != "rollback":
        return None
    done = roll_back_preempting(settings, planned, _options(settings), recorded_at=wall_clock())
    return planned.rollout.run_id if done.aborted else None


def finish_observed(settings: Any, planned: Any) -> bool:
    """wait_for_observed_days, judge_rollout, then finish_rollout or decide_quality: True
    when the observation concluded (``mlops.deployment.maturity``) and the rollout ended
    (promoted or withdrawn). Nobody is here to decide a canary unjudged by its deadline: its
    decision times out (rolled back), as decide_quality does in the demo."""
    from mlops.deployment.approval import decide
    from mlops.deployment.judge import REVIEW
    from mlops.deployment.maturity import observe
    from mlops.deployment.quality_review import record_quality_decision
    from mlops.deployment.run import finish, judge_rollout
    from mlops_airflow.context import wall_clock

    options = _options(settings)
    if not observe(settings, planned, options).concluded:
        return False
    verdict = judge_rollout(settings, planned, options)
    if verdict.verdict == REVIEW:
        nobody = decide({"chosen_options": ["Reject"], "timedout": True}, requester=None)
        record_quality_decision(
            settings, planned, verdict, nobody, options, recorded_at=wall_clock()
        )
    else:
        finish(settings, planned, verdict, options, recorded_at=wall_clock())
    return True


class DayLoop:
    """The DAGs' runs for one data day after another, on the settings of this process."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.params = {dag_id: dag_params(dag_id) for dag_id in RUN_DAGS}
        # model_deployment runs: conf, the candidate_model events that woke it, run type
        self.queued: deque[tuple[dict, list[dict], str]] = deque()
        self.observed: Any = None  # the plan of the rollout being observed

    def run_day(self, day: date) -> dict[str, Any]:
        """One data day, landed already; its decision."""
        transactions_daily(self.settings, day.isoformat())
        self._deployments(day)
        monitoring = run_params(self.params["model_monitoring"])
        decision = model_monitoring(self.settings, day.isoformat(), monitoring)
        if decision["action"] == "retrain":
            self._training(decision)
        elif decision["action"] == "rollback":  # request_rollback: its event wakes a run
            self._rollback(decision, day)
        self._deployments(day)
        return decision

    def _rollback(self, decision: dict[str, Any], day: date) -> None:
        from mlops.deployment.events import rollback_event

        params = run_params(self.params["model_rollback"])  # an asset-triggered run's
        aborted = model_rollback(self.settings, params, [rollback_event(decision)], day)
        if self.observed is not None and aborted == self.observed.request.run_id:
            self.observed = None  # its sensor ends at the abort mark, skipped

    def _training(self, decision: dict[str, Any]) -> None:
        from mlops.training.requests import retrain_request

        params = run_params(self.params["model_training"])
        candidate = model_training(self.settings, params, [retrain_request(decision)])
        if candidate is not None:
            # one asset-triggered run for the events that queued up meanwhile, which deploys
            # the one mlops.deployment.events.choose_event picks (Airflow 3.3.2 hands it only
            # those up to the first queued: apache/airflow#56050; here, all of them)
            woken = [
                extra for run in self.queued if run[2] == "asset_triggered" for extra in run[1]
            ]
            kept = [run for run in self.queued if run[2] != "asset_triggered"]
            self.queued = deque([*kept, ({}, [*woken, candidate], "asset_triggered")])

    def _deployments(self, day: date) -> None:
        """Judge the observed rollout if its days are in, then start the queued runs in turn
        while none is observed."""
        while True:
            if self.observed is not None:
                if not finish_observed(self.settings, self.observed):
                    return
                self.observed = None
            if not self.queued:
                return
            conf, extras, run_type = self.queued.popleft()
            params = run_params(self.params["model_deployment"], conf)
            self.observed = model_deployment(self.settings, params, extras, run_type, day)


def run_days(
    config: Any,
    transactions: Any,
    data_root: Path,
    *,
    first_index: int = 0,
    progress: Callable[[str], None] = print,
) -> None:
    """Land the days from ``first_index`` on, one by one, each run through the loop."""
    from demo.closed_loop import progress_line
    from mlops import zones
    from mlops.settings import load_settings
    from mlops.simulator import write_landing

    simulation, settings = config.simulation(), load_settings()
    loop, landing = DayLoop(settings), str(data_root / zones.LANDING)
    started = time.monotonic()
    for index in range(first_index, config.days):
        day = simulation.day(index)
        write_landing(transactions, landing, simulation, days=[index])
        loop.run_day(day)
        progress(progress_line(settings, day, index + 1, config.days, started))


def monitoring_backfill(settings: Any, first: date, last: date) -> None:
    """model_monitoring again over ``first .. last``, as ``airflow backfill create`` runs it:
    each day's run with the DAG's Params, in order (``max_active_runs=1``)."""
    from datetime import timedelta

    params = run_params(dag_params("model_monitoring"))
    for offset in range((last - first).days + 1):
        model_monitoring(settings, (first + timedelta(days=offset)).isoformat(), params)
