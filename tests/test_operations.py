"""The operations files hold together: the alert rules pass promtool and their unit tests,
the Grafana dashboard is well formed on the provisioned datasource, the compose stack mounts
them where the configs say, and every metric the rules and the dashboard query is one the
real model service exposes, as a real Prometheus scraping it answers.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mlops.registry.versions import MODEL_NAME
from mlops.rollout.live import registry_client
from mlops.rollout.state import clear_rollout
from mlops.serving.process import ServiceProcess, request_body
from tests.support.prometheus_tools import PrometheusProcess, debian_tool, wait_for
from tests.support.serving_world import SERVED, served_transactions, set_alias

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = REPO / "deploy" / "prometheus"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
JOB = "model-service"
# Series Prometheus makes itself for every target, not scraped from the service.
FROM_PROMETHEUS = {"up"}
# A metric named in PromQL: an identifier before a selector's `{` or a range's `[`, or any
# identifier of the service's own namespace (`fraud_model_loaded == 1` has neither).
_SELECTED = re.compile(r"(?<![\w:])([A-Za-z_:][\w:]*)\s*[{\[]")
_FRAUD = re.compile(r"(?<![\w:])(fraud_\w+)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def metric_names(expr: str) -> set[str]:
    bare = _STRING.sub('""', expr)  # label values are not names
    return set(_SELECTED.findall(bare)) | set(_FRAUD.findall(bare))


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_queries() -> dict[str, str]:
    """``dashboard/panel/refId`` -> expr, of every target of every panel."""
    return {
        f"{path.name}/{panel['title']}/{target['refId']}": target["expr"]
        for path in DASHBOARDS
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]
        for target in panel["targets"]
    }


def queried() -> dict[str, str]:
    """Every PromQL expression of the alert rules and the dashboards, by where it is."""
    rules = {f"alerts.yml/{rule['alert']}": rule["expr"] for rule in alert_rules()}
    return {**rules, **dashboard_queries()}


def test_metric_names_are_read_from_promql():
    expr = (
        'histogram_quantile(0.99, sum by (variant, le) (rate(fraud_a_bucket{job="x"}[5m])))'
        ' / (up{job="x", endpoint="/fraud_b"} unless on (job) fraud_c == 1) + other_metric[1m]'
    )
    assert metric_names(expr) == {"fraud_a_bucket", "up", "fraud_c", "other_metric"}


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    argv = [debian_tool("promtool"), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


TOKEN_SECRET = "/run/secrets/model_service_token"  # compose mounts the service's token there


def test_alert_rules_and_the_prometheus_config_pass_promtool(tmp_path: Path):
    """The config as the container reads it: the token secret is a file (promtool opens it)."""
    config = (PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8")
    assert f"credentials_file: {TOKEN_SECRET}" in config
    (tmp_path / "model_service_token").write_text("a-token-of-thirty-two-characters")
    mounted = config.replace(TOKEN_SECRET, str(tmp_path / "model_service_token"))
    (tmp_path / "prometheus.yml").write_text(mounted, encoding="utf-8")
    (tmp_path / "alerts.yml").write_bytes((PROMETHEUS / "alerts.yml").read_bytes())
    for args in (("check", "rules", "alerts.yml"), ("check", "config", "prometheus.yml")):
        done = promtool(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout + done.stderr


def test_alert_rules_pass_their_unit_tests():
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_unit_tests_catch_a_rule_that_no_longer_fires(tmp_path: Path):
    """A threshold of 50 % lets a 10 % share of 5xx through: the tests must say so."""
    text = (PROMETHEUS / "alerts.yml").read_text(encoding="utf-8")
    assert text.count("> 0.05") == 1
    (tmp_path / "alerts.yml").write_text(text.replace("> 0.05", "> 0.5"), encoding="utf-8")
    (tmp_path / "alerts_test.yml").write_bytes((PROMETHEUS / "alerts_test.yml").read_bytes())
    argv = [debian_tool("promtool"), "test", "rules", "alerts_test.yml"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    assert "FraudServerErrorsHigh" in done.stdout + done.stderr


def test_every_alert_has_a_wait_a_severity_and_its_explanation():
    rules = alert_rules()
    assert len(rules) >= 5
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_dashboards_query_the_provisioned_datasource():
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"]
    uids = {source["uid"] for source in provisioned if source["type"] == "prometheus"}
    assert DASHBOARDS and uids
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        panels = board["panels"]
        assert board["uid"] and panels, path.name
        assert len({p["id"] for p in panels}) == len(panels), f"{path.name}: duplicate panel ids"
        for panel in panels:
            where = f"{path.name}/{panel['title']}"
            assert panel["datasource"]["uid"] in uids, where
            assert panel["targets"], f"{where} has no query"
            for target in panel["targets"]:
                assert (
                    target["expr"].strip()
                    and target.get("datasource", panel["datasource"])["uid"] in uids
                ), where
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{where} is wider than the dashboard"


def test_the_compose_stack_mounts_what_the_configs_name():
    services = yaml.safe_load((REPO / "docker-compose.yaml").read_text(encoding="utf-8"))[
        "services"
    ]
    mounts = {
        name: dict(v.removesuffix(":ro").split(":", 1) for v in services[name]["volumes"])
        for name in ("prometheus", "grafana")
    }
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    in_container = Path(mounts["prometheus"]["./deploy/prometheus/prometheus.yml"]).parent
    assert in_container / config["rule_files"][0] == Path(
        mounts["prometheus"]["./deploy/prometheus/alerts.yml"]
    )
    (job,) = config["scrape_configs"]
    host, port = job["static_configs"][0]["targets"][0].split(":")
    assert job["job_name"] == JOB and host in services
    assert any(str(p).endswith(f":{port}") for p in services[host]["ports"]), host
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text(encoding="utf-8")
    )["providers"]
    assert [p["options"]["path"] for p in providers] == [
        mounts["grafana"]["./deploy/grafana/dashboards"]
    ]
    assert mounts["grafana"]["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


@pytest.fixture(scope="module")
def live_service(serving_world):
    """The real service on champion v1, after a few predictions (one for an unknown card and
    terminal, so every labelled series the queries name has a sample)."""
    uri = serving_world.settings.mlflow_tracking_uri
    client = registry_client(uri)
    for alias in ("challenger", "previous"):
        if alias in client.get_registered_model(MODEL_NAME).aliases:
            client.delete_registered_model_alias(MODEL_NAME, alias)
    clear_rollout(client, MODEL_NAME)
    set_alias(uri, "champion", "1")
    unknown = {
        "transaction_id": 1,
        "customer_id": 10**12,
        "terminal_id": 10**12,
        "tx_datetime": f"{SERVED}T10:00:00",
        "tx_amount": 42.5,
    }
    with ServiceProcess(serving_world.env, poll_s=0.3) as process:
        for body in (
            request_body(served_transactions(serving_world.root).head(20)),
            {"transactions": [unknown]},
        ):
            response = httpx.post(
                f"{process.url}/predict", headers=process.headers, json=body, timeout=60
            )
            assert response.status_code == 200, response.text
        yield process


def test_every_metric_the_alerts_and_dashboards_query_is_exposed(live_service):
    scrape = httpx.get(f"{live_service.url}/metrics", headers=live_service.headers, timeout=10)
    assert scrape.status_code == 200
    exposed = {s.name for f in text_string_to_metric_families(scrape.text) for s in f.samples}
    missing = {}
    for where, expr in queried().items():
        names = metric_names(expr)
        assert names, f"{where}: no metric found in {expr!r}"
        if names - FROM_PROMETHEUS - exposed:
            missing[where] = sorted(names - FROM_PROMETHEUS - exposed)
    assert not missing, f"not in the live /metrics: {missing}"
    # `up` is Prometheus's: it must select the job that deploy/prometheus/prometheus.yml scrapes.
    for where, expr in queried().items():
        for selector in re.findall(r"(?<![\w:])up\s*\{([^}]*)\}", expr):
            assert f'job="{JOB}"' in selector, where


def test_a_real_prometheus_evaluates_the_rules_and_every_dashboard_query(live_service, tmp_path):
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS / "alerts.yml")]
    config["scrape_configs"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{live_service.port}"]}
    ]
    # the service's token where compose mounts it for Prometheus: here, a file of this test's
    assert config["scrape_configs"][0]["authorization"] == {"credentials_file": TOKEN_SECRET}
    (tmp_path / "model_service_token").write_text(live_service.token)
    config["scrape_configs"][0]["authorization"]["credentials_file"] = str(
        tmp_path / "model_service_token"
    )
    with PrometheusProcess(yaml.safe_dump(config), tmp_path) as prometheus:
        wait_for(lambda: prometheus.value(f'up{{job="{JOB}"}}') == 1.0)
        wait_for(lambda: prometheus.value("count(fraud_predictions_total)"))
        rules = wait_for(lambda: _evaluated_rules(prometheus))
        answers = _dashboard_answers(prometheus)
        loaded = prometheus.api("query", query="fraud_model_loaded")["result"]
    assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}
    assert all(r["health"] == "ok" for r in rules), rules
    # the latency rule may be pending: a first request on a busy host can take 100 ms
    healthy = {"FraudModelServiceDown", "FraudNoChampionLoaded", "FraudServerErrorsHigh"}
    assert {r["name"]: r["state"] for r in rules if r["name"] in healthy} == dict.fromkeys(
        healthy, "inactive"
    )
    assert len(answers) == len(dashboard_queries())
    assert {(s["metric"]["variant"], s["metric"]["model_version"]) for s in loaded} == {
        ("champion", "1")
    }


def _dashboard_answers(prometheus: PrometheusProcess, timeout_s: float = 60) -> dict[str, list]:
    """Every dashboard query's result (Grafana's $__rate_interval as 1m), once all have data;
    fails naming those without."""
    deadline = time.monotonic() + timeout_s
    while True:
        answers = {
            where: prometheus.api("query", query=expr.replace("$__rate_interval", "1m"))
            for where, expr in dashboard_queries().items()
        }
        empty = sorted(where for where, data in answers.items() if not (data and data["result"]))
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert empty == [], "no data (or a query error) from a real Prometheus"
    return answers


def _evaluated_rules(prometheus: PrometheusProcess) -> list[dict] | None:
    """The alert rules once every one of them has been evaluated at least once."""
    data = prometheus.api("rules", type="alert")
    rules = [rule for group in (data or {}).get("groups", []) for rule in group["rules"]]
    evaluated = rules and all(not r["lastEvaluation"].startswith("0001") for r in rules)
    return rules if evaluated else None
