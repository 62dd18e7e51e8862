"""The guard in front of the service: a token on everything but the probes, a body cap that
stops reading at the cap, a bound on requests in flight, error text without addresses.

In-process, over httpx's ASGI transport: it hands the app the body chunk by chunk, as a
server would, and only when the app asks, so the chunks a generator gave are the bytes the
server read. The service's own app is built without its lifespan (no registry, no store).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mlops.features.online import OnlineStoreUnavailable
from mlops.serving.api import create_app
from mlops.serving.config import ServingConfig, load_serving_config
from mlops.serving.guard import Guard, public_cause, public_text, require_token
from mlops.settings import ConfigError, load_settings

TOKEN = "a-token-of-thirty-two-characters"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CAP = 1 << 20
CHUNK = 64 * 1024
BIG = 23 * 1024 * 1024  # the body an issue saw parsed whole before the batch limit refused it


@pytest.fixture
def app(tmp_path):
    config = ServingConfig(token=TOKEN, max_body_bytes=CAP)
    return create_app(load_settings({"MLOPS_DATA_ROOT": str(tmp_path)}), config)


def call(app, method: str, path: str, **kw) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


class Body:
    """A 23 MB body in 64 KiB chunks that counts what the server pulled of it."""

    def __init__(self, size: int = BIG) -> None:
        self.size, self.read = size, 0

    async def __aiter__(self):
        while self.read < self.size:
            self.read += CHUNK
            yield b"x" * CHUNK


# ---------------------------------------------------------------- the token
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/predict"), ("GET", "/metrics"), ("GET", "/openapi.json")]
)
@pytest.mark.parametrize("given", [None, "Bearer wrong-token-of-32-characters!", TOKEN, ""])
def test_guarded_paths_answer_401_with_a_bearer_challenge_without_the_token(
    app, method, path, given
):
    headers = {} if given is None else {"Authorization": given}
    response = call(app, method, path, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "a bearer token is required"}


def test_the_token_opens_them_and_the_docs_pages_are_gone(app):
    assert call(app, "GET", "/metrics", headers=AUTH).status_code == 200
    lower = {"Authorization": f"bearer {TOKEN}"}  # the scheme is case-insensitive (RFC 9110)
    assert call(app, "GET", "/metrics", headers=lower).status_code == 200
    other = {"Authorization": f"Basic {TOKEN}"}
    assert call(app, "GET", "/metrics", headers=other).status_code == 401
    assert call(app, "GET", "/openapi.json", headers=AUTH).json()["paths"].keys() >= {"/predict"}
    assert call(app, "POST", "/predict", headers=AUTH, json={}).status_code == 422
    assert call(app, "GET", "/docs", headers=AUTH).status_code == 404
    assert call(app, "GET", "/redoc", headers=AUTH).status_code == 404


def test_probes_stay_open_and_health_tells_a_stranger_only_whether_it_is_ready(app):
    assert call(app, "GET", "/live").status_code == 503  # no poller runs: not started
    stranger = call(app, "GET", "/health")
    assert (stranger.status_code, stranger.json()) == (503, {"ready": False})
    insider = call(app, "GET", "/health", headers=AUTH)
    assert insider.status_code == 503
    assert insider.json().keys() >= {"champion", "challenger", "rollout", "reasons", "failed"}
    assert insider.json()["reasons"]


@pytest.mark.parametrize("token", ["", "short-token", "change-me-model-service-token"])
def test_no_service_without_a_token_of_its_own(tmp_path, token):
    with pytest.raises(ConfigError, match="a bearer token of at least 16 characters is required"):
        require_token(token)
    settings = load_settings({"MLOPS_DATA_ROOT": str(tmp_path)})
    with pytest.raises(ConfigError, match="set MLOPS_SERVE_TOKEN or MLOPS_SERVE_TOKEN_FILE"):
        create_app(settings, ServingConfig(token=token)).build_middleware_stack()


def test_the_token_comes_from_the_environment_or_a_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    assert load_serving_config({"MLOPS_SERVE_TOKEN": TOKEN}).token == TOKEN
    assert load_serving_config({"MLOPS_SERVE_TOKEN_FILE": str(secret)}).token == TOKEN
    assert TOKEN not in repr(load_serving_config({"MLOPS_SERVE_TOKEN": TOKEN}))
    with pytest.raises(ConfigError, match="MLOPS_SERVE_TOKEN or MLOPS_SERVE_TOKEN_FILE, not both"):
        load_serving_config({"MLOPS_SERVE_TOKEN": TOKEN, "MLOPS_SERVE_TOKEN_FILE": str(secret)})
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="TOKEN_FILE cannot be read: FileNotFoundError$"):
        load_serving_config({"MLOPS_SERVE_TOKEN_FILE": missing})


# ---------------------------------------------------------------- the body
def test_a_declared_23_mb_body_gets_413_before_a_byte_is_read(app):
    body = Body()
    response = call(
        app, "POST", "/predict", headers={**AUTH, "Content-Length": str(BIG)}, content=body
    )
    assert response.status_code == 413, response.text
    assert response.json() == {"detail": f"the body exceeds {CAP} bytes"}
    assert response.headers["connection"] == "close"  # or the server reads the rest anyway
    assert body.read == 0


def test_a_chunked_23_mb_body_gets_413_and_is_read_only_up_to_the_cap(app):
    body = Body()
    response = call(app, "POST", "/predict", headers=AUTH, content=body)
    assert response.status_code == 413, response.text
    assert CAP < body.read <= CAP + CHUNK  # the chunk that passed the cap, no further


def test_a_body_under_the_cap_is_parsed_as_before(app):
    body = Body(CAP - CHUNK)
    response = call(app, "POST", "/predict", headers=AUTH, content=body)
    assert response.status_code == 422, response.text  # read whole: not JSON
    assert body.read == CAP - CHUNK


# ---------------------------------------------------------------- requests in flight
def test_beyond_the_limit_in_flight_requests_get_503_with_retry_after_not_a_queue():
    """One request held inside the app (an event it waits for) fills a limit of 1."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(scope, receive, send):
        if scope["path"] == "/predict":
            entered.set()
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    guard = Guard(slow, token=TOKEN, max_body_bytes=CAP, max_in_flight=1)

    async def go() -> tuple[httpx.Response, ...]:
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            held = asyncio.create_task(client.get("/predict", headers=AUTH))
            await entered.wait()
            refused = [await client.get("/predict", headers=AUTH) for _ in range(3)]
            probe = await client.get("/live")  # probes do not count
            release.set()
            done = await held
            after = await client.get("/predict", headers=AUTH)  # the slot is free again
            return (done, *refused, probe, after)

    held, *refused, probe, after = asyncio.run(go())
    assert held.status_code == 200 and guard.in_flight == 0
    assert [r.status_code for r in refused] == [503] * 3
    assert {r.headers["retry-after"] for r in refused} == {"1"}
    assert refused[0].json() == {"detail": "too many requests in flight, retry later"}
    assert probe.status_code == 200 and after.status_code == 200


