"""What the promotion gate demands: the policy, its outcomes and the metrics it may judge on.

A leaf: it imports nothing from the package, so the evidence (``mlops.gate.evidence``) and
the decision (``mlops.gate.decision``) both build on it without importing each other, and a
caller that only needs the policy's numbers does not pull in pandas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Outcome = Literal["approve", "reject", "needs_review"]
GATE_METRICS: tuple[str, ...] = ("average_precision", "roc_auc", "card_precision_at_k")
UNITS: tuple[str, ...] = ("card", "day")


@dataclass(frozen=True)
class GatePolicy:
    """What the gate demands; the defaults and why (figures measured on the simulator).

    Floors only catch broken models: they sit below the handbook's weakest baseline (a
    depth-2 tree: AUC 0.76, AP 0.50) and our families on the handbook protocol (AUC
    0.86-0.90, AP 0.59-0.65; on the small 1000-card test data AUC 0.79-0.82, AP 0.57-0.60),
    and far above a model trained on shuffled labels (AUC 0.2-0.4, AP 0.005-0.02). CP@100 is
    capped by the number of fraud cards a day (the oracle value is in the metrics: 0.48 on
    the default data, 0.14 on the small one) and a random ranking reaches 0.02-0.05, so its
    floor is low and AP carries the weight. The non-inferiority margin is 0.02 AP: two
    equally good retrains differ by a paired 95 % CI of about +-0.013 on a default week, so
    0.01 would send most routine retrains to review, while a real regression (random forest
    against boosting on the handbook week: -0.063, CI [-0.088, -0.040]) is still rejected.
    The card is the resampling unit: frauds cluster by card, CP@k counts cards, and a week
    has only 7 days (a day bootstrap then gives too narrow and lumpy intervals). Below 100
    frauds (a default week has about 450 after the known-card removal) AP is mostly noise.
    The directional probe moves TX_AMOUNT from 180 (a plausible legitimate amount) to 260
    (scenario 1), far enough from 220 that binned trees put them in different bins. 50 ms
    per single-row call: the families take 2-6 ms idle and up to 20 ms on a loaded 2-core
    host (OpenMP threads; serving should limit them to one), so only a model unfit for
    online scoring fails it.
    """

    min_roc_auc: float = 0.70
    min_average_precision: float = 0.20
    min_card_precision_at_k: float = 0.02
    k: int = 100
    metric: str = "average_precision"
    margin: float = 0.02
    confidence: float = 0.95
    n_resamples: int = 1000
    seed: int = 0
    unit: str = "card"
    min_frauds: int = 100
    latency_budget_ms: float = 50.0
    latency_calls: int = 50
    probe_rows: int = 200
    amount_below: float = 180.0
    amount_above: float = 260.0
    min_directional_rate: float = 0.95

    def __post_init__(self) -> None:
        if self.metric not in GATE_METRICS:
            raise ValueError(f"metric must be one of {GATE_METRICS}, got {self.metric!r}")
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.metric == "card_precision_at_k" and self.unit != "day":
            raise ValueError("card_precision_at_k is a per-day metric: use unit='day'")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.margin < 0 or self.n_resamples < 1 or self.latency_calls < 1:
            raise ValueError("margin must be >= 0, n_resamples and latency_calls >= 1")
        if not self.amount_below <= 220.0 < self.amount_above:
            raise ValueError("the directional probe must straddle the scenario-1 amount, 220")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
