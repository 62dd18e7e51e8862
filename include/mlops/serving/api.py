"""The model service: FastAPI over the registry's champion (and challenger), Feast and the log.

``POST /predict`` takes one to ``MLOPS_SERVE_MAX_BATCH`` transactions; for each it reads the
card's and the terminal's snapshots through the ``fraud_model_v1`` feature service, adds the
transaction (``mlops.features.serving``), scores with every variant in traffic and answers
with the variant the router picks for the card (``mlops.rollout.state.route``). An unknown
card or terminal is served with the **default features** of an empty history (the card's
windows hold only this transaction, the terminal's counts and risks are 0), flagged
``missing`` in ``features_status`` and counted in ``fraud_unknown_entities_total``. A stored
row that cannot be valid for the transaction's day (the store is behind, or the time is
before the latest snapshot) is refused with 409 naming it, since its features would skew.
An online store that is down or silent past ``MLOPS_REDIS_TIMEOUT_S`` gets a 503 naming it,
within that timeout; the service starts without it and needs no restart when it is back.

``GET /health`` is 200 once a champion is loaded and the feature service can be read, 503
with the reasons before: the readiness check. The service starts without either and becomes
ready when they appear (``mlops.serving.readiness``). A challenger or ``previous`` that
cannot load or warm up is left out, listed under ``failed`` and in
``fraud_model_load_failed``; the champion serves on. ``GET /live`` is 200 while the process
answers and its registry poller runs, ready or not: the liveness check (a restart would not
bring a champion sooner). ``GET /metrics`` is the
Prometheus text format. OpenAPI at ``/openapi.json`` (no ``/docs`` page). Every answered
transaction goes to the prediction log from a background thread (``mlops.scoring.log``).

Every path but ``/live`` and ``/health`` needs ``Authorization: Bearer <MLOPS_SERVE_TOKEN>``;
bodies and requests in flight are bounded (``mlops.serving.guard``). ``/health`` without
the token says only whether the service is ready; with it, versions, rollout and reasons.
Error bodies name the cause, never an address, a path or a setting's value.

Run it with ``make serve`` (``python -m mlops.serving.app``, the entry point): settings
from ``MLOPS_*``.
"""

import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mlops.features.names import FEATURES
from mlops.features.online import OnlineFeatures, OnlineStoreUnavailable, online_features
from mlops.features.serving import StaleSnapshotError
from mlops.rollout.state import CHALLENGER
from mlops.scoring.log import prediction_sink
from mlops.scoring.log_writer import BackgroundLog
from mlops.scoring.score import Scores, ServingModels, score_rows
from mlops.serving.config import ServingConfig
from mlops.serving.guard import Guard, authenticated, public_cause, public_text
from mlops.serving.holder import ModelHolder
from mlops.serving.loader import LoaderProcess
from mlops.serving.metrics import ServiceMetrics, service_metrics
from mlops.serving.readiness import FeatureSource, not_ready_because
from mlops.serving.schema import (
    Health,
    Liveness,
    PredictResponse,
    Status,
    Transaction,
    predict_request,
)
from mlops.serving.startup import freeze_heap
from mlops.settings import Settings

log = logging.getLogger(__name__)