def test_the_service_counts_what_the_guard_refuses(app):
    call(app, "GET", "/metrics")
    metrics = call(app, "GET", "/metrics", headers=AUTH).text
    assert 'fraud_http_requests_total{endpoint="/metrics",status="401"} 1.0' in metrics


# ---------------------------------------------------------------- error text
def test_errors_name_the_cause_never_an_address_a_path_or_a_setting_value():
    down = OnlineStoreUnavailable(
        "online store Redis redis://10.0.0.7:6379/0 did not answer within 2.0 s "
        "(MLOPS_REDIS_TIMEOUT_S) while reading; check that Redis is up"
    )
    assert public_cause(down) == "online store unavailable (unreachable or too slow); retry later"
    poll = (
        "last registry poll failed: ConnectionError: HTTPConnectionPool(host='mlflow', "
        "port=5000): Max retries exceeded with url: /api/2.0/mlflow/registered-models "
        "(mlflow.internal:5000, 127.0.0.1:5000) and postgresql://u:pw@db:5432/mlops"
    )
    text = public_text(poll)
    assert text.startswith("last registry poll failed: ConnectionError:")
    leaks = ["mlflow'", "5000", "/api", "internal", "127.0.0.1", "pw", "db:5432", "postgresql"]
    assert [leak for leak in leaks if leak in text] == [], text
    missing = "previous v3 failed to load: OSError: No such file: /data/mlartifacts/m-1/model.skops"
    assert public_text(missing) == "previous v3 failed to load: OSError: No such file: <hidden>"
    stale = "customer snapshot of 2024-05-02 is not older than the transaction's day 2024-05-02"
    assert public_text(stale) == stale  # dates and entities are the cause: they stay


