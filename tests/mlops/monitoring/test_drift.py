"""Reference-quantile PSI: bins fixed by the reference, robust to one extreme value."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.monitoring.drift import (
    BinnedReference,
    DriftThresholds,
    bin_reference,
    feature_drift,
    psi,
)

THRESHOLDS = DriftThresholds(feature_psi=0.1, score_psi=0.1, drift_share=0.1)


def test_the_same_distribution_gives_a_psi_near_zero_and_a_shift_a_large_one():
    rng = np.random.default_rng(0)
    reference = bin_reference(rng.normal(50, 10, 70_000))
    assert len(reference.edges) == 9 and sum(reference.shares) == pytest.approx(1.0)
    assert psi(reference, rng.normal(50, 10, 10_000)) < 0.005
    assert psi(reference, rng.normal(50, 10, 10_000) * 1.6) > 0.3


def test_one_extreme_value_does_not_move_the_bins():
    rng = np.random.default_rng(1)
    reference = bin_reference(rng.gamma(2, 25, 70_000))
    day = rng.gamma(2, 25, 10_000)
    with_outlier = np.append(day, 1e7)
    assert abs(psi(reference, with_outlier) - psi(reference, day)) < 0.001


def test_a_point_mass_gets_a_bin_of_its_own():
    rng = np.random.default_rng(2)
    risk = np.where(rng.random(70_000) < 0.93, 0.0, rng.random(70_000))
    reference = bin_reference(risk)
    assert reference.shares[1] == pytest.approx(0.93, abs=0.01)  # exactly 0, alone
    more_risk = np.where(rng.random(10_000) < 0.7, 0.0, rng.random(10_000))
    assert psi(reference, more_risk) > 0.1


def test_a_profile_round_trips_through_json():
    reference = bin_reference([0, 0, 1, 1, 1, 2, 3])
    assert BinnedReference.from_dict(reference.to_dict()) == reference


def test_non_finite_values_are_refused_naming_the_column_and_row():
    with pytest.raises(ValueError, match=r"column X: 1 non-finite value\(s\), first at row 2"):
        psi(bin_reference([1.0, 2.0, 3.0]), [1.0, 2.0, np.nan], what="column X")
    with pytest.raises(ValueError, match="no rows"):
        bin_reference([])


def test_only_judged_columns_drift_and_count_in_the_share():
    rng = np.random.default_rng(3)
    refs = {name: bin_reference(rng.normal(0, 1, 20_000)) for name in ("a", "b", "weekend")}
    current = {
        "a": rng.normal(3, 1, 5_000),
        "b": rng.normal(0, 1, 5_000),
        "weekend": rng.normal(5, 1, 5_000),
    }
    out = feature_drift(refs, current, ["a", "b"], THRESHOLDS)
    assert out["drifted"] == ["a"] and out["share"] == 0.5 and out["dataset_drift"]
    assert out["columns"]["weekend"]["psi"] > 1 and not out["columns"]["weekend"]["drifted"]
