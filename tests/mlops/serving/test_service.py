"""The model service started for real (uvicorn, loopback) on a real registry and Feast store.

One service process serves the whole module: starting one costs seconds of imports and
model loading, and the point of several tests is precisely that aliases and rollouts move
under a running service. Each test sets the registry state it needs and waits for the
service's poller to pick it up (``wait_for``).
"""

from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from mlops.features.names import FEATURES
from mlops.rollout.live import load_version, registry_client
from mlops.rollout.state import CHALLENGER, RolloutState, clear_rollout, route, write_rollout
from mlops.scoring.daily import score_day
from mlops.scoring.log import ParquetSink
from mlops.serving.process import ServiceProcess, request_body
from tests.support.prometheus_tools import PrometheusProcess, wait_for
from tests.support.serving_world import (
    SERVED,
    served_transactions,
    set_alias,
)

MODEL = "fraud_model"


@pytest.fixture(scope="module")
def service(serving_world):
    uri = serving_world.settings.mlflow_tracking_uri
    client = registry_client(uri)
    for alias in ("champion", "challenger", "previous"):
        if alias in client.get_registered_model(MODEL).aliases:
            client.delete_registered_model_alias(MODEL, alias)
    clear_rollout(client, MODEL)
    process = ServiceProcess(serving_world.env, poll_s=0.3).start(ready=503)
    process.before_champion = httpx.get(f"{process.url}/health", headers=process.headers).json()
    process.live_before_champion = httpx.get(
        f"{process.url}/live", headers=process.headers
    ).status_code
    set_alias(uri, "champion", "1")
    wait_for(lambda: httpx.get(f"{process.url}/health", headers=process.headers).status_code == 200)
    yield process
    process.stop()


@pytest.fixture
def registry(serving_world, service):
    """The registry client; every test starts from champion v1 and no rollout."""
    client = registry_client(serving_world.settings.mlflow_tracking_uri)
    set_alias(serving_world.settings.mlflow_tracking_uri, "champion", "1")
    clear_rollout(client, MODEL)
    wait_for(lambda: health(service) == {"champion": "1", "challenger": None, "strategy": "direct"})
    return client


def health(service) -> dict[str, Any]:
    body = httpx.get(f"{service.url}/health", headers=service.headers).json()
    return {
        "champion": body["champion"],
        "challenger": body["challenger"],
        "strategy": body["rollout"]["strategy"],
    }