class _CountRequests:
    """Pure ASGI middleware counting responses by endpoint and status (cheaper than
    Starlette's ``BaseHTTPMiddleware``, which copies every body through a stream)."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope["path"] if scope["path"] in _ENDPOINTS else "other"
            self.metrics.requests.labels(path, str(status["code"])).inc()


_ENDPOINTS = ("/predict", "/health", "/live", "/metrics", "/openapi.json")


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def _records(
    request_id: str,
    txs: list[Transaction],
    looked_up: list[OnlineFeatures],
    scores: Scores,
    serving: ServingModels,
    latency_ms: float,
) -> list[dict[str, Any]]:
    versions = serving.live.versions()
    # a live answer's own time, recorded, never used to decide anything
    now = datetime.now(UTC).replace(tzinfo=None)  # noqa: TID251
    rows = []
    for i, (tx, online) in enumerate(zip(txs, looked_up, strict=True)):
        challenger = None if scores.challenger is None else float(scores.challenger[i])
        rows.append(
            {
                "request_id": request_id,
                "time": now,
                "source": "service",
                "transaction_id": tx.transaction_id,
                "tx_datetime": tx.tx_datetime,
                "customer_id": tx.customer_id,
                "terminal_id": tx.terminal_id,
                **online.features,
                "champion_version": versions["champion"],
                "champion_score": float(scores.champion[i]),
                "challenger_version": versions.get(CHALLENGER),
                "challenger_score": challenger,
                "variant": scores.variant[i],
                "model_version": versions[scores.variant[i]],
                "score": float(scores.score[i]),
                "rollout_strategy": serving.live.rollout.strategy,
                "challenger_error": scores.challenger_error,
                "customer_status": online.status["customer"],
                "terminal_status": online.status["terminal"],
                "latency_ms": latency_ms,
            }
        )
    return rows


def _observe(metrics: ServiceMetrics, serving: ServingModels, scores: Scores, seconds: float):
    versions = serving.live.versions()
    champion = versions["champion"]
    for value in scores.champion:
        metrics.scores.labels("champion", champion).observe(value)
    if scores.challenger is not None:
        challenger = versions[CHALLENGER]
        for value in scores.challenger[scores.challenger == scores.challenger]:  # not NaN
            metrics.scores.labels(CHALLENGER, challenger).observe(value)
        if scores.challenger_error:
            error = scores.challenger_error
            kinds = {"raised": "raised", "failed to load": "not_loaded"}
            kind = next((kinds[k] for k in kinds if k in error), "invalid_scores")
            metrics.errors.labels(CHALLENGER, challenger, kind).inc(len(scores.challenger))
    for variant in scores.variant:
        metrics.predictions.labels(variant, versions[variant]).inc()
        metrics.latency.labels(variant, versions[variant]).observe(seconds)


def _lookup(
    features: FeatureSource, txs: list[Transaction], metrics: ServiceMetrics
) -> list[OnlineFeatures]:
    """The online features of each transaction; 409 for features that cannot be valid for
    the transaction's time, 503 when the online store is down."""
    looked_up = []
    store, reader = features.store, features.reader
    for tx in txs:
        moment = {"TX_DATETIME": tx.tx_datetime, "TX_AMOUNT": tx.tx_amount}
        try:
            found = online_features(store, tx.customer_id, tx.terminal_id, moment, reader=reader)
        except StaleSnapshotError as err:
            metrics.stale_features.inc()
            detail = f"transaction {tx.transaction_id}: {public_cause(err)}"
            raise HTTPException(409, detail) from err
        except OnlineStoreUnavailable as err:
            log.warning("online store unavailable: %s", err)  # the address, for operators
            raise HTTPException(503, public_cause(err)) from err
        for entity, status in found.status.items():
            if status == "missing":
                metrics.unknown_entities.labels(entity).inc()
        looked_up.append(found)
    return looked_up


def _reloaded(metrics: ServiceMetrics, state: dict[str, Any], serving: ServingModels) -> None:
    freeze_heap(full=False)  # the models just loaded, requests being served
    metrics.reloads.inc()
    versions = serving.live.versions()
    failed_versions = {"previous": serving.live.previous, **versions, **serving.failed_versions}
    for gauge, key, now in (
        (metrics.loaded, "loaded", [(v, versions[v]) for v in serving.models]),
        (metrics.load_failed, "failed", [(r, failed_versions[r]) for r in serving.failed]),
    ):
        for labels in state[key]:
            gauge.remove(*labels)
        state[key] = now
        for variant, version in now:
            gauge.labels(variant, version).set(1)


