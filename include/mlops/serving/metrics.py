"""The service's Prometheus metrics, in a registry of its own (one per app, so tests and
several apps in a process never collide). Served as text at ``/metrics``.

Per variant and model version: predictions answered, scores (histogram, every variant that
scored, shadow included), prediction latency (histogram) and challenger failures. Per
endpoint and status: HTTP requests. Plus unknown entities (served with default features),
stale features refused, registry reloads and their errors, versions left out because they
cannot load, and log rows dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.5)
SCORE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
VARIANT = ("variant", "model_version")


@dataclass(frozen=True)
class ServiceMetrics:
    registry: CollectorRegistry
    requests: Counter
    errors: Counter
    predictions: Counter
    latency: Histogram
    scores: Histogram
    unknown_entities: Counter
    stale_features: Counter
    reloads: Counter
    reload_errors: Counter
    swap_seconds: Gauge
    loaded: Gauge
    load_failed: Gauge
    log_dropped: Counter


def service_metrics() -> ServiceMetrics:
    registry = CollectorRegistry()
    kw = {"registry": registry}
    return ServiceMetrics(
        registry=registry,
        requests=Counter("fraud_http_requests", "HTTP requests", ("endpoint", "status"), **kw),
        errors=Counter(
            "fraud_prediction_errors",
            "predictions that failed, by variant and kind",
            (*VARIANT, "kind"),
            **kw,
        ),
        predictions=Counter("fraud_predictions", "predictions answered", VARIANT, **kw),
        latency=Histogram(
            "fraud_prediction_latency_seconds",
            "request in to response out, per transaction's answering variant",
            VARIANT,
            buckets=LATENCY_BUCKETS,
            **kw,
        ),
        scores=Histogram(
            "fraud_prediction_score",
            "scores of every scoring variant",
            VARIANT,
            buckets=SCORE_BUCKETS,
            **kw,
        ),
        unknown_entities=Counter(
            "fraud_unknown_entities",
            "transactions whose card or terminal the online store does not know",
            ("entity",),
            **kw,
        ),
        stale_features=Counter(
            "fraud_stale_features", "requests refused: online features not valid", **kw
        ),
        reloads=Counter("fraud_model_reloads", "model snapshots swapped in", **kw),
        reload_errors=Counter("fraud_model_reload_errors", "failed registry polls", **kw),
        swap_seconds=Gauge(
            "fraud_model_swap_seconds",
            "the last swap: from the registry read that saw a move to the new models serving",
            **kw,
        ),
        loaded=Gauge("fraud_model_loaded", "1 for each loaded variant and version", VARIANT, **kw),
        load_failed=Gauge(
            "fraud_model_load_failed",
            "1 for each version left out: it cannot load (or is refused) or warm up",
            VARIANT,
            **kw,
        ),
        log_dropped=Counter("fraud_prediction_log_dropped", "log rows dropped", **kw),
    )
