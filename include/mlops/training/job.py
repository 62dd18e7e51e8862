"""One training as of a logical date D: data windows, training sets, the candidate, the gate.

Everything a run uses is known at D: labels mature ``delay`` days after the transaction, so
the data window is ``[D - delay - window_days, D - delay)``. Its last ``eval_days`` are the
held-out evaluation window, the most recent matured days; the candidate trains on the days
before it, minus a gap of ``delay`` days, as the handbook's protocol does (train 7, skip 7,
test 7 for the default window of 21 days): a deployed model scores transactions whose
recent labels it has never seen. Candidate and champion are judged on the same rows.

A run asked for after a breach (``breach_since``: the first data day of the breach, carried
by the retrain request) drops the gap (``mlops.training.windows``): it trains on the 14 days
right before the held-out week, so it holds the matured days of the new data, and is judged
on the latest matured week. If the gate approves, the model that is registered is refit on
the whole window, training and evaluation days (same family, hyperparameters and seed): the
evaluation week is the newest evidence of the change, and a model promoted without it would
serve a week behind. The gate judged the model trained without that week; the run's tags
and the model card say both (``mlops.gated_on``, ``mlops.registered_model``), and the
logged metrics are the gated model's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from mlops import zones
from mlops.gate.compare import evaluate_against_champion
from mlops.gate.decision import GateDecision
from mlops.gate.policy import GatePolicy
from mlops.gate.report import decision_record, render_model_card
from mlops.io import storage
from mlops.io.partitions import Partition, publish_partition, require_partition
from mlops.registry import aliases, tracking
from mlops.registry import versions as registry
from mlops.schema import partition_name
from mlops.settings import Settings
from mlops.training import claims
from mlops.training.estimators import train
from mlops.training.families import DEFAULT_FAMILY, validate_params
from mlops.training.settled import settlement
from mlops.training.windows import DEFAULT_WINDOW_DAYS, DataWindow, data_window

log = logging.getLogger(__name__)

TRAINING_TABLE = "training.parquet"
EVALUATION_TABLE = "evaluation.parquet"
KNOWN_FRAUDS_TABLE = "known_frauds.parquet"  # mlops.evaluation.history: who is known


@dataclass(frozen=True)
class TrainingRequest:
    """What a run of ``model_training`` was asked to do (its Params, validated)."""

    as_of: date
    window_days: int = DEFAULT_WINDOW_DAYS
    eval_days: int = 7
    delay_days: int = 7
    family: str = DEFAULT_FAMILY
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    force_review: bool = False
    reason: str = ""
    allow_unsettled_features: bool = False  # see mlops.training.settled
    breach_since: date | None = None  # a request after a breach: no gap, refit once approved

    def __post_init__(self) -> None:
        object.__setattr__(self, "as_of", date.fromisoformat(str(self.as_of)[:10]))
        if self.breach_since is not None:
            since = date.fromisoformat(str(self.breach_since)[:10])
            object.__setattr__(self, "breach_since", since)
        object.__setattr__(self, "params", validate_params(self.family, self.params))
        _ = self.window  # validates the lengths

    @property
    def after_breach(self) -> bool:
        return self.breach_since is not None

    @property
    def window(self) -> DataWindow:
        """The held-out days are the most recent matured ones; the training days are those
        matured when the held-out window starts (the label delay separates the two), or,
        after a breach, the days right before it."""
        return data_window(
            self.as_of,
            self.window_days,
            self.eval_days,
            self.delay_days,
            gap=not self.after_breach,
        )

    def to_dict(self) -> dict[str, Any]:
        since = self.breach_since.isoformat() if self.breach_since else None
        return {**asdict(self), "as_of": self.as_of.isoformat(), "breach_since": since}


@dataclass(frozen=True)
class TrainingOutcome:
    outcome: str
    reasons: tuple[str, ...]
    run_id: str
    model_version: str
    aliases: dict[str, Any]
    metrics: dict[str, Any]
    reused: bool = False  # another run decided the same request: nothing trained or moved

    def to_xcom(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": list(self.reasons)}


@dataclass(frozen=True)
class TrainingSets:
    """Where one run's training and evaluation sets were published, their sizes, and whether
    their features were settled (``mlops.training.settled``)."""

    sets_uri: str
    rows: dict[str, int]
    window: dict[str, Any]
    features: dict[str, Any]

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)


def training_sets_uri(settings: Settings, as_of: date) -> str:
    """The partition of the training-sets zone that a run as of ``as_of`` writes."""
    return storage.join(settings.zone(zones.TRAINING_SETS), partition_name(as_of.isoformat()))


def publish_training_sets(
    uri: str,
    training: Any,
    evaluation: Any,
    inputs: dict[str, dict[str, str]],
    options: storage.StorageOptions | None = None,
    *,
    known_frauds: Any = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The frames of one run as one partition; its manifest keeps their input digests."""
    files = {
        TRAINING_TABLE: storage.parquet_bytes(training),
        EVALUATION_TABLE: storage.parquet_bytes(evaluation),
    }
    rows = {"training": len(training), "evaluation": len(evaluation)}
    if known_frauds is not None:
        files[KNOWN_FRAUDS_TABLE] = storage.parquet_bytes(known_frauds)
        rows["known_frauds"] = len(known_frauds)
    manifest = {**(metadata or {}), "inputs": inputs, "rows": rows}
    return publish_partition(uri, files, manifest, options)


