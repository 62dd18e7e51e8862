"""Drift statistics: the population stability index on reference-quantile bins, in numpy.

Why this statistic and not Evidently's PSI: Evidently bins a numerical column with
``np.histogram_bin_edges(reference + current, bins="sturges")``, equal-width bins over both
samples together, so one extreme amount on day D stretches the range and moves every bin
edge, and the tails dominate (a 1.5x scale gave 0.35 where quantile bins give 0.17). Bins
cut at the reference's own deciles give every bin the same weight in the reference, are fixed
once per reference (a day cannot move them), and take 0.08 s for 15 columns where Evidently's
45 tests took 3.4 s. Evidently still draws the HTML report (``mlops.monitoring.report``).

Discrete columns (flags, counts, a risk that is mostly 0) repeat quantile values: a value
holding a tenth of the reference or more becomes a bin of its own (edges ``v`` and the next
float after it), so a risk that is 0 on 93 % of the rows still has its positive values
binned apart. A value is put in bin ``searchsorted(edges, x, "right")``: equal to an edge goes
up, the same rule for reference and current. An empty bin gets ``EPSILON`` so that a value unseen in the reference counts
(log of a ratio) without being infinite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 10
EPSILON = 1e-4


@dataclass(frozen=True)
class BinnedReference:
    """A reference column summarised: its inner bin edges and the share of rows per bin."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "shares": list(self.shares), "rows": self.rows}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> BinnedReference:
        return cls(tuple(value["edges"]), tuple(value["shares"]), int(value["rows"]))


def _finite(values: Any, what: str) -> np.ndarray:
    array = np.asarray(values, dtype="float64").reshape(-1)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            f"{what}: {int(bad.sum())} non-finite value(s), first at row "
            f"{int(np.flatnonzero(bad)[0])}"
        )
    return array


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts / max(values.size, 1)


def bin_reference(values: Any, bins: int = BINS, what: str = "reference") -> BinnedReference:
    """The reference's inner quantile edges (repeats merged) and its share in each bin."""
    array = _finite(values, what)
    if array.size == 0:
        raise ValueError(f"{what}: no rows to build a reference from")
    inner = np.quantile(array, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    values, counts = np.unique(inner, return_counts=True)
    point_masses = np.nextafter(values[counts > 1], np.inf)
    edges = np.unique(np.concatenate([values, point_masses]))
    return BinnedReference(
        tuple(float(e) for e in edges), tuple(float(s) for s in _shares(array, edges)), array.size
    )


def psi(reference: BinnedReference, current: Any, what: str = "current") -> float:
    """Population stability index of ``current`` against the binned reference:
    ``sum((c - r) * ln(c / r))`` over the bins, empty bins floored at ``EPSILON``."""
    array = _finite(current, what)
    if array.size == 0:
        raise ValueError(f"{what}: no rows to compare with the reference")
    expected = np.maximum(np.asarray(reference.shares), EPSILON)
    actual = np.maximum(_shares(array, np.asarray(reference.edges)), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class DriftThresholds:
    """When a column drifted, and when the data set did.

    Calibrated on the simulator's stable days (``tests/mlops/monitoring/test_calibration.py``
    prints the figures): see ``mlops.monitoring.profile.DEFAULT_THRESHOLDS``."""

    feature_psi: float
    score_psi: float
    drift_share: float

    def to_dict(self) -> dict[str, float]:
        return {
            "feature_psi": self.feature_psi,
            "score_psi": self.score_psi,
            "drift_share": self.drift_share,
        }


def feature_drift(
    references: Mapping[str, BinnedReference],
    current: Mapping[str, Any],
    judged: Sequence[str],
    thresholds: DriftThresholds,
) -> dict[str, Any]:
    """PSI per column of ``references``; the share of ``judged`` columns above the threshold.

    Columns outside ``judged`` are measured and reported but never drift (a calendar flag is
    all 0 or all 1 on any one day: its PSI says which weekday it is, not that the world
    changed)."""
    columns: dict[str, dict[str, Any]] = {}
    for name, reference in references.items():
        value = psi(reference, current[name], what=f"column {name}")
        drifted = name in judged and value > thresholds.feature_psi
        columns[name] = {"psi": round(value, 6), "drifted": drifted, "judged": name in judged}
    drifted = sorted(name for name, column in columns.items() if column["drifted"])
    share = len(drifted) / len(judged) if judged else 0.0
    return {
        "columns": columns,
        "drifted": drifted,
        "share": round(share, 6),
        "dataset_drift": share >= thresholds.drift_share,
        "max_psi": max((columns[n]["psi"] for n in judged), default=0.0),
    }
