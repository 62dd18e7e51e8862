"""The rollout judgement on logged rows: health, score shift, matured quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.deployment.judge import PROMOTE, REVIEW, ROLLBACK, Judgement, judge, score_psi

ROWS = 4000


def logged(challenger: np.ndarray, *, seed: int = 0, errors: int = 0) -> pd.DataFrame:
    """Rows of a rollout: a champion that ranks frauds well; ``challenger`` scores."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(ROWS) < 0.02
    champion = np.clip(0.05 + 0.6 * fraud + rng.normal(0, 0.1, ROWS), 0, 1)
    frame = pd.DataFrame(
        {
            "source": "batch",
            "customer_id": rng.integers(0, 800, ROWS),
            "tx_datetime": pd.Timestamp("2018-06-02")
            + pd.to_timedelta(rng.integers(0, 3 * 86400, ROWS), "s"),
            "champion_score": champion,
            "challenger_score": challenger(champion, fraud, rng)
            if callable(challenger)
            else challenger,
            "challenger_error": None,
            "latency_ms": np.nan,
            "TX_FRAUD": fraud.astype("int64"),
        }
    )
    if errors:
        frame.loc[: errors - 1, "challenger_score"] = np.nan
        frame.loc[: errors - 1, "challenger_error"] = (
            "challenger raised ValueError: X has 15 features"
        )
    frame["variant"] = np.where(np.arange(ROWS) % 10 == 0, "challenger", "champion")
    frame.loc[frame["challenger_score"].isna(), "variant"] = "champion"
    frame["score"] = np.where(frame["variant"] == "challenger", frame["challenger_score"], champion)
    return frame


def similar(champion, fraud, rng):
    return np.clip(champion + rng.normal(0, 0.02, len(champion)), 0, 1)


def random_scores(champion, fraud, rng):
    return rng.random(len(champion))


def blind(champion, fraud, rng):
    """Same score distribution as the champion, but no longer sees the frauds."""
    return np.clip(0.05 + 0.6 * rng.permutation(fraud) + rng.normal(0, 0.1, len(fraud)), 0, 1)


def test_a_challenger_like_the_champion_is_promoted_and_judged_on_labels():
    rows = logged(similar)
    result = judge(rows, rows)
    assert result.verdict == PROMOTE
    quality = result.checks["quality"]
    assert quality["judged"]
    found = quality["bootstrap"]
    assert result.reasons[-1] == (
        f"matured AP non-inferior: challenger {found['candidate']:.3f} vs champion "
        f"{found['champion']:.3f} on {ROWS} rows with {quality['frauds']} frauds, "
        f"CI of the difference [{found['lo']:.3f}, {found['hi']:.3f}]"
    )


def test_any_challenger_error_rolls_back_and_names_the_error():
    result = judge(logged(similar, errors=3), logged(similar))
    assert result.verdict == ROLLBACK
    assert "challenger failed on 3 rows" in result.reasons[0]
    assert "X has 15 features" in result.reasons[0]


def test_random_scores_flood_the_investigators():
    result = judge(logged(random_scores), logged(random_scores))
    assert result.verdict == ROLLBACK
    assert "challenger alerts on" in result.reasons[0]
    assert result.checks["score_shift"]["score_psi"] > 1.0


def test_a_challenger_alerting_on_everything_rolls_back_and_one_alerting_on_nothing_is_judged_on_labels():
    assert judge(logged(np.full(ROWS, 0.9)), logged(np.full(ROWS, 0.9))).verdict == ROLLBACK
    quiet = judge(logged(np.full(ROWS, 0.05)), logged(np.full(ROWS, 0.05)))
    assert quiet.verdict == ROLLBACK and "matured AP" in quiet.reasons[0]


def test_a_retrain_that_ranks_differently_but_alerts_alike_is_not_rolled_back_for_it():
    rows = logged(blind)  # same score distribution, other ranking
    result = judge(rows, rows.head(0))
    assert result.verdict == PROMOTE
    assert result.checks["score_shift"]["rank_correlation"] < 0.2


def test_worse_matured_quality_rolls_back_when_the_scores_look_alike():
    rows = logged(blind)
    result = judge(rows, rows)
    assert result.verdict == ROLLBACK
    assert "matured AP" in result.reasons[0]
    assert result.checks["quality"]["bootstrap"]["hi"] < 0


def test_too_few_matured_frauds_are_reported_not_judged():
    rows = logged(similar)
    few = rows.loc[rows["TX_FRAUD"].eq(0) | (rows.index < 1000)]
    result = judge(rows, few)
    assert result.verdict == PROMOTE
    assert not result.checks["quality"]["judged"]
    assert "not judged" in result.reasons[-1]


def test_when_quality_is_required_too_few_frauds_go_to_a_person():
    rows = logged(similar)
    few = rows.loc[rows["TX_FRAUD"].eq(0) | (rows.index < 1000)]
    result = judge(rows, few, require_quality=True)
    assert result.verdict == REVIEW
    assert result.reasons[-1] == "quality not judged: a person decides"
    assert "frauds among matured rows (< 30): not judged" in result.reasons[-2]
    assert Judgement.from_dict(result.to_dict()) == result


def test_when_quality_is_required_enough_frauds_are_judged_either_way():
    rows = logged(similar)
    assert judge(rows, rows, require_quality=True).verdict == PROMOTE
    worse = logged(blind)
    assert judge(worse, worse, require_quality=True).verdict == ROLLBACK


def test_an_unhealthy_challenger_rolls_back_without_asking_even_unjudged():
    rows = logged(similar, errors=3)
    result = judge(rows, rows.head(0), require_quality=True)
    assert result.verdict == ROLLBACK


def test_too_few_rows_never_promote():
    rows = logged(similar).head(50)
    result = judge(rows, rows)
    assert (result.verdict, result.rows) == (ROLLBACK, 50)


def test_slow_service_answers_roll_back():
    rows = logged(similar)
    rows.loc[rows["variant"] == "challenger", "latency_ms"] = 120.0
    result = judge(rows, rows)
    assert result.verdict == ROLLBACK
    assert "p99 latency 120.0 ms" in result.reasons[0]


def test_a_p99_of_too_few_live_answers_is_reported_not_judged():
    """Twenty answers' p99 is their slowest one: one pause of the host would roll back."""
    rows = logged(similar)
    timed = rows.index[rows["variant"] == "challenger"][:20]
    rows.loc[timed, ["source", "latency_ms"]] = ["service", 120.0]
    result = judge(rows, rows)
    assert result.verdict == PROMOTE
    health = result.checks["health"]
    assert health["timed_rows"] == 20 and health["p99_latency_ms"] == 120.0
    assert "not judged" in health["latency_note"]


@pytest.mark.parametrize(("shift", "low", "high"), [(0.0, 0.0, 0.01), (0.3, 0.5, 20.0)])
def test_score_psi_is_zero_for_the_same_distribution_and_large_for_a_shift(shift, low, high):
    rng = np.random.default_rng(1)
    reference = rng.beta(1, 20, 20_000)
    current = np.clip(rng.beta(1, 20, 20_000) + shift, 0, 1)
    assert low <= score_psi(reference, current) <= high
