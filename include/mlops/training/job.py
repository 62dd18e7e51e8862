"""One training as of a logical date D: data windows, training sets, the candidate, the gate.

Everything a run uses is known at D: labels mature ``delay`` days after the transaction, so
the data window is ``[D - delay - window_days, D - delay)``. Its last ``eval_days`` are the
held-out evaluation window, the most recent matured days; the candidate trains on the days
before it, minus a gap of ``delay`` days, as the handbook's protocol does (train 7, skip 7,
test 7 for the default window of 21 days): a deployed model scores transactions whose
recent labels it has never seen. Candidate and champion are judged on the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from mlops import zones
from mlops.gate.compare import evaluate_against_champion
from mlops.gate.decision import GateDecision
from mlops.gate.policy import GatePolicy
from mlops.gate.report import decision_record, render_model_card
from mlops.io import storage
from mlops.registry import aliases, tracking
from mlops.registry import versions as registry
from mlops.schema import partition_name
from mlops.settings import Settings
from mlops.training.estimators import train
from mlops.training.families import DEFAULT_FAMILY, validate_params
from mlops.training.settled import settlement
from mlops.training.windows import (
    DEFAULT_WINDOW_DAYS,
    DataWindow,
    evaluation_window,
    training_window,
)

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "as_of", date.fromisoformat(str(self.as_of)[:10]))
        object.__setattr__(self, "params", validate_params(self.family, self.params))
        train_days = self.window_days - self.delay_days - self.eval_days
        if self.eval_days < 1 or train_days < 1:
            raise ValueError(
                f"window_days={self.window_days} leaves {train_days} training days after "
                f"{self.eval_days} evaluation days and the {self.delay_days}-day label gap"
            )

    @property
    def window(self) -> DataWindow:
        """The held-out days are the most recent matured ones; the training days are those
        matured when the held-out window starts, so the label delay separates the two."""
        held_out = evaluation_window(self.as_of, self.eval_days, self.delay_days)
        train_days = self.window_days - self.delay_days - self.eval_days
        training = training_window(held_out.start, train_days, self.delay_days)
        return DataWindow(
            training.start, training.end, held_out.start, held_out.end, self.delay_days
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "as_of": self.as_of.isoformat()}


@dataclass(frozen=True)
class TrainingOutcome:
    outcome: str
    reasons: tuple[str, ...]
    run_id: str
    model_version: str
    aliases: dict[str, Any]
    metrics: dict[str, Any]

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
    return storage.publish_partition(uri, files, manifest, options)


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
) -> TrainingOutcome:
    """Train the candidate, judge it against the champion, record and register it.

    The sets are read from ``sets_uri``, by default where ``build_training_sets`` published
    them for the same request."""
    policy = policy or GatePolicy()
    sets_uri = sets_uri or training_sets_uri(settings, request.as_of)
    tracking_uri = settings.mlflow_tracking_uri
    manifest = storage.read_manifest(sets_uri, storage_options) or {}
    training = storage.read_parquet(storage.join(sets_uri, TRAINING_TABLE), storage_options)
    evaluation = storage.read_parquet(storage.join(sets_uri, EVALUATION_TABLE), storage_options)
    # every fraud labelled before the window, not only the training set's (the gap's too)
    known = storage.read_parquet(storage.join(sets_uri, KNOWN_FRAUDS_TABLE), storage_options)
    model = train(request.family, training, training["TX_FRAUD"], request.params, request.seed)
    champion_version = aliases.champion_version(tracking_uri)
    champion = None
    if champion_version is not None:
        champion = registry.load_model(tracking_uri, champion_version)
    result = evaluate_against_champion(
        model, champion, evaluation, known, policy, delay_days=request.delay_days
    )
    features = manifest.get("features", {})
    decision = _with_features(_with_request(result.decision, request, champion_version), features)
    inputs = manifest.get("inputs", {})
    logged = tracking.log_training_run(
        tracking_uri,
        context,
        model,
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
        extra_tags=_feature_tags(features),
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
