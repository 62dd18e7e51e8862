"""What stands between the network and the model service: a bearer token, a body cap and a
bound on requests in flight, all before FastAPI parses anything; and error text that names
a cause, never where the service's stores are.

- **Token.** ``/predict``, ``/metrics``, ``/openapi.json`` and every other path but the
  probes need ``Authorization: Bearer <MLOPS_SERVE_TOKEN>``, compared in constant time;
  otherwise 401 with ``WWW-Authenticate: Bearer``. ``/live`` and ``/health`` stay open for
  Kubernetes and compose probes; the app answers an unauthenticated ``/health`` with its
  status only (``authenticated`` below).
- **Body.** A ``Content-Length`` above ``MLOPS_SERVE_MAX_BODY_BYTES`` gets 413 before a byte
  of the body is read; a chunked body gets 413 as soon as its bytes pass the cap, and the
  rest is never read: every refusal closes the connection (else uvicorn reads the rest of
  the body to keep it alive).
- **In flight.** Beyond ``MLOPS_SERVE_MAX_IN_FLIGHT`` guarded requests at once, 503 with
  ``Retry-After`` at once: no queue grows behind a slow online store. Probes do not count.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

from mlops.features.online import OnlineStoreUnavailable
from mlops.serving.config import require_token

OPEN_PATHS = frozenset({"/live", "/health"})
RETRY_AFTER_S = 1
AUTHENTICATED = "authenticated"  # key in the ASGI scope's state: the app reads it


def authenticated(scope: dict) -> bool:
    """Whether the request carried the token (set by ``Guard``; False without it)."""
    return bool(scope.get("state", {}).get(AUTHENTICATED))


class _TooLarge(Exception):
    pass


class Guard:
    """Pure ASGI middleware: token, body cap and in-flight bound, in that order."""

    def __init__(self, app: Any, *, token: str, max_body_bytes: int, max_in_flight: int) -> None:
        self.app = app
        self.token = require_token(token).encode()
        self.max_body, self.max_in_flight = max_body_bytes, max_in_flight
        self.in_flight = 0  # only the event loop's thread touches it

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])  # lower-case names, as ASGI gives them
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        ok = hmac.compare_digest(given.strip(), self.token) and scheme.lower() == b"bearer"
        scope.setdefault("state", {})[AUTHENTICATED] = ok
        if scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if not ok:
            await _answer(
                send, 401, "a bearer token is required", [(b"www-authenticate", b"Bearer")]
            )
            return
        length = headers.get(b"content-length", b"0")  # the server checked it is a number
        if length.isdigit() and int(length) > self.max_body:
            await _answer(send, 413, f"the body exceeds {self.max_body} bytes")
            return
        if self.in_flight >= self.max_in_flight:
            retry = [(b"retry-after", str(RETRY_AFTER_S).encode())]
            await _answer(send, 503, "too many requests in flight, retry later", retry)
            return
        self.in_flight += 1
        try:
            await self._capped(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _capped(self, scope: dict, receive: Any, send: Any) -> None:
        """The app, reading at most ``max_body`` bytes; past them it gets an exception from
        ``receive`` and whatever it answers becomes a 413."""
        read, started, over = 0, False, False

        async def capped_receive() -> dict:
            nonlocal read, over
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_body:
                    over = True
                    raise _TooLarge
            return message

        async def checked_send(message: dict) -> None:
            nonlocal started
            if over:  # the app's own answer to the broken body is replaced
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _answer(send, 413, f"the body exceeds {self.max_body} bytes")
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, checked_send)
        except _TooLarge:
            if not started:
                await _answer(send, 413, f"the body exceeds {self.max_body} bytes")


async def _answer(send: Any, status: int, detail: str, headers: list | None = None) -> None:
    """A refusal, closing the connection: otherwise the server would go on reading the body
    the app refused (to keep the connection alive for a next request), 23 MB and all."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# What error text must not carry to a client: URLs, host:port pairs, IP addresses, DNS names,
