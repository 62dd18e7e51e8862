"""The open-loop generator keeps its schedule whatever the server does, counts what failed
and measures from the due time, run as the separate process ``make bench`` starts."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    delay_s = 0.0

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.delay_s)
        status = 500 if body.get("fail") else 200
        answer = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    def start(delay_s: float = 0.0, keep_alive_s: float | None = None) -> str:
        # ``timeout``: how long the handler waits on an idle keep-alive connection
        handler = type("Handler", (_Handler,), {"delay_s": delay_s, "timeout": keep_alive_s})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        started.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/predict"

    started: list[ThreadingHTTPServer] = []
    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def generate(url: str, tmp_path: Path, bodies: list[dict], *args: str) -> dict:
    path = tmp_path / "bodies.jsonl"
    path.write_text("".join(json.dumps(b) + "\n" for b in bodies))
    done = subprocess.run(
        [sys.executable, "-m", "bench.open_loop", url, "--bodies", str(path), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_fixed_rate_is_sent_on_schedule_and_failures_are_counted(server, tmp_path):
    url = server()
    bodies = [{"n": 1}, {"n": 2}, {"n": 3}, {"fail": True}]  # every fourth answer is a 500
    result = generate(url, tmp_path, bodies, "--rate", "200", "--seconds", "2")
    assert result["sent"] == result["answered"] == 400
    assert result["errors"] == 100 and result["error_kinds"] == {"HTTP 500": 100}
    assert 1.9 < result["seconds"] < 2.6
    assert result["achieved_per_s"] > 150
    assert result["late_p99_ms"] < 50
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]


def test_a_slow_server_does_not_slow_the_schedule_down(server, tmp_path):
    """A closed loop of 4 clients against 100 ms answers would send 40/s; this sends 100/s
    over as many connections as it needs, and each answer counts its 100 ms."""
    url = server(delay_s=0.1)
    result = generate(url, tmp_path, [{"n": 1}], "--rate", "100", "--seconds", "2")
    assert result["answered"] == 200 and result["errors"] == 0
    assert result["seconds"] < 2.6  # not 200 x 0.1 s / a few clients
    assert result["p50_ms"] >= 100


def test_a_server_that_is_not_there_is_all_errors(tmp_path):
    from bench.open_loop import requests_of  # noqa: F401 (importable without side effects)

    url = "http://127.0.0.1:9/predict"  # discard port: nothing listens
    result = generate(url, tmp_path, [{"n": 1}], "--rate", "50", "--seconds", "1")
    assert result["sent"] == 50 and result["answered"] == 0
    assert result["errors"] == 50 and set(result["error_kinds"]) <= {
        "ConnectionRefusedError",
        "OSError",
    }
    assert result["p99_ms"] is None


def test_a_low_rate_reuses_warm_connections_and_never_one_the_server_closed(server, tmp_path):
    """A server closes idle keep-alive connections (uvicorn after 5 s): at 10/s over 8
    connections taken in turn each would idle 0.8 s, past this server's 0.5 s."""
    url = server(keep_alive_s=0.5)
    args = ("--rate", "10", "--seconds", "3", "--connections", "8")
    result = generate(url, tmp_path, [{"n": 1}], *args)
    assert result["errors"] == 0, result["error_kinds"]
    assert result["answered"] == result["sent"] == 30
