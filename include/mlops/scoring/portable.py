"""A checked row scorer as bytes and data, to hand from the process that loaded and checked
it to the process that serves with it (``mlops.serving.loader``).

The loader downloads a version, checks it (``mlops.registry.trust``), builds its fast form
and compares it with ``predict_proba`` (``mlops.scoring.row_scorer``): seconds of CPU that,
in the serving process, would hold the interpreter's lock while requests wait. What crosses
is the pickled model and its ``FastForm`` (column selections, coefficients or the trees'
marshalled code). The server unpickles and builds them (a few milliseconds), checks that
the form scores ``CHECK_ROWS`` probe rows exactly as it did in the loader, and that the
model's digest is the loader's. The pickle comes only from the service's own loader
process over a private pipe, never from the registry: the registry's artifact was loaded
through the trust check, by skops, in the loader.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.scoring.row_scorer import (
    BATCH,
    FastForm,
    RowScorer,
    checked,
    fast_form,
    probe_rows,
)

CHECK_ROWS = BATCH


class ScorerMismatch(RuntimeError):
    """What arrived is not what the loader checked."""


@dataclass(frozen=True)
class PortableScorer:
    model_pickle: bytes
    digest: str
    version: str | None
    form: FastForm | None  # None: the loader found no fast form that matches predict_proba
    fast_path: str
    check_rows: np.ndarray
    check_scores: np.ndarray | None

    def scorer(self) -> RowScorer:
        """The row scorer, built here from what the loader checked."""
        if hashlib.sha256(self.model_pickle).hexdigest() != self.digest:
            raise ScorerMismatch(f"model v{self.version}: digest differs from the loader's")
        model = pickle.loads(self.model_pickle)  # noqa: S301 (our loader's, see the docstring)
        if self.form is None:
            return RowScorer(model, self.digest, self.version, None, self.fast_path)
        fast = self.form.build()
        if not np.array_equal(fast(self.check_rows), self.check_scores):
            raise ScorerMismatch(
                f"model v{self.version}: fast form scores differ from the loader's"
            )
        return RowScorer(model, self.digest, self.version, fast, self.fast_path)


def portable_scorer(model: Any, version: str | None) -> PortableScorer:
    """Check ``model``'s fast form against ``predict_proba`` and pack both for the server."""
    form, what = fast_form(model)
    fast, what = checked(model, version, form and form.build(), what)
    blob = pickle.dumps(model, protocol=5)  # the bytes ``row_scorer.digest`` hashes
    rows = probe_rows(model, rows=CHECK_ROWS, seed=1)
    return PortableScorer(
        model_pickle=blob,
        digest=hashlib.sha256(blob).hexdigest(),
        version=version,
        form=form if fast is not None else None,
        fast_path=what,
        check_rows=rows,
        check_scores=None if fast is None else fast(rows),
    )


__all__ = ["CHECK_ROWS", "PortableScorer", "ScorerMismatch", "portable_scorer"]
