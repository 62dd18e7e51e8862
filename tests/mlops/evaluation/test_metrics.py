"""Card Precision@k and friends on hand-made days whose answers are computed by hand."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from mlops.evaluation.metrics import (
    average_precision_batch,
    card_precision_at_k,
    card_precision_per_day,
    eligible_mask,
    evaluate_scores,
    first_fraud_days,
    roc_auc_batch,
    slice_metrics,
)

START = datetime(2018, 8, 6)  # a Monday


def frame(rows: list[tuple], hour: int = 12) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of (day offset, card, score, label[, amount]); returns (frame, scores)."""
    records = []
    for i, row in enumerate(rows):
        day, card, score, label, *amount = row
        records.append(
            {
                "TRANSACTION_ID": i,
                "TX_DATETIME": START + timedelta(days=day, hours=hour, seconds=i),
                "CUSTOMER_ID": card,
                "TX_AMOUNT": amount[0] if amount else 10.0,
                "TX_FRAUD": label,
                "score": score,
            }
        )
    df = pd.DataFrame(records)
    return df.drop(columns="score"), df["score"].to_numpy()


# k = 2. Cards are letters turned into ints for readability: A=1, B=2, ...
A, B, C, D, E, F, G, H = range(1, 9)
THREE_DAYS = [
    # day 0: A .9 fraud, B .8 legit, C .7 fraud  -> top 2 = A, B -> 1/2; detected {A}
    (0, A, 0.9, 1),
    (0, B, 0.8, 0),
    (0, C, 0.7, 1),
    # day 1: A (.95, fraud) is already detected and leaves; C .5 fraud, B .45 legit, D .4 fraud
    #        -> top 2 = C, B -> 1/2; detected {A, C}
    (1, A, 0.95, 1),
    (1, B, 0.45, 0),
    (1, C, 0.5, 1),
    (1, D, 0.4, 1),
    # day 2: C (.99) leaves; D .3 fraud, F .25 fraud, E .2 legit -> top 2 = D, F -> 2/2
    (2, C, 0.99, 1),
    (2, D, 0.3, 1),
    (2, E, 0.2, 0),
    (2, F, 0.25, 1),
]


def test_card_precision_by_hand_with_detected_set_carry_over() -> None:
    df, scores = frame(THREE_DAYS)
    days, per_day = card_precision_per_day(df, scores, k=2, delay_days=7)
    assert days == ("2018-08-06", "2018-08-07", "2018-08-08")
    assert per_day == (0.5, 0.5, 1.0)
    assert card_precision_at_k(df, scores, k=2) == pytest.approx(2 / 3)


def test_without_carry_over_the_detected_cards_would_count_again() -> None:
    # the same days scored one at a time (no detected set): day 1 = A, C -> 2/2
    df, scores = frame(THREE_DAYS)
    day = df.TX_DATETIME.dt.day.to_numpy()
    alone = [card_precision_at_k(df[day == d], scores[day == d], k=2) for d in (6, 7, 8)]
    assert alone == [0.5, 1.0, 1.0]
    df2, s2 = frame([(0, A, 0.9, 1), (1, A, 0.9, 1), (1, B, 0.1, 0)])
    assert card_precision_per_day(df2, s2, k=1)[1] == (1.0, 0.0)  # A found once only


def test_a_card_is_scored_by_its_max_score_and_labelled_by_its_max_label() -> None:
    # B's first transaction is legit with a high score, its second a fraud with a low one
    df, scores = frame([(0, A, 0.9, 1), (0, B, 0.8, 0), (0, B, 0.1, 1), (0, C, 0.7, 1)])
    assert card_precision_per_day(df, scores, k=2)[1] == (1.0,)  # A and B, both fraud cards


def test_fewer_cards_than_k_still_divides_by_k() -> None:
    df, scores = frame([(0, A, 0.9, 1), (0, B, 0.8, 0)])
    assert card_precision_at_k(df, scores, k=100) == 0.01


def test_ties_are_broken_by_card_id_so_the_metric_is_deterministic() -> None:
    df, scores = frame([(0, C, 0.5, 0), (0, B, 0.5, 1), (0, A, 0.5, 0)])
    assert card_precision_at_k(df, scores, k=1) == 0.0  # A wins the tie
    assert card_precision_at_k(df, scores, k=2) == 0.5  # A, B


def test_known_compromised_cards_are_removed_before_ranking() -> None:
    df, scores = frame([(0, G, 0.99, 1), (0, A, 0.9, 1), (0, B, 0.8, 0)])
    assert card_precision_at_k(df, scores, k=1) == 1.0  # G is found...
    assert card_precision_at_k(df, scores, k=1, known_compromised={G}) == 1.0  # ...then A
    assert card_precision_at_k(df, scores, k=2, known_compromised={G, A}) == 0.0  # only B left


def test_first_fraud_day_becomes_known_after_the_delay() -> None:
    # H's first fraud was on 2018-08-04; delay 2 -> known from 2018-08-07 (day + delay + 1)
    df, scores = frame([(0, H, 0.9, 1), (1, H, 0.9, 1), (2, H, 0.9, 1), (0, A, 0.1, 0)])
    mask = eligible_mask(df, {H: date(2018, 8, 4)}, delay_days=2)
    assert mask.tolist() == [True, False, False, True]
    _, per_day = card_precision_per_day(df, scores, k=1, known_compromised={H: date(2018, 8, 4)}, delay_days=2)  # fmt: skip
    assert per_day == (1.0,)  # only 08-06 has H; 08-07 and 08-08 hold no eligible card