def _lifespan(
    settings: Settings,
    config: ServingConfig,
    holder: ModelHolder,
    metrics: ServiceMetrics,
    state: dict[str, Any],
    loader: LoaderProcess | None,
) -> Any:
    """Start-up (log writer, first poll: feature store warm and registry read, poller) and
    shutdown (poller stopped, log flushed). Nothing missing stops the start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        sink = prediction_sink(settings.data_root, settings.prediction_log_url)
        state["log"] = BackgroundLog(
            sink, flush_s=config.log_flush_s, on_drop=metrics.log_dropped.inc
        )
        holder.poll_once()  # not ready yet: the poller keeps trying
        freeze_heap()
        holder.start(config.poll_s)
        yield
        holder.stop()
        if loader is not None:
            loader.stop()
        state["log"].close()

    return lifespan


def create_app(
    settings: Settings,
    config: ServingConfig,
    *,
    store: Any = None,
    loader: LoaderProcess | None = None,
) -> FastAPI:
    """The service; models load and the poller starts when the app starts (lifespan). With
    a ``loader``, the registry reads and loads happen in its process, else in this one."""
    metrics = service_metrics()
    PredictRequest = predict_request(config.max_batch)  # noqa: N806 (a class)

    state: dict[str, Any] = {"loaded": [], "failed": []}
    features = FeatureSource(settings, store)
    holder = ModelHolder(
        settings.mlflow_tracking_uri,
        config.model_name,
        on_reload=partial(_reloaded, metrics, state),
        on_error=lambda _: metrics.reload_errors.inc(),
        before_poll=features.check,
        **({"loader": loader.load, "live": loader.live} if loader else {}),
    )
    metrics.swap_seconds.set_function(lambda: holder.swap_s)
    lifespan = _lifespan(settings, config, holder, metrics, state, loader)

    app = FastAPI(
        title="fraud model service",
        version="1",
        description=__doc__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.holder, app.state.metrics = holder, metrics
    guard = {"max_body_bytes": config.max_body_bytes, "max_in_flight": config.max_in_flight}
    app.add_middleware(Guard, token=config.token, **guard)
    app.add_middleware(_CountRequests, metrics=metrics)  # outside: counts the guard's answers too

    @app.exception_handler(RequestValidationError)
    async def invalid(_, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        fields = sorted({_field(tuple(e["loc"])) for e in errors})
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
        return JSONResponse({"detail": detail, "fields": fields}, status_code=422)

    def answer(body: Any) -> Response:
        began = time.perf_counter()
        serving = holder.current  # one snapshot for the whole request
        reasons = not_ready_because(serving, holder, features)
        if reasons:
            raise HTTPException(503, "not ready: " + public_text("; ".join(reasons)))
        txs: list[Transaction] = body.transactions
        looked_up = _lookup(features, txs, metrics)
        # one float array in FEATURES order: what the row scorers take (no DataFrame)
        values = [[f.features[name] for name in FEATURES] for f in looked_up]
        rows = np.array(values, dtype=np.float64)
        scores = score_rows(serving, [tx.customer_id for tx in txs], rows)
        seconds = time.perf_counter() - began
        request_id = uuid.uuid4().hex
        _observe(metrics, serving, scores, seconds)
        state["log"].submit(_records(request_id, txs, looked_up, scores, serving, seconds * 1e3))
        versions = serving.live.versions()
        predictions = [
            {
                "transaction_id": tx.transaction_id,
                "score": float(scores.score[i]),
                "variant": scores.variant[i],
                "model_version": versions[scores.variant[i]],
                "features_status": looked_up[i].status,
            }
            for i, tx in enumerate(txs)
        ]
        # PredictResponse's shape (the schema tests hold it), written without validating
        # the answer a second time
        content = json.dumps({"request_id": request_id, "predictions": predictions})
        return Response(content, media_type="application/json")

    @app.post("/predict", response_model=PredictResponse, responses={409: {}, 503: {}})
    async def predict(body: PredictRequest) -> Response:
        # a local store (SQLite) is read in microseconds: scored on the event loop, no hop to
        # the thread pool; a networked one (Redis, each wait bounded by MLOPS_REDIS_TIMEOUT_S)
        # in the pool, so that a slow store never stalls the loop (/live, other requests)
        if features.local:
            return answer(body)
        return await run_in_threadpool(answer, body)

    @app.get("/health", response_model=Health | Status, responses={503: {"model": Health | Status}})
    def health(request: Request) -> JSONResponse:
        serving = holder.current
        reasons = not_ready_because(serving, holder, features)
        status = 200 if not reasons else 503
        if not authenticated(request.scope):  # a probe: ready or not, nothing more
            return JSONResponse(Status(ready=not reasons).model_dump(), status_code=status)
        body = Health(
            ready=not reasons,
            champion=serving.live.champion,
            challenger=serving.live.challenger,
            rollout=serving.live.rollout.to_dict(),
            reasons=[public_text(reason) for reason in reasons],
            failed={role: public_text(why) for role, why in serving.failed.items()},
        )
        return JSONResponse(body.model_dump(), status_code=status)

    # async: on the event loop, not in the thread pool where /predict may wait on a slow
    # online store (each wait bounded by MLOPS_REDIS_TIMEOUT_S, but the pool can fill up)
    @app.get("/live", response_model=Liveness, responses={503: {"model": Liveness}})
    async def live() -> JSONResponse:
        body = Liveness(
            alive=holder.polling, ready=not not_ready_because(holder.current, holder, features)
        )
        return JSONResponse(body.model_dump(), status_code=200 if body.alive else 503)

    @app.get("/metrics", response_class=Response)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


__all__ = ["create_app"]