def build_training_sets(
    settings: Settings, request: TrainingRequest, options: storage.StorageOptions | None = None
) -> TrainingSets:
    """Retrieve the training and evaluation sets of the request through the feature store
    (point in time, as of each transaction) and publish them for the training task, with
    the frauds that tell which evaluated cards are already known (training days and gap).
    Refuses a window with unsettled features unless the request allows it."""
    from mlops.evaluation.history import history_days, read_known_frauds
    from mlops.training.sets import build_training_set

    window = request.window
    settled = settlement(
        {
            "training": (window.train_start, window.train_end),
            "evaluation": (window.eval_start, window.eval_end),
        },
        settings.history_start,
        request.delay_days,
        as_of=request.as_of,
        allow=request.allow_unsettled_features,
    )
    known = read_known_frauds(
        settings.zone(zones.VALIDATED),
        *history_days(window.train_start, window.eval_start),
        history_start=settings.history_start,
        storage_options=options,
    )
    sets = {
        name: build_training_set(
            settings,
            start=start,
            end=end,
            validated_uri=settings.zone(zones.VALIDATED),
            storage_options=options,
        )
        for name, start, end in (
            ("training", window.train_start, window.train_end),
            ("evaluation", window.eval_start, window.eval_end),
        )
    }
    uri = training_sets_uri(settings, request.as_of)
    publish_training_sets(
        uri,
        sets["training"].frame,
        sets["evaluation"].frame,
        {name: dict(s.inputs) for name, s in sets.items()} | {"known_frauds": known.inputs},
        options,
        known_frauds=known.frame,
        metadata={"features": settled.to_dict(), "known_frauds": known.to_dict()},
    )
    return TrainingSets(
        sets_uri=uri,
        rows={name: len(s.frame) for name, s in sets.items()},
        window=window.to_params(),
        features=settled.to_dict(),
    )


def train_and_gate(
    settings: Settings,
    request: TrainingRequest,
    storage_options: storage.StorageOptions | None = None,
    *,
    context: tracking.RunContext,
    sets_uri: str | None = None,
    policy: GatePolicy | None = None,
    reuse_decided: bool = False,
) -> TrainingOutcome:
    """Train the candidate, judge it against the champion, record and register it; one
    caller at a time per request (``mlops.training.claims``). With ``reuse_decided`` (a run
    that answers a retrain request), a request another run decided returns that outcome,
    ``reused``, and moves nothing; without, a rerun replaces the run and version.

    The sets are read from ``sets_uri``, by default where ``build_training_sets`` published
    them for the same request."""
    sets_uri = sets_uri or training_sets_uri(settings, request.as_of)
    sets = require_partition(sets_uri, storage_options)  # one version: manifest and files
    manifest = sets.manifest or {}
    key = claims.request_key(context.run_key, request.to_dict(), manifest.get("inputs", {}))
    with claims.claimed(settings, key, context.airflow_run_id, storage_options):
        done = claims.decided_version(settings.mlflow_tracking_uri, key, context.airflow_run_id)
        if done is not None and reuse_decided:
            return TrainingOutcome(**claims.recorded_outcome(settings.mlflow_tracking_uri, done))
        policy, extra = policy or GatePolicy(), {claims.TAG_REQUEST_KEY: key}
        return _train_gate_register(
            settings, request, storage_options, context, sets, policy, extra
        )