def test_frauds_inside_the_window_become_known_by_the_same_delay_rule() -> None:
    # D's fraud on day 0 is known from day 0 + 1 + 1 = day 2 with delay 1, not on day 1
    df, _ = frame([(0, D, 0.5, 1), (1, D, 0.5, 0), (2, D, 0.5, 0), (3, D, 0.5, 0)])
    assert eligible_mask(df, (), delay_days=1).tolist() == [True, True, False, False]
    assert eligible_mask(df, (), delay_days=7).tolist() == [True] * 4


def test_first_fraud_days_from_history() -> None:
    df, _ = frame([(0, A, 0, 0), (1, A, 0, 1), (2, A, 0, 1), (0, B, 0, 0)])
    assert first_fraud_days(df) == {A: date(2018, 8, 7)}


def test_evaluate_scores_uses_the_same_eligible_rows_for_every_metric() -> None:
    rng = np.random.default_rng(0)
    rows = [
        (d, c, float(rng.random()), int(rng.random() < 0.2)) for d in range(4) for c in range(40)
    ]
    df, scores = frame(rows)
    known = {3: date(2018, 7, 1), 5: date(2018, 7, 1)}
    m = evaluate_scores(df, scores, k=5, known_compromised=known, delay_days=7)
    keep = ~df.CUSTOMER_ID.isin([3, 5]).to_numpy()
    assert m.n_removed_known == 8 and m.n_transactions == int(keep.sum())
    assert m.roc_auc == pytest.approx(roc_auc_score(df.TX_FRAUD[keep], scores[keep]))
    assert m.average_precision == pytest.approx(
        average_precision_score(df.TX_FRAUD[keep], scores[keep])
    )
    assert m.card_precision_at_k == pytest.approx(card_precision_at_k(df, scores, 5, known))
    assert m.card_precision_oracle >= m.card_precision_at_k
    assert len(m.days) == len(m.card_precision_per_day) == 4
    record = json.loads(json.dumps(m.to_dict()))
    assert record["slices"][0]["name"] == "night"
    flat = m.flat()
    assert all(isinstance(v, float) for v in flat.values())
    assert "card_precision_at_5" in flat and "slice/weekday/roc_auc" in flat


def test_slices_bands_flags_and_single_class_slices() -> None:
    df, scores = frame(
        [
            (0, A, 0.1, 0, 49.99),
            (0, B, 0.2, 0, 50.0),
            (0, C, 0.3, 1, 220.0),
            (0, D, 0.9, 1, 220.01),
        ],
        hour=3,
    )
    by_name = {s.name: s for s in slice_metrics(df, scores)}
    assert [by_name[n].n for n in ("amount_lt_50", "amount_50_220", "amount_gt_220")] == [1, 2, 1]
    top = by_name["amount_gt_220"]
    assert (top.frauds, top.roc_auc, top.average_precision, top.mean_score) == (1, None, None, 0.9)
    assert by_name["night"].n == 4 and by_name["day"].n == 0 and by_name["day"].mean_score is None
    assert by_name["weekday"].n == 4  # Monday
    assert by_name["amount_50_220"].roc_auc == 1.0
    flagged = df.assign(TX_DURING_NIGHT=0, TX_DURING_WEEKEND=1)  # the feature columns win
    by_name = {s.name: s for s in slice_metrics(flagged, scores)}
    assert by_name["night"].n == 0 and by_name["weekend"].n == 4


def test_a_single_class_window_leaves_auc_and_ap_undefined() -> None:
    df, scores = frame([(0, A, 0.1, 0), (0, B, 0.2, 0)])
    m = evaluate_scores(df, scores, k=2)
    assert m.roc_auc is None and m.average_precision is None and m.card_precision_at_k == 0.0
    assert "roc_auc" not in m.flat()


def test_bad_inputs_raise() -> None:
    df, scores = frame([(0, A, 0.1, 0), (0, B, 0.2, 1)])
    with pytest.raises(ValueError, match="scores for"):
        card_precision_at_k(df, scores[:1])
    with pytest.raises(ValueError, match="finite"):
        card_precision_at_k(df, np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="k must be"):
        card_precision_at_k(df, scores, k=0)


def test_tz_aware_timestamps_are_read_as_utc_days() -> None:
    df, scores = frame(THREE_DAYS)
    aware = df.assign(
        TX_DATETIME=df.TX_DATETIME.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    )
    assert card_precision_per_day(aware, scores, k=2) == card_precision_per_day(df, scores, k=2)


def test_batch_ranking_metrics_match_sklearn_with_weights_and_ties() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random(400) < 0.1).astype(int)
    scores = np.round(rng.random(400) + 0.3 * labels, 1)  # many ties
    weights = rng.integers(0, 3, size=(5, 400))
    ap = average_precision_batch(labels, scores, weights)
    auc = roc_auc_batch(labels, scores, weights)
    for i, w in enumerate(weights):
        assert ap[i] == pytest.approx(average_precision_score(labels, scores, sample_weight=w))
        assert auc[i] == pytest.approx(roc_auc_score(labels, scores, sample_weight=w))
    single = roc_auc_batch(np.zeros(3, int), np.arange(3.0), np.ones((1, 3)))
    assert np.isnan(single).all() and np.isnan(average_precision_batch(np.zeros(3, int), np.arange(3.0), np.ones((1, 3)))).all()  # fmt: skip