@pytest.mark.parametrize(
    ("text", "public"),
    [
        (
            "could not connect to server: redis-primary.internal",
            "could not connect to server: <hidden>",
        ),
        ("Name or service not known: db.prod.example.com", "Name or service not known: <hidden>"),
        ("Name or service not known: db", "Name or service not known: <hidden>"),
        ("connection to postgres failed", "connection to <hidden> failed"),
        ("connecting to redis-primary timed out", "connecting to <hidden> timed out"),
        (
            'connection to server at "db" (10.0.0.5), port 5432 failed',
            "connection to server at <hidden> (<hidden>), port 5432 failed",
        ),
        (
            'could not translate host name "postgres" to address',
            "could not translate host name <hidden> to address",
        ),
        (
            "Failed to resolve 'mlflow' (temporary failure)",
            "Failed to resolve <hidden> (temporary failure)",
        ),
        ("host: db-1 refused; server=cache", "host: <hidden> refused; server=<hidden>"),
        ("no answer from api.svc.cluster.local.", "no answer from <hidden>."),
        ("listening at 10.1.2.3", "listening at <hidden>"),
        ("connect to [2001:db8::1]:5432 failed", "connect to <hidden> failed"),
        (
            "fe80::1%eth0, ::1 and ::ffff:192.0.2.1 refused",
            "<hidden>, <hidden> and <hidden> refused",
        ),
        ("2001:0db8:0000:0000:0000:ff00:0042:8329 refused", "<hidden> refused"),
    ],
)
def test_host_names_and_ip_addresses_are_hidden(text, public):
    assert public_text(text) == public


@pytest.mark.parametrize(
    "text",
    [
        "failed to load previous v3: model 1.24.2 needs scikit-learn 1.5",
        "customer snapshot of 2024-05-02T10:00:00 is not older than 2024-05-02",
        "mlflow.sklearn could not load app.py with skops.io.load",
        "server closed the connection unexpectedly",
        "No route to host",
        "Timeout connecting to server",
        "failed to connect to the database",
        "the batch has 101 transactions, more than 100",
        "tx_amount must be >= 0 (got -1.5) at row 3",
    ],
)
def test_text_without_a_place_is_left_as_it_is(text):
    assert public_text(text) == text


def test_not_ready_reasons_reach_health_and_predict_without_the_address_or_path(app):
    app.state.holder.error = (
        "last registry poll failed: ConnectionError: HTTPConnectionPool(host='mlflow', "
        "port=5000) reading /srv/mlflow/mlflow.db"
    )
    tx = {
        "transaction_id": 1,
        "customer_id": 2,
        "terminal_id": 3,
        "tx_datetime": "2024-05-02T10:00:00",
        "tx_amount": 10.0,
    }
    predict = call(app, "POST", "/predict", headers=AUTH, json={"transactions": [tx]})
    health = call(app, "GET", "/health", headers=AUTH)
    assert predict.status_code == 503 and health.status_code == 503
    assert "last registry poll failed: ConnectionError" in predict.json()["detail"]
    assert "last registry poll failed: ConnectionError" in health.json()["reasons"][0]
    for text in (predict.text, health.text):
        assert [leak for leak in ("mlflow'", "5000", "/srv") if leak in text] == [], text