def _train_gate_register(
    settings: Settings,
    request: TrainingRequest,
    storage_options: storage.StorageOptions | None,
    context: tracking.RunContext,
    sets: Partition,
    policy: GatePolicy,
    extra_tags: dict[str, str],
) -> TrainingOutcome:
    tracking_uri = settings.mlflow_tracking_uri
    sets_uri, manifest = sets.uri, sets.manifest or {}
    training = storage.read_parquet(sets.file(TRAINING_TABLE), storage_options)
    evaluation = storage.read_parquet(sets.file(EVALUATION_TABLE), storage_options)
    # every fraud labelled before the window, not only the training set's (the gap's too)
    known = storage.read_parquet(sets.file(KNOWN_FRAUDS_TABLE), storage_options)
    model = train(request.family, training, training["TX_FRAUD"], request.params, request.seed)
    champion_version = aliases.champion_version(tracking_uri)
    champion = champion_version and registry.load_model(tracking_uri, champion_version)
    result = evaluate_against_champion(
        model, champion, evaluation, known, policy, delay_days=request.delay_days
    )
    features = manifest.get("features", {})
    decision = _with_features(_with_request(result.decision, request, champion_version), features)
    registered, refit_tags = model, {}
    if request.after_breach and decision.outcome == "approve":
        registered, refit_tags = refit_on_window(request, training, evaluation)
    inputs = manifest.get("inputs", {})
    logged = tracking.log_training_run(
        tracking_uri,
        context,
        registered,
        family=request.family,
        params=request.params,
        seed=request.seed,
        window=request.window.to_params(),
        training=tracking.DatasetSpec("training", training, inputs.get("training", {}), sets_uri),
        evaluation=tracking.DatasetSpec(
            "evaluation", evaluation, inputs.get("evaluation", {}), sets_uri
        ),
        candidate_metrics=result.candidate.flat(),
        champion_metrics=None if result.champion is None else result.champion.flat(),
        decision=gate_verdict(decision),
        extra_tags=_feature_tags(features) | _window_tags(request) | refit_tags | extra_tags,
    )
    version = registry.register_candidate(tracking_uri, logged.run_id)
    moved = aliases.apply_decision(tracking_uri, decision.outcome, version.version)
    log.info(
        "gate decision for %s, version %s: %s\n%s\naliases: %s",
        context.run_key,
        version.version,
        decision.outcome.upper(),
        "\n".join(f"- {reason}" for reason in decision.reasons),
        moved.reason,
    )
    return TrainingOutcome(
        outcome=decision.outcome,
        reasons=tuple(decision.reasons),
        run_id=logged.run_id,
        model_version=version.version,
        aliases=moved.to_dict(),
        metrics=result.to_dict(),
    )


def refit_on_window(
    request: TrainingRequest, training: Any, evaluation: Any
) -> tuple[Any, dict[str, str]]:
    """The approved model refit on training and evaluation days together (same family,
    hyperparameters, seed), and the tags that say what was gated and what is registered."""
    import pandas as pd

    window = request.window
    rows = pd.concat([training, evaluation], ignore_index=True)
    model = train(request.family, rows, rows["TX_FRAUD"], request.params, request.seed)
    gated = (
        f"trained on {window.train_start}..{window.train_end - timedelta(days=1)} "
        f"({len(training)} rows), judged on {window.eval_start}.."
        f"{window.eval_end - timedelta(days=1)}"
    )
    refit = (
        f"refit after approval on {window.train_start}..{window.eval_end - timedelta(days=1)} "
        f"({len(rows)} rows: training and evaluation days); the metrics are the gated model's"
    )
    return model, {"mlops.refit": "true", "mlops.gated_on": gated, "mlops.registered_model": refit}


def _window_tags(request: TrainingRequest) -> dict[str, str]:
    if not request.after_breach:
        return {"mlops.window_placement": "routine"}
    return {
        "mlops.window_placement": "after_breach",
        "mlops.breach_since": request.breach_since.isoformat(),
        "mlops.refit": "false",  # replaced by refit_on_window's when the gate approves
    }


def gate_verdict(decision: GateDecision) -> tracking.GateVerdict:
    """The decision as the registry keeps it: its outcome, and the decision record and model
    card rendered from the run's metadata. Built here, where gate and registry meet, so that
    neither imports the other."""

    def render(metadata: Mapping[str, Any]) -> dict[str, str]:
        return {
            registry.DECISION_RECORD: decision_record(decision, metadata),
            registry.MODEL_CARD: render_model_card(decision, metadata),
        }

    return tracking.GateVerdict(decision.outcome, render)


def _with_request(
    decision: GateDecision, request: TrainingRequest, champion_version: str | None
) -> GateDecision:
    """The request's own words join the evidence; ``force_review`` turns an approval into a
    question for a person, never the other way round."""
    evidence = {
        **decision.evidence,
        "request": request.to_dict(),
        "champion_version": champion_version,
    }
    outcome, reasons = decision.outcome, tuple(decision.reasons)
    if request.force_review and outcome == "approve":
        outcome = "needs_review"
        reasons = (*reasons, "force_review: the run asked for a person to confirm")
    return GateDecision(outcome, reasons, evidence)


def _with_features(decision: GateDecision, features: dict[str, Any]) -> GateDecision:
    """The sets' feature settlement joins the evidence; a run allowed to use unsettled
    features is never approved without a person (``mlops.training.settled``)."""
    evidence = {**decision.evidence, "features": features}
    outcome, reasons = decision.outcome, tuple(decision.reasons)
    if features and not features.get("settled", True):
        spans = ", ".join(f"{k} {a}..{b}" for k, (a, b) in features["unsettled"].items())
        reasons = (
            *reasons,
            f"unsettled features: {spans} use windows truncated at MLOPS_HISTORY_START "
            f"{features['history_start']}; first settled day {features['first_settled_day']}",
        )
        if outcome == "approve":
            outcome = "needs_review"
    return GateDecision(outcome, reasons, evidence)


def _feature_tags(features: dict[str, Any]) -> dict[str, str]:
    """Searchable run tags, which the decision record and model card list as metadata."""
    if not features:
        return {}
    return {
        "mlops.features_settled": str(features["settled"]).lower(),
        "mlops.first_settled_day": features["first_settled_day"],
    }
