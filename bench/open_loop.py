"""An open-loop HTTP load generator: ``python -m bench.open_loop URL --rate R --seconds S``.

Request i is due at ``t0 + i / R`` whatever happened to the earlier ones (a closed loop,
where each client waits for its answer, slows down with the server and hides its queue). Its
latency is counted **from the due time**, not from the send: when the server, or this
process, falls behind, the figures show how late the answers came. Run it in a process of
its own, so the server under test does not share its interpreter.

Bodies come from a JSON-lines file (``--bodies``, each line one POST body, used in turn);
without it the requests are GETs. Requests go over up to ``--connections`` keep-alive
HTTP/1.1 connections (raw asyncio streams: a few tens of µs of client CPU a request); a
request due while every connection is busy waits for one, and that wait counts. An answer
other than 2xx, a broken connection or one slower than ``--timeout`` is an error.

Prints one JSON object: offered and achieved rate, p50/p90/p99/max latency in ms, errors by
kind, and ``late_p99_ms``, how far behind schedule this process itself sent; with
``--samples``, every answer's due time (Unix seconds) and latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def percentiles(seconds: list[float]) -> dict[str, float | None]:
    ordered = sorted(seconds)

    def at(q: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3, 3)

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": at(1.0)}


def requests_of(url: str, bodies: list[bytes], token: str | None = None) -> list[bytes]:
    """The raw HTTP/1.1 requests, one per body (a single GET without bodies); ``token``: a
    bearer token sent with each."""
    parts = urlsplit(url)
    head = f"Host: {parts.hostname}:{parts.port}\r\nConnection: keep-alive\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not bodies:
        return [f"GET {path} HTTP/1.1\r\n{head}\r\n".encode()]
    return [
        f"POST {path} HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
        for body in bodies
    ]


async def _answer(reader: asyncio.StreamReader) -> int:
    """The status of one response, its body read (Content-Length bodies only)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(
        (
            int(v)
            for k, _, v in (x.partition(":") for x in lines[1:])
            if k.lower() == "content-length"
        ),
        None,
    )
    if length is None:
        raise ValueError("response without Content-Length")
    await reader.readexactly(length)
    return status


async def run_load(
    url: str,
    requests: list[bytes],
    rate: float,
    seconds: float,
    *,
    connections: int = 64,
    timeout: float = 5.0,
    samples: bool = False,
) -> dict[str, Any]:
    """Send ``rate * seconds`` requests on schedule; latency from each one's due time.
    ``samples``: also every answer's ``[due, latency]`` (Unix seconds, ms), to look at a
    window of the run (a model swap)."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    # last in, first out: at a low rate a few connections stay warm instead of every one
    # idling past the server's keep-alive timeout and being closed under the next request
    idle: asyncio.LifoQueue = asyncio.LifoQueue()
    for _ in range(connections):
        idle.put_nowait(None)  # connected on first use
    latencies: list[float] = []
    answered: list[tuple[float, float]] = []  # (due on the loop's clock, latency)
    late: list[float] = []
    errors: Counter[str] = Counter()
    total = int(rate * seconds)

    async def one(i: int, due: float) -> None:
        conn = await idle.get()
        if conn is not None and conn[0].at_eof():  # the server closed it while it was idle
            conn[1].close()
            conn = None
        try:
            if conn is None:
                conn = await asyncio.open_connection(parts.hostname, parts.port)
            conn[1].write(requests[i % len(requests)])
            status = await asyncio.wait_for(_answer(conn[0]), timeout)
            if not 200 <= status < 300:
                errors[f"HTTP {status}"] += 1
            latencies.append(loop.time() - due)
            answered.append((due, latencies[-1]))
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as err:
            errors[type(err).__name__] += 1
            if conn is not None:
                conn[1].close()
            conn = None
        finally:
            idle.put_nowait(conn)

    start = loop.time() + 0.1
    wall_offset = time.time() - loop.time()  # the loop's clock to Unix seconds
    tasks = []
    for i in range(total):
        due = start + i / rate
        pause = due - loop.time()
        if pause > 0:
            await asyncio.sleep(pause)
        late.append(max(0.0, loop.time() - due))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    _close_all(idle)
    late.sort()
    shifted = [[round(d + wall_offset, 4), round(x * 1e3, 3)] for d, x in answered]
    extra = {"samples": shifted} if samples else {}
    return {
        "offered_per_s": rate,
        "seconds": round(elapsed, 3),
        "sent": total,
        "answered": len(latencies),
        "achieved_per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        **percentiles(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "late_p99_ms": round(late[int(0.99 * (len(late) - 1))] * 1e3, 3) if late else None,
        **extra,
    }


def _close_all(idle: asyncio.Queue) -> None:
    while not idle.empty():
        conn = idle.get_nowait()
        if conn is not None:
            conn[1].close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--bodies", type=Path, help="JSON lines, one POST body each")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--token-file", type=Path, help="a bearer token (never on argv)")
    parser.add_argument("--samples", action="store_true", help="every [due, latency]")
    args = parser.parse_args(argv)
    token = args.token_file.read_text(encoding="utf-8").strip() if args.token_file else None
    bodies = []
    if args.bodies:
        lines = args.bodies.read_text(encoding="utf-8").splitlines()
        bodies = [json.dumps(json.loads(line)).encode() for line in lines if line.strip()]
    began = time.perf_counter()
    result = asyncio.run(
        run_load(
            args.url,
            requests_of(args.url, bodies, token),
            args.rate,
            args.seconds,
            connections=args.connections,
            timeout=args.timeout,
            samples=args.samples,
        )
    )
    result["wall_s"] = round(time.perf_counter() - began, 3)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
