"""Fraud metrics as the handbook defines them: ROC AUC, average precision, Card Precision@k.

The protocol (``SIMULATOR.md``) evaluates only what investigators would still have to find:
on each test day the cards already known to be compromised are removed before anything is
measured, so a model gets no credit for re-flagging a card that the bank has blocked. A card
is known on day ``T`` when it had a fraud on a day ``<= T - delay - 1`` (the handbook's code:
a fraud of day ``T - delay`` is labelled only during day ``T``, not at its start). The same
rows feed every metric, so candidate and champion are always compared on identical rows.

Card Precision@k models the investigators' day: they check the ``k`` riskiest cards, and a
card they confirm is blocked, so it leaves the later days of the window (the detected set).
Ties in the top ``k`` are broken by card id, ascending, so the metric is deterministic.

The batch ranking functions compute AP and AUC for many integer weightings of the same rows
at once; the paired bootstrap uses them (one weighting = one resample) because sklearn's
per-call validation would dominate a thousand resamples.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from mlops.features.names import LABEL

KnownCompromised = Collection[int] | Mapping[int, date]

# Amount bands: below 50, 50 to 220 inclusive, above 220. The median simulated amount is
# about 46, so 50 splits ordinary purchases into halves of similar size (and the small night
# frauds of the ``new_fraud_pattern`` drift fall in the lower one); above 220 is exactly the
# handbook's scenario 1 ("amount > 220"), a band whose answer is known in advance (all
# fraud: AUC/AP undefined, and its mean score must be high).
AMOUNT_EDGES: tuple[float, float] = (50.0, 220.0)


@dataclass(frozen=True)
class SliceMetrics:
    """One slice of the evaluation rows; AUC/AP are None when the slice has a single class."""

    name: str
    n: int
    frauds: int
    roc_auc: float | None
    average_precision: float | None
    mean_score: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Metrics:
    """Everything measured on one evaluation window for one model.

    ``card_precision_oracle`` is CP@k of a perfect ranking on the same days: the ceiling the
    window allows (few fraud cards a day cap CP@k below 1), which puts CP@k in context.
    """

    roc_auc: float | None
    average_precision: float | None
    card_precision_at_k: float
    k: int
    n_transactions: int
    n_frauds: int
    n_cards: int
    n_removed_known: int
    days: tuple[str, ...]
    card_precision_per_day: tuple[float, ...]
    card_precision_oracle: float
    slices: tuple[SliceMetrics, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["days"] = list(self.days)
        out["card_precision_per_day"] = list(self.card_precision_per_day)
        out["slices"] = [s.to_dict() for s in self.slices]
        return out

    def flat(self) -> dict[str, float]:
        """Scalar metrics under MLflow-safe names (``slice/night/roc_auc``); None left out."""
        out: dict[str, float] = {
            "roc_auc": self.roc_auc,
            "average_precision": self.average_precision,
            f"card_precision_at_{self.k}": self.card_precision_at_k,
            f"card_precision_at_{self.k}_oracle": self.card_precision_oracle,
            "n_transactions": self.n_transactions,
            "n_frauds": self.n_frauds,
        }
        for s in self.slices:
            for key in ("n", "frauds", "roc_auc", "average_precision", "mean_score"):
                out[f"slice/{s.name}/{key}"] = getattr(s, key)
        return {key: float(value) for key, value in out.items() if value is not None}


def transaction_days(frame: pd.DataFrame) -> np.ndarray:
    """The calendar day of each row (``datetime64[D]``); a tz-aware TX_DATETIME is taken in UTC."""
    when = frame["TX_DATETIME"]
    if getattr(when.dt, "tz", None) is not None:
        when = when.dt.tz_convert("UTC").dt.tz_localize(None)
    return when.to_numpy().astype("datetime64[D]")


def _scores(frame: pd.DataFrame, scores: Any) -> np.ndarray:
    values = np.asarray(scores, dtype="float64").reshape(-1)
    if values.shape[0] != len(frame):
        raise ValueError(f"{values.shape[0]} scores for {len(frame)} rows")
    if not np.all(np.isfinite(values)):
        raise ValueError("scores must be finite")
    return values


def first_fraud_days(history: pd.DataFrame) -> dict[int, date]:
    """Card -> day of its first known fraud, from labelled history (for ``known_compromised``)."""
    frauds = history.loc[history[LABEL] == 1]
    first = pd.Series(transaction_days(frauds)).groupby(frauds["CUSTOMER_ID"].to_numpy()).min()
    return {int(card): pd.Timestamp(day).date() for card, day in first.items()}


def eligible_mask(
    frame: pd.DataFrame, known_compromised: KnownCompromised = (), delay_days: int = 7
) -> np.ndarray:
    """Rows whose card is not yet known compromised on the row's day.

    ``known_compromised`` is either a collection of cards known before the window (removed
    on every day) or a mapping card -> first fraud day (known from ``day + delay + 1`` on).
    Frauds inside ``frame`` itself become known by the same delay rule.
    """
    days = transaction_days(frame)
    never = np.datetime64("9999-12-31", "D")
    always = np.datetime64("0001-01-01", "D")
    if isinstance(known_compromised, Mapping):
        known = {int(c): np.datetime64(d, "D") for c, d in known_compromised.items()}
    else:
        known = dict.fromkeys((int(c) for c in known_compromised), always)
    is_fraud = frame[LABEL].to_numpy() == 1
    in_frame = pd.Series(days[is_fraud]).groupby(frame["CUSTOMER_ID"].to_numpy()[is_fraud]).min()
    for card, day in in_frame.items():
        day = np.datetime64(day, "D")
        known[int(card)] = min(known.get(int(card), never), day)
    if not known:
        return np.ones(len(frame), dtype=bool)
    cards = np.fromiter(known, dtype="int64", count=len(known))
    first = np.array(list(known.values()), dtype="datetime64[D]")
    where = pd.Index(cards).get_indexer(frame["CUSTOMER_ID"].to_numpy())
    first_of_row = np.where(where >= 0, first[where], never)
    known_on_row = first_of_row <= days - np.timedelta64(delay_days + 1, "D")
    return ~known_on_row


def card_precision_per_day(
    frame: pd.DataFrame,
    scores: Any,
    k: int = 100,
    known_compromised: KnownCompromised = (),
    delay_days: int = 7,
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(days, CP@k of each day), the detected set carried over from day to day."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    values = _scores(frame, scores)
    keep = eligible_mask(frame, known_compromised, delay_days)
    table = pd.DataFrame(
        {
            "day": transaction_days(frame)[keep],
            "card": frame["CUSTOMER_ID"].to_numpy()[keep],
            "score": values[keep],
            "label": frame[LABEL].to_numpy()[keep],
        }
    )
    detected: set[int] = set()
    days, precisions = [], []
    for day, rows in table.groupby("day", sort=True):
        rows = rows.loc[~rows["card"].isin(detected)]
        cards = rows.groupby("card", sort=True)[["score", "label"]].max().reset_index()
        top = cards.sort_values(["score", "card"], ascending=[False, True], kind="mergesort")
        found = top.head(k).loc[lambda t: t["label"] == 1, "card"]
        detected.update(int(c) for c in found)
        days.append(str(np.datetime64(day, "D")))
        precisions.append(len(found) / k)
    return tuple(days), tuple(precisions)


def card_precision_at_k(
    frame: pd.DataFrame,
    scores: Any,
    k: int = 100,
    known_compromised: KnownCompromised = (),
    delay_days: int = 7,
) -> float:
    """Mean over the window's days of CP@k (see ``card_precision_per_day``)."""
    _, per_day = card_precision_per_day(frame, scores, k, known_compromised, delay_days)
    return float(np.mean(per_day)) if per_day else 0.0


