"""A fitted binary ``HistGradientBoostingClassifier`` as plain Python functions of a row.

Each tree of ``_predictors`` becomes a function of nested ``if x[f] <= t:`` blocks over its
nodes (feature, ``num_threshold``, ``left``, ``right``, ``value`` at the leaves) returning
its leaf's value; the score starts from ``_baseline_prediction``, adds one leaf value per
tree in the trees' order (the additions scikit-learn makes, in the same float64 steps) and
returns the sigmoid of the sum. About 20 µs a row against 0.4 ms for ``predict_proba`` on
a one-row array, and no OpenMP. One function per tree, not one for the model: ``compile``
holds the GIL for the whole source it is given (84 ms for 100 trees on this host), so a
single function stalled every request of a service loading a new version in the
background; a tree at a time lets the requests in between (about 1 ms each).

The function takes a list of floats **without NaN**: a missing value needs the node's
``missing_go_to_left``, so rows with NaN are left to scikit-learn by the caller
(``mlops.scoring.row_scorer``). A model this does not cover (categorical splits, more than
two classes, trees deeper than Python's indentation allows) returns None from ``compile_hgb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 80  # Python's tokenizer refuses 100 levels of indentation


def _tree_lines(nodes: Any, node: int, depth: int, out: list[str]) -> int:
    """Lines of one tree from ``node``; returns the deepest level reached."""
    pad = "    " * depth
    row = nodes[node]
    if row["is_leaf"]:
        out.append(f"{pad}return {float(row['value'])!r}")
        return depth
    if depth > MAX_DEPTH:
        raise ValueError("tree too deep to compile")
    out.append(f"{pad}if x[{int(row['feature_idx'])}] <= {float(row['num_threshold'])!r}:")
    left = _tree_lines(nodes, int(row["left"]), depth + 1, out)
    out.append(f"{pad}else:")
    right = _tree_lines(nodes, int(row["right"]), depth + 1, out)
    return max(left, right)


def tree_sources(model: Any) -> tuple[float, list[str]] | None:
    """The baseline and the Python source of ``tree(x)`` for each tree of a fitted binary
    HGB, or None when not covered."""
    predictors = getattr(model, "_predictors", None)
    baseline = getattr(model, "_baseline_prediction", None)
    if predictors is None or baseline is None or len(getattr(model, "classes_", ())) != 2:
        return None
    if getattr(model, "is_categorical_", None) is not None:
        return None
    sources = []
    try:
        for trees in predictors:
            if len(trees) != 1:
                return None
            nodes = trees[0].nodes
            if nodes["is_categorical"].any():
                return None
            lines = ["def tree(x):"]
            _tree_lines(nodes, 0, 1, lines)
            sources.append("\n".join(lines) + "\n")
    except ValueError:
        return None
    return float(baseline.ravel()[0]), sources


def compile_hgb_raw(model: Any) -> Callable[[list[float]], float] | None:
    """``raw(x)``: the model's ``decision_function`` (log-odds) of one row given as a list of
    floats; None when not covered. A stack blends these (``mlops.scoring.row_scorer``)."""
    found = tree_sources(model)
    if found is None:
        return None
    baseline, sources = found
    trees = []
    for source in sources:  # one compile call per tree: see the module's docstring
        namespace: dict[str, Any] = {}
        exec(compile(source, "<hgb-tree>", "exec"), namespace)  # noqa: S102 (our own source)
        trees.append(namespace["tree"])

    def raw(x: list[float]) -> float:
        r = baseline
        for tree in trees:
            r += tree(x)
        return r

    return raw


def compile_hgb(model: Any) -> Callable[[list[float]], float] | None:
    """``score(x)``: P(class 1) of one row given as a list of floats; None when not covered."""
    raw = compile_hgb_raw(model)
    if raw is None:
        return None
    exp = math.exp

    def score(x: list[float]) -> float:
        r = raw(x)
        return 1.0 / (1.0 + exp(-r)) if r > -700.0 else 0.0

    return score


__all__ = ["compile_hgb", "compile_hgb_raw", "tree_sources"]
