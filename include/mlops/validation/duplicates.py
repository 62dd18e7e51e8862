"""Duplicate transactions: a redelivered copy costs nothing, a conflicting id costs all copies.

Rule (``TRANSACTION_ID`` identifies a transaction; the content is every schema column):

- **Exact copies** (same id, same content; a producer's at-least-once retry, within a file or
  across the day's files): the first copy (file order, then row order) is the transaction and
  is validated like any row; each extra copy goes to quarantine with ``duplicate_copy``. The
  extra copies are not counted in the bad-row share: nothing of the day's data is lost.
- **Conflicting ids** (same id, contents that differ, even if some copies agree): no copy can
  be told to be the real one, so every copy is quarantined with ``conflicting_duplicate_id``
  (GX's uniqueness expectation on the rows left once exact copies are set aside).

Rows without an id are left to ``transaction_id_not_null``.

Both rules come from one pass over the ids (hashing a million ids is the cost; the rows
that repeat an id are few): the conflicting rows are exactly those the uniqueness
expectation fails once the exact copies are set aside, so they are its row mask, checked
against GX's verdict like every other mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DUPLICATE_COPY = "duplicate_copy"
ID_COLUMN = "TRANSACTION_ID"


@dataclass(frozen=True, eq=False)
class Duplicates:
    """Row masks over the frame: ``copies`` on each exact copy after the first of an id whose
    copies all agree; ``conflicting`` on every copy of an id whose copies differ."""

    copies: np.ndarray
    conflicting: np.ndarray


def find_duplicates(frame: pd.DataFrame, columns: list[str]) -> Duplicates:
    """The exact copies and the conflicting ids of ``frame``; ``columns`` is the content."""
    copies = np.zeros(len(frame), dtype=bool)
    conflicting = np.zeros(len(frame), dtype=bool)
    if ID_COLUMN not in frame.columns:
        return Duplicates(copies, conflicting)
    ids = frame[ID_COLUMN]
    repeated = ids.duplicated(keep=False).to_numpy(dtype=bool) & ids.notna().to_numpy(dtype=bool)
    if not repeated.any():
        return Duplicates(copies, conflicting)
    rows = frame.loc[repeated, columns]
    contents = rows.drop_duplicates().groupby(ID_COLUMN, observed=True).size()
    agreeing = rows[ID_COLUMN].isin(contents.index[contents == 1]).to_numpy(dtype=bool)
    positions = np.flatnonzero(repeated)
    copies[positions[rows.duplicated(keep="first").to_numpy(dtype=bool) & agreeing]] = True
    conflicting[positions[~agreeing]] = True
    return Duplicates(copies, conflicting)