def _ranking(labels: np.ndarray, scores: np.ndarray) -> tuple[float | None, float | None]:
    if labels.size == 0 or labels.min() == labels.max():
        return None, None
    return float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores))


def _flag(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column in frame.columns:
        return frame[column].to_numpy() == 1
    when = frame["TX_DATETIME"].dt
    return (
        (when.hour <= 6).to_numpy()
        if column == "TX_DURING_NIGHT"
        else (when.weekday >= 5).to_numpy()
    )


def slice_metrics(frame: pd.DataFrame, scores: Any) -> tuple[SliceMetrics, ...]:
    """Night/day, weekend/weekday and amount bands: where a model may be weak unnoticed."""
    values = _scores(frame, scores)
    labels = frame[LABEL].to_numpy()
    night, weekend = _flag(frame, "TX_DURING_NIGHT"), _flag(frame, "TX_DURING_WEEKEND")
    amount = frame["TX_AMOUNT"].to_numpy()
    masks: list[tuple[str, np.ndarray]] = [
        ("night", night),
        ("day", ~night),
        ("weekend", weekend),
        ("weekday", ~weekend),
    ]
    low, high = AMOUNT_EDGES
    masks += [
        (f"amount_lt_{low:g}", amount < low),
        (f"amount_{low:g}_{high:g}", (amount >= low) & (amount <= high)),
        (f"amount_gt_{high:g}", amount > high),
    ]
    out = []
    for name, mask in masks:
        auc, ap = _ranking(labels[mask], values[mask])
        mean = float(values[mask].mean()) if mask.any() else None
        out.append(SliceMetrics(name, int(mask.sum()), int(labels[mask].sum()), auc, ap, mean))
    return tuple(out)


def evaluate_scores(
    frame: pd.DataFrame,
    scores: Any,
    *,
    k: int = 100,
    known_compromised: KnownCompromised = (),
    delay_days: int = 7,
) -> Metrics:
    """All metrics of one model on one window, after removing known compromised cards.

    ``frame`` needs TX_DATETIME, CUSTOMER_ID, TX_AMOUNT and TX_FRAUD (the night and weekend
    flags are read when present, else derived from TX_DATETIME); ``scores`` align with rows.
    """
    values = _scores(frame, scores)
    keep = eligible_mask(frame, known_compromised, delay_days)
    rows, kept = frame.loc[keep], values[keep]
    labels = rows[LABEL].to_numpy()
    auc, ap = _ranking(labels, kept)
    days, per_day = card_precision_per_day(rows, kept, k, (), delay_days)
    _, oracle = card_precision_per_day(rows, labels.astype("float64"), k, (), delay_days)
    return Metrics(
        roc_auc=auc,
        average_precision=ap,
        card_precision_at_k=float(np.mean(per_day)) if per_day else 0.0,
        k=k,
        n_transactions=len(rows),
        n_frauds=int(labels.sum()),
        n_cards=int(rows["CUSTOMER_ID"].nunique()),
        n_removed_known=int((~keep).sum()),
        days=days,
        card_precision_per_day=per_day,
        card_precision_oracle=float(np.mean(oracle)) if oracle else 0.0,
        slices=slice_metrics(rows, kept),
    )


def _cumulative_at_groups(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted true/false positives at each distinct score, highest score first."""
    order = np.argsort(-scores, kind="mergesort")
    ends = np.r_[np.flatnonzero(np.diff(scores[order])), scores.size - 1]
    w = weights[:, order]
    positive = labels[order] == 1
    tp = np.cumsum(np.where(positive, w, 0), axis=1)[:, ends]
    fp = np.cumsum(np.where(positive, 0, w), axis=1)[:, ends]
    return tp, fp


def average_precision_batch(labels: Any, scores: Any, weights: Any) -> np.ndarray:
    """AP (sklearn's step definition) for each row of ``weights``; NaN without positives."""
    y, s, w = np.asarray(labels), np.asarray(scores, "float64"), np.atleast_2d(weights)
    tp, fp = _cumulative_at_groups(y, s, w)
    total = tp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall_step = np.diff(tp, axis=1, prepend=0) / total
        ap = np.sum(recall_step * precision, axis=1)
    return np.where(total[:, 0] > 0, ap, np.nan)


def roc_auc_batch(labels: Any, scores: Any, weights: Any) -> np.ndarray:
    """ROC AUC (ties count one half) for each row of ``weights``; NaN with a single class."""
    y, s, w = np.asarray(labels), np.asarray(scores, "float64"), np.atleast_2d(weights)
    tp, fp = _cumulative_at_groups(y, s, w)
    pos, neg = tp[:, -1], fp[:, -1]
    pos_step = np.diff(tp, axis=1, prepend=0)
    neg_step = np.diff(fp, axis=1, prepend=0)
    below = neg[:, None] - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.sum(pos_step * (below + 0.5 * neg_step), axis=1) / (pos * neg)
    return np.where((pos > 0) & (neg > 0), auc, np.nan)
