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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DUPLICATE_COPY = "duplicate_copy"


def extra_copies(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """True on each exact copy after the first of an id whose copies all agree."""
    out = np.zeros(len(frame), dtype=bool)
    if "TRANSACTION_ID" not in frame.columns:
        return out
    ids = frame["TRANSACTION_ID"]
    repeated = ids.duplicated(keep=False).to_numpy(dtype=bool) & ids.notna().to_numpy(dtype=bool)
    if not repeated.any():
        return out
    rows = frame.loc[repeated, columns]
    contents = rows.drop_duplicates().groupby("TRANSACTION_ID", observed=True).size()
    agreeing = contents.index[contents == 1]
    copy = rows.duplicated(keep="first") & rows["TRANSACTION_ID"].isin(agreeing)
    out[np.flatnonzero(repeated)[copy.to_numpy(dtype=bool)]] = True
    return out
