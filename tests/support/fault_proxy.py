"""A TCP proxy in front of a real server that a test can take down and bring back.

``down()`` closes the listening socket and every open connection, so a client sees exactly
what a stopped server gives it: connection refused. ``up()`` listens again on the same port.
``fail_at(marker)`` arms a fault on the next client bytes that contain ``marker`` (an HTTP
request line, say ``b"POST /api/2.0/mlflow/model-versions/create"``):

- ``forward=False``: the request never reaches the server, and the proxy goes down (a server
  that died just before the request);
- ``forward=True``: the request reaches the server, its response is dropped and the client's
  connection closed (a server that committed, then died before answering); with
  ``stay_down=False`` the proxy stays up, so the client's own retry gets through.

A fault at a request lets a test place a server outage at one exact step of a flow, where a
stop at a moment in time would land anywhere; the real server stays up (and its start-up,
half a minute and more, is paid once per module).
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass


@dataclass
class _Fault:
    marker: bytes
    forward: bool
    stay_down: bool
    fired: threading.Event


class FaultProxy:
    """Proxy ``127.0.0.1:<port>`` to ``upstream`` (host, port) until ``close()``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._fault: _Fault | None = None
        self._listener: socket.socket | None = None
        self._closed = False
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def up(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in connections:
            _close(conn)

    def close(self) -> None:
        self._closed = True
        self.down()

    def fail_at(self, marker: bytes, *, forward: bool = False, stay_down: bool = True):
        """Arm one fault; returns an Event set when it fired."""
        fault = _Fault(marker, forward, stay_down, threading.Event())
        with self._lock:
            self._fault = fault
        return fault.fired

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: down
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(server)
                    return
                self._connections |= {client, server}
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _armed(self, data: bytes) -> _Fault | None:
        with self._lock:
            fault = self._fault
            if fault is None or fault.marker not in data:
                return None
            self._fault = None
            return fault

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        dropping: _Fault | None = None  # forwarded; the response is to be dropped
        try:
            while True:
                readable, _, _ = select.select([client, server], [], [], 1.0)
                if self._closed:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        fault = self._armed(data)
                        if fault is not None and not fault.forward:
                            self._fire(fault)
                            return
                        server.sendall(data)
                        dropping = fault or dropping
                    elif dropping is not None:
                        self._fire(dropping)
                        return
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            _close(client)
            _close(server)
            with self._lock:
                self._connections -= {client, server}

    def _fire(self, fault: _Fault) -> None:
        fault.fired.set()  # first: the client may give up as soon as the proxy is down
        if fault.stay_down:
            self.down()


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@contextmanager
def fault_proxy(upstream_url: str) -> Iterator[FaultProxy]:
    """A ``FaultProxy`` in front of ``http://host:port``, closed on every exit."""
    from urllib.parse import urlsplit

    parts = urlsplit(upstream_url)
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 80))
    try:
        yield proxy
    finally:
        proxy.close()
