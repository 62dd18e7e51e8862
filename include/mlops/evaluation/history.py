"""The labelled history an evaluation is judged against: the cards already known compromised.

On each test day ``T`` the handbook removes the cards with a fraud in the training period or
on any later day up to ``T - delay - 1`` (``SIMULATOR.md``; ``mlops.evaluation.metrics`` holds
the day rule). The frauds of the delay gap between training and evaluation are part of that
history although no model trains on them: passing only the training set as history left
those cards in, and on the handbook protocol removed 7,684 rows instead of 9,569, which made
every figure optimistic (CP@100 by about 0.04). So the history is read from the validated
zone, every day from the start of the training window to the day before the evaluation
window; frauds inside the window come from the window itself, under the same delay rule.

Why it starts at the training window and not at the first day of data: that is the
handbook's rule, and an unbounded history would remove every card that ever met a
compromised terminal (47,322 rows of the handbook's test week, a quarter of it), a share that
grows with the age of the data set and would make figures of different dates incomparable.
Only the frauds are kept: they alone decide which cards are known.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from mlops.features.inputs import INPUT, as_date, day_range, input_partitions, query_partitions
from mlops.features.names import LABEL
from mlops.io import storage

if TYPE_CHECKING:
    import pandas as pd

KNOWN_FRAUD_COLUMNS: tuple[str, ...] = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", LABEL)


@dataclass(frozen=True, eq=False)
class KnownFrauds:
    """The frauds of the labelled days ``[start, end)``; ``inputs`` is {partition URI: sha256}."""

    frame: pd.DataFrame
    start: date
    end: date
    inputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """A summary for the manifest and the decision record (never the rows)."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "frauds": len(self.frame),
            "cards": int(self.frame["CUSTOMER_ID"].nunique()),
        }


def _digest(files: dict[str, str]) -> str:
    """A partition's sha256: its data file's, or one over all of them (as the training sets)."""
    if len(files) == 1:
        return next(iter(files.values()))
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def history_days(train_start: date, eval_start: date) -> tuple[date, date]:
    """``[start, end)`` of the labelled days that tell which cards are known: the training
    period and the delay gap after it, up to the evaluation window."""
    if eval_start <= train_start:
        raise ValueError(f"the evaluation window {eval_start} starts before training {train_start}")
    return train_start, eval_start


def read_known_frauds(
    validated_uri: str,
    start: date | str,
    end: date | str,
    *,
    history_start: date | None = None,
    storage_options: storage.StorageOptions | None = None,
) -> KnownFrauds:
    """The validated frauds of ``[start, end)``, oldest first; raises when a day is missing
    (a gap would silently keep known cards in the evaluation)."""
    import pandas as pd

    start, end = as_date(start), as_date(end)
    if end <= start:
        raise ValueError(f"empty history [{start}, {end})")
    partitions = input_partitions(
        validated_uri,
        day_range(start, end - timedelta(days=1)),
        history_start=history_start,
        needed_for=f"the known compromised cards of [{start}, {end})",
        storage_options=storage_options,
    )
    inputs = {p.uri: _digest(p.sha256) for p in partitions}
    if not partitions:
        frame = pd.DataFrame({c: pd.Series(dtype="int64") for c in KNOWN_FRAUD_COLUMNS})
        frame["TX_DATETIME"] = frame["TX_DATETIME"].astype("datetime64[us]")
        return KnownFrauds(frame, start, end, inputs)
    (table,) = query_partitions(
        partitions,
        f"SELECT {', '.join(KNOWN_FRAUD_COLUMNS)} FROM {INPUT} WHERE {LABEL} = 1 "
        "ORDER BY TX_DATETIME, TRANSACTION_ID",
        storage_options=storage_options,
    )
    frame = table.to_pandas().astype({"TX_DATETIME": "datetime64[us]"})
    return KnownFrauds(frame, start, end, inputs)