def predict(service, rows: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for start in range(0, len(rows), 100):
        response = httpx.post(
            f"{service.url}/predict",
            headers=service.headers,
            json=request_body(rows[start : start + 100]),
            timeout=60,
        )
        assert response.status_code == 200, response.text
        out += response.json()["predictions"]
    return out


def test_not_ready_before_a_champion_and_ready_after_one_appears_without_restart(service):
    assert service.before_champion["ready"] is False
    assert service.live_before_champion == 200  # alive: Kubernetes must not restart it
    assert service.before_champion["champion"] is None
    assert httpx.get(f"{service.url}/health", headers=service.headers).json()["ready"] is True


def test_predictions_use_the_online_features_and_the_champion(serving_world, service, registry):
    rows = served_transactions(serving_world.root).head(50)
    answers = predict(service, rows)
    assert {(a["variant"], a["model_version"]) for a in answers} == {("champion", "1")}
    model = load_version(serving_world.settings.mlflow_tracking_uri, MODEL, "1")
    expected = model.predict_proba(rows[list(FEATURES)])[:, 1]
    assert [a["score"] for a in answers] == pytest.approx(expected.tolist(), rel=1e-9)
    assert [a["transaction_id"] for a in answers] == rows.TRANSACTION_ID.tolist()


def test_hot_reload_when_the_champion_alias_moves(serving_world, service, registry):
    rows = served_transactions(serving_world.root).head(5)
    set_alias(serving_world.settings.mlflow_tracking_uri, "champion", "2")
    wait_for(lambda: health(service)["champion"] == "2")
    assert {a["model_version"] for a in predict(service, rows)} == {"2"}
    metrics = httpx.get(f"{service.url}/metrics", headers=service.headers).text
    assert 'fraud_model_loaded{model_version="2",variant="champion"} 1.0' in metrics
    swap = next(x for x in metrics.splitlines() if x.startswith("fraud_model_swap_seconds "))
    assert 0 < float(swap.split()[1]) < 60  # the load of v2 took some time, and ended


def start_rollout(service, registry, state: RolloutState) -> None:
    write_rollout(registry, MODEL, state)
    wait_for(lambda: health(service)["strategy"] == state.strategy)


def test_shadow_answers_with_the_champion_and_logs_both_scores(serving_world, service, registry):
    state = RolloutState("shadow", "2", 0.0, SERVED.isoformat(), "1")
    start_rollout(service, registry, state)
    rows = served_transactions(serving_world.root).head(200)
    answers = predict(service, rows)
    assert {(a["variant"], a["model_version"]) for a in answers} == {("champion", "1")}
    sink = ParquetSink(str(serving_world.root / "predictions"))
    logged = wait_for(lambda: _logged(sink, set(rows.TRANSACTION_ID), "shadow"))
    assert logged.challenger_version.eq("2").all() and logged.challenger_score.notna().all()
    assert (logged.score == logged.champion_score).all()
    assert logged[list(FEATURES)].notna().all().all()


def _logged(sink: ParquetSink, ids: set, strategy: str) -> pd.DataFrame | None:
    frame = sink.read_day("service", SERVED)
    frame = frame[frame.transaction_id.isin(ids) & (frame.rollout_strategy == strategy)]
    return frame if set(frame.transaction_id) == ids else None


def test_canary_share_and_the_same_decision_as_daily_scoring(serving_world, service, registry):
    state = RolloutState("canary", "2", 0.4, SERVED.isoformat(), "1")
    start_rollout(service, registry, state)
    rows = served_transactions(serving_world.root)
    answers = predict(service, rows)
    by_card = dict(zip(rows.CUSTOMER_ID, (a["variant"] for a in answers), strict=False))
    assert all(by_card[c] == route(c, state) for c in by_card)
    share = sum(v == CHALLENGER for v in by_card.values()) / len(by_card)
    sigma = math.sqrt(0.4 * 0.6 / len(by_card))
    assert abs(share - 0.4) < 4 * sigma, (share, len(by_card))
    assert {a["model_version"] for a in answers if a["variant"] == CHALLENGER} == {"2"}
    score_day(serving_world.settings, SERVED)
    batch = ParquetSink(str(serving_world.root / "predictions")).read_day("batch", SERVED)
    batch = batch.set_index("transaction_id").loc[rows.TRANSACTION_ID]
    assert batch.variant.tolist() == [a["variant"] for a in answers]
    assert batch.score.tolist() == pytest.approx([a["score"] for a in answers], rel=1e-9)


def test_unknown_cards_and_terminals_get_default_features_and_are_counted(service, registry):
    body = {
        "transactions": [
            {
                "transaction_id": 1,
                "customer_id": 10**12,
                "terminal_id": 10**12,
                "tx_datetime": f"{SERVED}T10:00:00",
                "tx_amount": 42.5,
            }
        ]
    }
    answer = httpx.post(f"{service.url}/predict", headers=service.headers, json=body).json()[
        "predictions"
    ][0]
    assert answer["features_status"] == {"customer": "missing", "terminal": "missing"}
    metrics = httpx.get(f"{service.url}/metrics", headers=service.headers).text
    assert 'fraud_unknown_entities_total{entity="customer"}' in metrics


TX = {
    "transaction_id": 1,
    "customer_id": 2,
    "terminal_id": 3,
    "tx_datetime": f"{SERVED}T10:00:00",
    "tx_amount": 10.0,
}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"transactions": [{**TX, "colour": "red"}]}, "transactions.0.colour"),
        ({"transactions": [TX], "extra": 1}, "extra"),
        ({"transactions": [{**TX, "tx_amount": "10"}]}, "transactions.0.tx_amount"),
        ({"transactions": [{**TX, "customer_id": 2.5}]}, "transactions.0.customer_id"),
        ({"transactions": [{**TX, "terminal_id": True}]}, "transactions.0.terminal_id"),
        ({"transactions": [{**TX, "tx_datetime": 1526000000}]}, "transactions.0.tx_datetime"),
        (
            {"transactions": [{**TX, "tx_datetime": "1850-01-01T00:00:00"}]},
            "transactions.0.tx_datetime",
        ),
        (
            {"transactions": [{k: v for k, v in TX.items() if k != "customer_id"}]},
            "transactions.0.customer_id",
        ),
        (
            {"transactions": [{k: v for k, v in TX.items() if k != "transaction_id"}]},
            "transactions.0.transaction_id",
        ),
        ({"transactions": [{**TX, "customer_id": -1}]}, "transactions.0.customer_id"),
        ({"transactions": [{**TX, "customer_id": 2**63}]}, "transactions.0.customer_id"),
        ({"transactions": [TX] * 101}, "transactions"),
        ({"transactions": []}, "transactions"),
        ({}, "transactions"),
    ],
)
def test_bad_requests_get_422_naming_the_field(service, body, field):
    response = httpx.post(f"{service.url}/predict", headers=service.headers, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["fields"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_amounts_get_422(service, value):
    raw = (
        '{"transactions": [{"transaction_id": 1, "customer_id": 2, "terminal_id": 3, '
        f'"tx_datetime": "{SERVED}T10:00:00", "tx_amount": {value}}}]}}'
    )
    response = httpx.post(
        f"{service.url}/predict",
        content=raw,
        headers={**service.headers, "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["fields"] == ["transactions.0.tx_amount"]


GUARDED = {"/predict", "/metrics", "/openapi.json"}


def test_openapi_fuzzing_finds_no_server_error_with_the_token_and_401s_without(service, registry):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    assert httpx.get(f"{service.url}/openapi.json").status_code == 401
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json", headers=service.headers)
    statuses: list[int] = []
    strangers: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case) -> None:
            response = case.call_and_validate(
                base_url=service.url, headers=service.headers, checks=[not_a_server_error]
            )
            statuses.append(response.status_code)
            anonymous = case.call(base_url=service.url)  # the same request, no token
            strangers.setdefault(case.operation.path, set()).add(anonymous.status_code)

        check()
    assert statuses and max(statuses) < 500
    assert {200, 422} <= set(statuses)
    assert {path: codes for path, codes in strangers.items() if path in GUARDED} == {
        "/predict": {401},
        "/metrics": {401},
    }
    assert max(max(codes) for codes in strangers.values()) < 500


def test_without_the_token_only_the_probes_answer_and_health_says_only_ready(
    serving_world, service, registry
):
    body = request_body(served_transactions(serving_world.root).head(1))
    for given in ({}, {"Authorization": "Bearer " + "x" * 32}):
        predict = httpx.post(f"{service.url}/predict", headers=given, json=body)
        assert (predict.status_code, predict.headers["www-authenticate"]) == (401, "Bearer")
        assert httpx.get(f"{service.url}/metrics", headers=given).status_code == 401
    assert httpx.get(f"{service.url}/docs", headers=service.headers).status_code == 404
    health = httpx.get(f"{service.url}/health")
    assert (health.status_code, health.json()) == (200, {"ready": True})
    assert httpx.get(f"{service.url}/live").status_code == 200


def raw_post(service, head: str, parts: list[bytes]) -> bytes:
    """Send the request line, headers and ``parts`` of a body that never ends; return what
    the service answered meanwhile (a server that waited for the whole body would not)."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(
            f"POST /predict HTTP/1.1\r\nHost: service\r\n{head}"
            f"Authorization: Bearer {service.token}\r\n"
            "Content-Type: application/json\r\n\r\n".encode()
        )
        for part in parts:
            sock.sendall(part)
        answer = b""
        while not answer.endswith(b"}") and (received := sock.recv(65536)):
            answer += received  # headers and the JSON body may come in two packets
        return answer


def read_by(pid: int) -> int:
    """Bytes the process has read so far, sockets included (``rchar``)."""
    io = Path(f"/proc/{pid}/io").read_text()
    return int(next(line for line in io.splitlines() if line.startswith("rchar:")).split()[1])


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_23_mb_body_gets_413_and_the_server_reads_about_the_cap_of_it(service, chunked):
    """Measured: about 0.1 MB read of a declared 23 MB, 1.26 MB of a chunked one (the cap
    and socket buffers); 23 MB in both before the guard closed the connection on 413."""
    size = 23 * 2**20
    body = (b"x" * 2**16 for _ in range(size // 2**16)) if chunked else b"x" * size
    before = read_by(service.process.pid)
    response = httpx.post(
        f"{service.url}/predict", headers=service.headers, content=body, timeout=60
    )
    read = read_by(service.process.pid) - before
    assert response.status_code == 413, response.text
    assert response.json() == {"detail": "the body exceeds 1048576 bytes"}
    assert read < 2 * 2**20, read  # the poller's own reads (registry) are in there too


def test_a_23_mb_body_gets_413_from_the_real_server_before_the_body_is_sent(service):
    declared = raw_post(service, f"Content-Length: {23 * 2**20}\r\n", [b"x" * 1024])
    assert declared.startswith(b"HTTP/1.1 413"), declared
    chunk = b"%x\r\n%s\r\n" % (2**16, b"x" * 2**16)
    chunked = raw_post(service, "Transfer-Encoding: chunked\r\n", [chunk] * 17)  # cap + 64 KiB
    assert chunked.startswith(b"HTTP/1.1 413"), chunked
    assert b"the body exceeds 1048576 bytes" in chunked


def test_a_real_prometheus_scrapes_the_service_metrics(serving_world, service, registry, tmp_path):
    predict(service, served_transactions(serving_world.root).head(7))
    token = tmp_path / "model_service_token"  # as compose mounts its secret for Prometheus
    token.write_text(service.token)
    config = (
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: model-service\n    static_configs: [{{targets: ['127.0.0.1:{service.port}']}}]\n"
        f"    authorization: {{credentials_file: '{token}'}}\n"
    )
    with PrometheusProcess(config, tmp_path) as prometheus:
        value = prometheus.value
        up = wait_for(lambda: value('up{job="model-service"}') == 1.0, timeout_s=90)
        answered = 'sum(fraud_predictions_total{variant="champion",model_version="1"})'
        total = wait_for(lambda: value(answered), timeout_s=60)
        latency = wait_for(lambda: value("sum(fraud_prediction_latency_seconds_count)"), 60)
        scores = wait_for(lambda: value("sum(fraud_prediction_score_count)"), 60)
    assert up and total >= 7 and latency >= 7 and scores >= 7