# absolute paths. A DNS name is hidden when its last label is a TLD or an internal suffix
# (``_TLDS``: not ``py``, ``app`` or ``cloud``, so ``mlflow.sklearn``, ``app.py`` and
# ``google.cloud`` stay), or when a word says it is one (``_NAMED``).
_TLDS = (
    "com|net|org|edu|gov|mil|io|ai|co|dev|biz|info|us|uk|eu|de|fr|nl|ch|se|jp|cn|ru|br|au|ca"
    "|internal|local|localdomain|localhost|lan|home|corp|intranet|private|example|test|invalid"
    "|svc"
)
_LABEL = r"[a-z0-9](?:[\w-]{0,61}[a-z0-9])?"
_H = r"[0-9a-f]{1,4}"
_IPV6 = (  # full, or compressed (``::``); a time (10:00:00) is neither
    rf"(?:{_H}:){{7}}{_H}"
    rf"|(?:{_H}(?::{_H}){{0,6}})?::(?:{_H}(?::{_H}){{0,6}})?(?:\.\d{{1,3}}){{0,3}}(?:%\w+)?"
)
_HIDDEN = re.compile(
    r"[a-z][a-z0-9+.-]*://\S+"  # a URL (with its user and password)
    r"|\b(?:localhost|\d{1,3}(?:\.\d{1,3}){3}|[a-z][\w-]*(?:\.[\w-]+)+|[a-z][\w-]*(?=:\d))"
    r":\d{2,5}\b"  # host:port
    r"|(?:host|port|path|url)=\S+"  # urllib3's host='mlflow', port=5000
    r"|(?<![\w.])/(?:[\w.~-]+/)*[\w.~-]+"  # an absolute path
    rf"|\[(?:{_IPV6})\](?::\d{{1,5}})?"  # [2001:db8::1]:5432
    rf"|(?<![\w:.])(?=:*[0-9a-f])(?:{_IPV6})(?![\w:])"  # an IPv6 address (not a bare ``::``)
    r"|(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)"  # an IPv4 address
    rf"|(?<![\w.-]){_LABEL}(?:\.{_LABEL})*\.(?:{_TLDS})(?![\w-]|\.[\w-])",  # db.prod.example.com
    re.IGNORECASE,
)
# A name a word says is a host: ``host: db``, ``server "pg"``, ``connection to postgres``,
# ``connect to server at redis``, ``resolve 'mlflow'``, ``not known: db``. After ``_HIDDEN``,
# so a host:port is gone whole; the word stays, and a word after it is not taken for a name.
_NOT_NAMES = r"(?!(?:the|a|an|it|this|that|server|host|port|database)\b)"
_NAMED = re.compile(
    r"(?P<word>\b(?:host(?:\s*name)?|server)\s*(?:[:=]\s*|\s+(?=['\"]))"
    r"|\b(?:server|host)\s+at\s+"
    r"|\bconnect(?:ion|ing|ed|s)?\s+(?:to|at)\s+(?:(?:the\s+)?(?:server|host)\s+(?:at\s+)?)?"
    r"|\b(?:to|at|resolve)\s+(?=['\"])"
    r"|\bnot known:\s*)"
    rf"(?P<quote>['\"]?){_NOT_NAMES}[a-z][\w-]*(?:\.{_LABEL})*(?P=quote)",
    re.IGNORECASE,
)


def public_text(text: str) -> str:
    """``text`` with every URL, address, host name and path replaced by ``<hidden>``: the
    cause stays, the place goes (the service's log keeps the whole message)."""
    return _NAMED.sub(r"\g<word><hidden>", _HIDDEN.sub("<hidden>", text))


def public_cause(err: BaseException) -> str:
    """What a client may read of ``err``: for an online store that is down, only that (the
    message names the store's address and its timeout setting); else the scrubbed text."""
    if isinstance(err, OnlineStoreUnavailable):
        return "online store unavailable (unreachable or too slow); retry later"
    return public_text(str(err))
