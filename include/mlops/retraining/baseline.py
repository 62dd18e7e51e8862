"""What a champion's served quality is held to: its own live baseline, or a better one an
earlier champion set. Pure: the earlier decisions in, the baseline out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

QUALITY_METRICS = ("average_precision", "card_precision_at_100")


def live_baseline(
    past: Sequence[Mapping[str, Any]], champion: str | None, baseline_days: int
) -> dict[str, float] | None:
    """The champion's own served quality on its first ``baseline_days`` matured days (read
    from the earlier decisions), or None until that many were recorded. The gate's
    evaluation window is a different week with the known cards of another history, so live
    quality can sit well away from it (0.66 served against 0.50 evaluated on the demo's
    first model); a model is judged against how it did when it started serving."""
    served = [
        r["signals"]["newest"]
        for r in past
        if r.get("champion_version") == champion and (r.get("signals") or {}).get("newest")
    ][:baseline_days]
    if champion is None or len(served) < baseline_days:
        return None
    return {
        metric: sum(s[metric] for s in served) / len(served)
        for metric in QUALITY_METRICS
        if all(s.get(metric) is not None for s in served)
    }


def expected_quality(
    past: Sequence[Mapping[str, Any]], champion: str | None, baseline_days: int
) -> dict[str, float] | None:
    """What the served quality is held to: per metric, the best live baseline among the
    champion's own and those recorded for earlier champions in the history. A model
    promoted during a drift, still blind to it, starts with a low baseline of its own; held
    to its predecessor's, it keeps breaching until a retrain on the new data restores the
    quality (the storm guards bound how often that is asked)."""
    found = [live_baseline(past, champion, baseline_days)]
    found += [
        (r.get("signals") or {}).get("baseline")
        for r in past
        if r.get("champion_version") != champion
    ]
    found = [b for b in found if b]
    if not found:
        return None
    return {
        m: max(b[m] for b in found if m in b) for m in QUALITY_METRICS if any(m in b for b in found)
    }
